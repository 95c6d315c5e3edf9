# scripts/pgenv.sh -- sourced by the scripts: which PostgreSQL server pg_mig
# is built against and the sandbox runs. Say it with one of
#
#   PGMIG_PG=15|17|18|19  a version: this checkout's build/pg/N
#                      (scripts/pgbuild.sh N makes it; for 15 a copy of
#                      Debian 12's packages)
#   PG_CONFIG=PATH     a pg_config; its --bindir holds the server programs
#   PG_BINDIR=DIR      a bin directory holding pg_config and the server programs
#
# and with none of them, the pg_config on PATH (the default). pg_resolve sets
#
#   PG_CONFIG PG_BINDIR  the pg_config and the server's bin directory
#   PG_MAJOR             15, 17, 18, ...
#   PG_CHROOT            the chroot the programs run in: "trixie" (17) or
#                        "sid" (19), else empty: pg_exec and pg_exec_as
#                        know how (scripts/pgchroot.sh --chroot)
#   PG_MAKE              extra arguments for make (PGXS) with this server
#
# and exports them, so scripts started later (sandbox.sh from the C++
# tests) resolve the same server.
pgmig_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

pg_resolve() {
  PG_CHROOT=
  PG_MAKE=
  case "${PGMIG_PG:-}" in
    "")
      if [ -n "${PG_BINDIR:-}" ]; then PG_CONFIG=$PG_BINDIR/pg_config
      else PG_CONFIG=${PG_CONFIG:-pg_config}; fi
      PG_CONFIG=$(command -v "$PG_CONFIG") ||
        { echo "no pg_config; put one on PATH or set PGMIG_PG=15|17|18|19" >&2; return 1; } ;;
    15)
      PG_CONFIG=$pgmig_root/build/pg/15/root/usr/lib/postgresql/15/bin/pg_config ;;
    17|19)
      # Debian's binary packages in a chroot of their suite
      PG_CONFIG=$pgmig_root/build/pg/$PGMIG_PG/root/usr/lib/postgresql/$PGMIG_PG/bin/pg_config
      PG_CHROOT=trixie
      [ "$PGMIG_PG" = 19 ] && PG_CHROOT=sid
      PG_MAKE="with_llvm=no" ;;   # Debian's PGXS would want clang for bitcode
    18)
      PG_CONFIG=$pgmig_root/build/pg/18/bin/pg_config ;;
    *)
      echo "PGMIG_PG=$PGMIG_PG: say 15, 17, 18 or 19" >&2; return 1 ;;
  esac
  if [ -n "${PGMIG_PG:-}" ] && [ ! -x "$PG_CONFIG" ]; then
    echo "no PostgreSQL $PGMIG_PG in $PG_CONFIG; scripts/pgbuild.sh $PGMIG_PG makes it" >&2
    return 1
  fi
  local version
  version=$(pg_exec "$PG_CONFIG" --version) || return 1
  PG_MAJOR=$(echo "$version" | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
  PG_BINDIR=$(pg_exec "$PG_CONFIG" --bindir) || return 1
  export PG_CONFIG PG_BINDIR PG_MAJOR PG_CHROOT PG_MAKE
  [ -z "${PGMIG_PG:-}" ] || export PGMIG_PG
}

# pg_exec PROG [ARGS]: runs a program of the server (as the caller)
pg_exec() {
  if [ -n "${PG_CHROOT:-}" ]; then "$pgmig_root/scripts/pgchroot.sh" --chroot "$PG_CHROOT" "$@"; else "$@"; fi
}

# pg_exec_as USER PROG [ARGS]: the same as USER when the caller is root
pg_exec_as() {
  local user=$1; shift
  if [ "$(id -u)" -ne 0 ]; then "$@"
  elif [ -n "${PG_CHROOT:-}" ]; then "$pgmig_root/scripts/pgchroot.sh" --chroot "$PG_CHROOT" --user "$user" "$@"
  else runuser -u "$user" -- "$@"; fi
}

# pg_install_extension [-Werror]: builds and installs pg_mig for the server
pg_install_extension() {
  local copt=
  [ "${1:-}" = -Werror ] && copt=COPT=-Werror
  # shellcheck disable=SC2086
  pg_exec make -s -C "$pgmig_root" -j2 PG_CONFIG="$PG_CONFIG" $PG_MAKE $copt >/dev/null &&
    pg_exec make -s -C "$pgmig_root" PG_CONFIG="$PG_CONFIG" $PG_MAKE install >/dev/null
}

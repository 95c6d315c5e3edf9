#!/usr/bin/env bash
# scripts/release.sh -- released versions of pg_mig for the upgrade test
# (test/integration/test_upgrade.cpp): built once, swapped into a server.
#
#   release.sh build TAG        builds the library and SQL scripts of TAG
#                               (v0.2, v0.3: sql/RELEASES; or any commit) against this
#                               checkout's server, into build/releases/TAG-pgN,
#                               once (a stamp names the commit and the
#                               server); prints the directory
#   release.sh server DEST      copies this checkout's server (build/pg/N,
#                               PGMIG_PG) to DEST, for a test to install
#                               versions into; prints DEST's pg_config
#   release.sh install DIR PG_CONFIG
#                               installs the pg_mig of DIR (a release built
#                               above, or this checkout after make) into the
#                               server of PG_CONFIG, in place of the one there:
#                               the library, the control file and the SQL
#                               scripts, as the package does
#
# A tag missing from the clone (CI may clone without tags) is found by the
# commit that sql/RELEASES records for it.  Builds are serialized by a lock.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=pgenv.sh
. "$src/scripts/pgenv.sh"

die() { echo "release.sh: $*" >&2; exit 1; }

build() {
  local tag=$1 commit out stamp want
  pg_resolve || die "no server to build against"
  commit=$(git -C "$src" rev-parse -q --verify "$tag^{commit}" 2>/dev/null ||
           awk -v t="$tag" '$1 == t { print $2 }' "$src/sql/RELEASES")
  [ -n "$commit" ] || die "no release $tag (see sql/RELEASES)"
  git -C "$src" cat-file -e "$commit^{commit}" 2>/dev/null ||
    die "commit $commit of $tag is not in this clone (a shallow clone?); git fetch --unshallow"
  mkdir -p "$src/build/releases"
  exec 9>"$src/build/releases/.lock"
  flock 9
  out=$src/build/releases/$tag-pg$PG_MAJOR
  stamp=$out/.release-built
  want="$commit $PG_CONFIG"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then echo "$out"; return 0; fi
  rm -rf "$out"
  mkdir -p "$out"
  git -C "$src" archive "$commit" | tar -x -C "$out"
  # shellcheck disable=SC2086
  # "all" by name: 0.2's Makefile has a rule before PGXS's include, which
  # makes its first object the default goal
  pg_exec nice make -C "$out" -j2 PG_CONFIG="$PG_CONFIG" $PG_MAKE all >"$out/build.log" 2>&1 ||
    { tail -20 "$out/build.log" >&2; die "building $tag failed; see $out/build.log"; }
  [ -f "$out/pg_mig.so" ] || die "building $tag made no pg_mig.so; see $out/build.log"
  echo "$want" > "$stamp"
  echo "$out"
}

server() {
  local dest=$1
  pg_resolve || die "no server to copy"
  [ -n "${PGMIG_PG:-}" ] || die "say PGMIG_PG=15|18: the copy is of build/pg/N"
  [ -z "$PG_CHROOT" ] || die "PostgreSQL $PGMIG_PG runs in a chroot; its server cannot be copied"
  [ -e "$dest" ] && die "$dest exists"
  # copies, not hard links: install writes through a link into the original
  cp -a "$src/build/pg/$PGMIG_PG" "$dest"
  echo "$dest/${PG_CONFIG#"$src/build/pg/$PGMIG_PG/"}"
}

install_into() {
  local dir=$1 pg_config=$2 lib share
  [ -f "$dir/pg_mig.so" ] || die "no pg_mig.so in $dir (build it first)"
  lib=$("$pg_config" --pkglibdir)
  share=$("$pg_config" --sharedir)/extension
  rm -f "$lib/pg_mig.so" "$share"/pg_mig.control "$share"/pg_mig--*.sql
  cp "$dir/pg_mig.so" "$lib/"
  cp "$dir/pg_mig.control" "$share/"
  cp "$dir"/sql/pg_mig--*.sql "$share/"
}

case "${1:-}" in
  build)   [ $# -eq 2 ] || die "usage: release.sh build TAG"; build "$2" ;;
  server)  [ $# -eq 2 ] || die "usage: release.sh server DEST"; server "$2" ;;
  install) [ $# -eq 3 ] || die "usage: release.sh install DIR PG_CONFIG"; install_into "$2" "$3" ;;
  *) die "usage: release.sh build TAG | server DEST | install DIR PG_CONFIG" ;;
esac

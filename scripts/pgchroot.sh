#!/usr/bin/env bash
# scripts/pgchroot.sh [--chroot trixie|sid] [--user NAME] CMD [ARGS...] --
# runs CMD in a chroot that holds a PostgreSQL: trixie's (17; the default)
# or sid's (19; scripts/pgbuild.sh 17 or 19 makes it), in the current
# directory, as root or as NAME (an OS user of the host: the chroot gets the
# same name, uid and gid, so files and sockets mean the same on both sides).
#
# The chroot sees the host's /tmp, /dev/shm and this checkout at their own
# paths, and a /proc: the mounts are made in a private mount namespace, so
# the host never sees them and they vanish when CMD and everything it
# started (a postmaster) have exited. Nothing to clean up, safe to run many
# at once. The host's psql, libpq and migctl reach a server started here
# through its socket directory.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd -P)
CACHE=${PGMIG_CACHE:-/var/cache/pg_mig}
name=trixie

die() { echo "pgchroot.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"
if [ "${1:-}" = --chroot ]; then name=$2; shift 2; fi
case "$name" in
  trixie) made_by=17 ;;
  sid) made_by=19 ;;
  *) die "--chroot $name: say trixie or sid" ;;
esac
root=$CACHE/$name
[ -f "$root/.pg_mig-built" ] || die "no chroot in $root; scripts/pgbuild.sh $made_by makes it"
user=
if [ "${1:-}" = --user ]; then user=$2; shift 2; fi
[ $# -ge 1 ] || die "usage: pgchroot.sh [--chroot trixie|sid] [--user NAME] CMD [ARGS...]"

if [ -n "$user" ]; then
  uid=$(id -u "$user") gid=$(id -g "$user")
  (
    flock 9
    if [ "$(chroot "$root" getent passwd "$user" | cut -d: -f3,4)" != "$uid:$gid" ]; then
      chroot "$root" sh -c "userdel '$user'; groupdel '$user'; groupadd -o -g '$gid' '$user'; \
        useradd -r -o -u '$uid' -g '$gid' -M -d / -s /usr/sbin/nologin '$user'" >/dev/null 2>&1 || true
      [ "$(chroot "$root" getent passwd "$user" | cut -d: -f3,4)" = "$uid:$gid" ] ||
        die "could not make the user $user ($uid:$gid) in $root"
    fi
  ) 9>"$CACHE/$name-users.lock"
fi

exec unshare --mount --propagation private -- bash -c '
  set -e
  r=$1 src=$2 user=$3 cwd=$4; shift 4
  mount -t proc proc "$r/proc"
  mount --bind /dev/shm "$r/dev/shm"
  mount --bind /tmp "$r/tmp"
  case "$src/" in
    /tmp/*) ;;
    *) mkdir -p "$r$src"; mount --bind "$src" "$r$src" ;;
  esac
  if [ -n "$user" ]; then set -- runuser -u "$user" -- "$@"; fi
  exec chroot "$r" /bin/sh -c "cd \"\$0\" 2>/dev/null || cd /; exec \"\$@\"" "$cwd" "$@"
' bash "$root" "$src" "$user" "$(pwd -P)" "$@"

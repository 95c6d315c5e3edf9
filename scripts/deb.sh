#!/usr/bin/env bash
# scripts/deb.sh [OUTDIR] -- builds the Debian packages (debian/) with
# dpkg-buildpackage -us -uc -b in a copy of the tree, so that the checkout
# stays clean, and puts the .deb files into OUTDIR (default: ./deb).
# debian/control is made from debian/control.in for the PostgreSQL versions
# installed here that debian/pgversions allows (pg_buildext updatecontrol).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$src/deb}" && cd "${1:-$src/deb}" && pwd)
# the system's PostgreSQL and compilers, not a private install on PATH
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# ... and no server chosen for the test suite (scripts/pgenv.sh)
unset PG_CONFIG PG_BINDIR PGMIG_PG
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tmp=$(mktemp -d /tmp/pg-mig-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
tree="$tmp/pg-mig-${version%-*}"
mkdir -p "$tree"
# the sources only: no build directories, test output or packages
tar -C "$src" --exclude=./.git --exclude=./build --exclude='./build-*' --exclude=./deb \
    --exclude=./test/out --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$tree" -xf -
cd "$tree"
pg_buildext updatecontrol
dpkg-buildpackage -us -uc -b > "$tmp/build.log" 2>&1 || { tail -60 "$tmp/build.log" >&2; exit 1; }
cp "$tmp"/*.deb "$out"/
ls "$out"/*.deb

#!/usr/bin/env bash
# scripts/pgbuild.sh -- makes a PostgreSQL server the tests can run against,
# once: the servers are cached outside the checkout (PGMIG_CACHE, default
# /var/cache/pg_mig), and each checkout gets a private copy in build/pg/N
# for its own `make install` (checkouts then never load each other's library).
#
#   pgbuild.sh 15    Debian 12's packages (scripts/deps.sh), copied to
#                    build/pg/15/root/usr/... like 17's: `make install`
#                    for 15 then never writes the system's directories,
#                    and checkouts side by side never load each other's
#                    library
#   pgbuild.sh 18    builds Debian sid's source package postgresql-18 (with
#                    all of contrib) into $PGMIG_CACHE/pg18 (about 4-7
#                    minutes on 2 cores), then
#                    copies it to build/pg/18
#   pgbuild.sh 17    makes a trixie chroot $PGMIG_CACHE/trixie (debootstrap
#                    --variant=minbase) with trixie's postgresql-17 packages
#                    (about 2 minutes), then copies its PostgreSQL 17 to
#                    build/pg/17/root/usr/...; scripts/pgchroot.sh runs it
#   pgbuild.sh django
#                    the same trixie chroot (made as for 17 if missing) with
#                    trixie's python3-django (4.2) and python3-psycopg (3)
#                    added, for test/django/run.sh --trixie (Debian 12's
#                    Django 3.2 has no psycopg 3 backend); copies nothing
#
# A stamp file in each cache marks it complete, so a second run costs
# nothing; a lock file serializes concurrent runs. Runs as root (apt,
# debootstrap, chroot). The machine's apt sources are never touched: sid's
# deb-src entry lives in a private apt directory. Prints nothing on success.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd -P)
CACHE=${PGMIG_CACHE:-/var/cache/pg_mig}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MIRROR=${PGMIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() { echo "pgbuild.sh: $*" >&2; exit 1; }

# copy_tree FROM TO: hard links where the file system allows, else a copy
copy_tree() {
  rm -rf "$2.tmp"
  mkdir -p "$(dirname "$2")"
  cp -al "$1" "$2.tmp" 2>/dev/null || { rm -rf "$2.tmp"; cp -a "$1" "$2.tmp"; }
}

# build_18: configure + make + make install of sid's postgresql-18 source
# (PG18_RECIPE names what the build holds; a cache made by an older recipe
# is built again. 2: all of contrib, e.g. pg_stat_statements for it_migctl.)
PG18_RECIPE=2
build_18() {
  local prefix=$CACHE/pg18 stamp=$CACHE/pg18/.pg_mig-built
  [ -f "$stamp" ] && grep -q "^recipe $PG18_RECIPE:" "$stamp" && return 0
  local apt=$CACHE/apt-sid tmp=$CACHE/src-18 log=$CACHE/pg18-build.log stage=$CACHE/pg18.stage
  echo "pgbuild.sh: building PostgreSQL 18 into $prefix (log: $log)" >&2
  # installed into a staging directory and moved into place at the end: the
  # checkouts' copies (build/pg/18) find libpq in $prefix/lib (rpath), which
  # must stay there while a new build runs
  rm -rf "$apt" "$tmp" "$stage"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$tmp"
  echo "deb-src [signed-by=$KEYRING] $MIRROR sid main" > "$apt/sources.list"
  local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
              -o APT::Sandbox::User=root -o DPkg::Lock::Timeout=600)
  {
    apt-get "${opts[@]}" update -qq
    (cd "$tmp" && apt-get "${opts[@]}" source --download-only postgresql-18)
  } >"$log" 2>&1 || { tail -20 "$log" >&2; die "downloading postgresql-18's source failed"; }
  local orig tree
  orig=$(ls "$tmp"/postgresql-18_*.orig.tar.* 2>/dev/null | head -1)
  [ -n "$orig" ] || die "no orig tarball in $tmp"
  tar -C "$tmp" -xf "$orig"
  tree=$(find "$tmp" -maxdepth 1 -type d -name 'postgresql-18*' | head -1)
  [ -n "$tree" ] || die "unpacking $orig gave no source tree"
  (
    cd "$tree"
    nice ./configure --prefix="$prefix" --with-icu --without-readline --without-llvm
    nice make -j2
    nice make -C contrib -j2
    nice make install DESTDIR="$stage"
    nice make -C contrib install DESTDIR="$stage"
    nice make -C src/test/isolation install DESTDIR="$stage"
  ) >>"$log" 2>&1 || { tail -30 "$log" >&2; die "building PostgreSQL 18 failed; see $log"; }
  echo "recipe $PG18_RECIPE: $("$stage$prefix/bin/pg_config" --version), built $(date -u +%FT%T.%NZ)" \
    > "$stage$prefix/.pg_mig-built"
  rm -rf "$prefix.old"
  [ -e "$prefix" ] && mv "$prefix" "$prefix.old"
  mv "$stage$prefix" "$prefix"
  rm -rf "$prefix.old" "$stage" "$tmp" "$apt"
}

# build_17: a trixie chroot with PostgreSQL 17's binary packages. The server
# dev package is unpacked, not installed: installed, it pulls clang and llvm
# (the extension is built with with_llvm=no).
build_17() {
  local root=$CACHE/trixie stamp=$CACHE/trixie/.pg_mig-built log=$CACHE/trixie-build.log
  [ -f "$stamp" ] && return 0
  echo "pgbuild.sh: making a trixie chroot with PostgreSQL 17 in $root (log: $log)" >&2
  rm -rf "$root" "$root.tmp"
  # debootstrap mounts /proc and /sys in the target: in a mount namespace of
  # its own they vanish with it, whatever happens
  unshare --mount --propagation private -- \
    nice debootstrap --variant=minbase --keyring="$KEYRING" trixie "$root.tmp" "$MIRROR" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "debootstrap failed; see $log"; }
  unshare --mount --propagation private -- bash -c '
    set -e
    r=$1
    mount -t proc proc "$r/proc"
    exec chroot "$r" /bin/sh -c "
      set -e
      export DEBIAN_FRONTEND=noninteractive
      printf \"#!/bin/sh\nexit 101\n\" > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      mkdir -p /etc/postgresql-common
      echo \"create_main_cluster = false\" > /etc/postgresql-common/createcluster.conf
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold \
        postgresql-17 postgresql-client-17 libpq-dev make gcc libc6-dev
      cd /tmp
      apt-get download postgresql-server-dev-17
      dpkg -x postgresql-server-dev-17_*.deb /
      rm -f postgresql-server-dev-17_*.deb
      apt-get clean
    "' bash "$root.tmp" >>"$log" 2>&1 || { tail -20 "$log" >&2; die "installing PostgreSQL 17 in the chroot failed; see $log"; }
  [ -x "$root.tmp/usr/lib/postgresql/17/bin/postgres" ] || die "no PostgreSQL 17 in the chroot; see $log"
  mv "$root.tmp" "$root"
  echo "$(chroot "$root" /usr/lib/postgresql/17/bin/pg_config --version), built $(date -u +%FT%T.%NZ)" > "$stamp"
}

# django_17: Django 4.2 and psycopg 3 from trixie in the chroot of 17. The
# stamp lives inside the chroot, so a chroot made again gets them again.
# Caller holds the chroot's lock (pg17.lock).
django_17() {
  local root=$CACHE/trixie stamp=$CACHE/trixie/.pg_mig-django log=$CACHE/trixie-django.log
  [ -f "$stamp" ] && return 0
  echo "pgbuild.sh: adding trixie's Django 4.2 and psycopg 3 to $root (log: $log)" >&2
  unshare --mount --propagation private -- bash -c '
    set -e
    r=$1
    mount -t proc proc "$r/proc"
    exec chroot "$r" /bin/sh -c "
      set -e
      export DEBIAN_FRONTEND=noninteractive
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        python3-django python3-psycopg
      apt-get clean
    "' bash "$root" >"$log" 2>&1 || { tail -20 "$log" >&2; die "installing Django in the chroot failed; see $log"; }
  local versions
  versions=$(chroot "$root" /usr/bin/python3 -c 'import django, psycopg; print("Django %s, psycopg %s" % (django.get_version(), psycopg.__version__))') ||
    die "no Django or psycopg in the chroot; see $log"
  echo "$versions, installed $(date -u +%FT%T.%NZ)" > "$stamp"
}

# private_copy N: build/pg/N, this checkout's copy of the cached server
# (for 15: of Debian 12's packages; the stamp names their version)
private_copy() {
  local v=$1 dest=$src/build/pg/$1 from stamp
  if [ "$v" = 18 ]; then from=$CACHE/pg18; stamp=$CACHE/pg18/.pg_mig-built
  elif [ "$v" = 15 ]; then
    from=; stamp=$CACHE/pg15.stamp
    dpkg-query -W -f='${Package} ${Version}\n' postgresql-15 postgresql-server-dev-15 > "$stamp.new"
    if cmp -s "$stamp.new" "$stamp"; then rm -f "$stamp.new"; else mv "$stamp.new" "$stamp"; fi
  else from=$CACHE/trixie; stamp=$CACHE/trixie/.pg_mig-built; fi
  if [ -f "$dest/.pg_mig-copied" ] && cmp -s "$stamp" "$dest/.pg_mig-copied"; then return 0; fi
  rm -rf "$dest"
  if [ "$v" = 18 ]; then
    copy_tree "$from" "$dest"
  else
    # relocated like any PostgreSQL install: the programs find share/ and
    # lib/ relative to their own place
    # (15: copies, not links, of the system's files: a link would be
    # the system's own file, and make install would write through it)
    mkdir -p "$dest.tmp/root/usr/lib/postgresql" "$dest.tmp/root/usr/share/postgresql" "$dest.tmp/root/usr/include"
    local link=-al
    [ "$v" = 15 ] && link=-a
    cp $link "$from/usr/lib/postgresql/$v" "$dest.tmp/root/usr/lib/postgresql/" 2>/dev/null ||
      cp -a "$from/usr/lib/postgresql/$v" "$dest.tmp/root/usr/lib/postgresql/"
    cp $link "$from/usr/share/postgresql/$v" "$dest.tmp/root/usr/share/postgresql/" 2>/dev/null ||
      cp -a "$from/usr/share/postgresql/$v" "$dest.tmp/root/usr/share/postgresql/"
    cp $link "$from/usr/include/postgresql" "$dest.tmp/root/usr/include/" 2>/dev/null ||
      cp -a "$from/usr/include/postgresql" "$dest.tmp/root/usr/include/"
  fi
  cp "$stamp" "$dest.tmp/.pg_mig-copied"
  mv "$dest.tmp" "$dest"
}

[ $# -eq 1 ] || die "usage: pgbuild.sh 15|17|18|django"
case "$1" in
  15|17|18) v=$1 ;;
  django) v=17 ;;
  *) die "usage: pgbuild.sh 15|17|18|django" ;;
esac
[ "$(id -u)" -eq 0 ] || die "run as root: $1 is built or installed into $CACHE"
mkdir -p "$CACHE"
bash "$src/scripts/deps.sh" "$v"
[ "$v" = 15 ] && { bash "$src/scripts/deps.sh" 15; private_copy 15; exit 0; }
(
  flock 9
  if [ "$v" = 18 ]; then build_18; else build_17; fi
  if [ "$1" = django ]; then django_17; fi
) 9>"$CACHE/pg$v.lock"
[ "$1" = django ] || private_copy "$1"

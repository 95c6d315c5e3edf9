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
#   pgbuild.sh 19    the same with a sid chroot $PGMIG_CACHE/sid and
#                    experimental's postgresql-19 packages (the newest
#                    there; they need sid's glibc); pgchroot.sh --chroot sid
#                    runs it
#   pgbuild.sh django
#                    the same trixie chroot (made as for 17 if missing) with
#                    trixie's python3-django (4.2) and python3-psycopg (3)
#                    added, for test/django/run.sh --trixie (Debian 12's
#                    Django 3.2 has no psycopg 3 backend); copies nothing
#   pgbuild.sh django5
#                    the same with the sid chroot (made as for 19) and
#                    sid's python3-django (5.x) and python3-psycopg, for
#                    test/django/run.sh --sid
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

# chroot_of V: the Debian suite whose chroot holds PostgreSQL V's binary
# packages (17: trixie's own; 19: experimental's, which need sid's glibc)
chroot_of() { case "$1" in 17) echo trixie ;; 19) echo sid ;; *) die "no chroot for $1" ;; esac; }

# in_chroot ROOT LOG SCRIPT: runs the shell SCRIPT as root in the chroot ROOT
# (with a /proc, in a mount namespace of its own: it vanishes with it,
# whatever happens), its output appended to LOG
in_chroot() {
  unshare --mount --propagation private -- bash -c '
    set -e
    mount -t proc proc "$1/proc"
    exec chroot "$1" /bin/sh -c "set -e; export DEBIAN_FRONTEND=noninteractive; $2"
  ' bash "$1" "$3" >>"$2" 2>&1
}

# build_chroot V: a chroot ($CACHE/SUITE, debootstrap --variant=minbase) with
# PostgreSQL V's binary packages. The server dev package is unpacked, not
# installed: installed, it pulls clang and llvm (the extension is built with
# with_llvm=no). For 19 the chroot is sid's with experimental as a second
# source, pinned so that only PostgreSQL 19 and its libpq come from there
# (contrib is in postgresql-19 itself; apt takes experimental's newest).
build_chroot() {
  local v=$1 suite root stamp log setup=
  suite=$(chroot_of "$v")
  root=$CACHE/$suite stamp=$CACHE/$suite/.pg_mig-built log=$CACHE/$suite-build.log
  [ -f "$stamp" ] && return 0
  echo "pgbuild.sh: making a $suite chroot with PostgreSQL $v in $root (log: $log)" >&2
  rm -rf "$root"
  : >"$log"
  # a base system debootstrap finished is kept: a failed package install
  # after it (the mirror, apt) starts again from there
  if [ ! -f "$root.tmp/.pg_mig-debootstrapped" ]; then
    rm -rf "$root.tmp"
    unshare --mount --propagation private -- \
      nice debootstrap --variant=minbase --keyring="$KEYRING" "$suite" "$root.tmp" "$MIRROR" >>"$log" 2>&1 ||
      { tail -20 "$log" >&2; die "debootstrap failed; see $log"; }
    touch "$root.tmp/.pg_mig-debootstrapped"
  fi
  if [ "$v" = 19 ]; then
    # sid's and experimental's Release files carry a Valid-Until; a mirror
    # that is a snapshot (or a machine clock ahead of it) must not stop us
    echo 'Acquire::Check-Valid-Until "false";' > "$root.tmp/etc/apt/apt.conf.d/99pg_mig-valid-until"
    echo "deb $MIRROR experimental main" > "$root.tmp/etc/apt/sources.list.d/experimental.list"
    cat > "$root.tmp/etc/apt/preferences.d/pg_mig-experimental" <<PIN
Package: *
Pin: release a=experimental
Pin-Priority: 1

Package: postgresql-19 postgresql-client-19 postgresql-server-dev-19 libpq5 libpq-dev
Pin: release a=experimental
Pin-Priority: 990
PIN
  fi
  in_chroot "$root.tmp" "$log" "
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      mkdir -p /etc/postgresql-common
      echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      apt-cache policy postgresql-$v postgresql-server-dev-$v libpq5
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold \
        postgresql-$v postgresql-client-$v libpq-dev make gcc libc6-dev
      cd /tmp
      apt-get download postgresql-server-dev-$v
      dpkg -x postgresql-server-dev-${v}_*.deb /
      rm -f postgresql-server-dev-${v}_*.deb
      apt-get clean" ||
    { tail -20 "$log" >&2; die "installing PostgreSQL $v in the chroot failed; see $log"; }
  [ -x "$root.tmp/usr/lib/postgresql/$v/bin/postgres" ] || die "no PostgreSQL $v in the chroot; see $log"
  rm -f "$root.tmp/.pg_mig-debootstrapped"
  mv "$root.tmp" "$root"
  echo "$(chroot "$root" /usr/lib/postgresql/$v/bin/pg_config --version), built $(date -u +%FT%T.%NZ)" > "$stamp"
}

# django_in V: the Debian suite's python3-django and python3-psycopg in the
# chroot of V (17: trixie's Django 4.2 and psycopg 3; 19: sid's Django 5.x).
# The stamp lives inside the chroot, so a chroot made again gets them again.
# Caller holds the chroot's lock (pgV.lock).
django_in() {
  local suite root stamp log
  suite=$(chroot_of "$1")
  root=$CACHE/$suite stamp=$CACHE/$suite/.pg_mig-django log=$CACHE/$suite-django.log
  [ -f "$stamp" ] && return 0
  echo "pgbuild.sh: adding $suite's Django and psycopg 3 to $root (log: $log)" >&2
  : >"$log"
  in_chroot "$root" "$log" "
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        python3-django python3-psycopg
      apt-get clean" || { tail -20 "$log" >&2; die "installing Django in the chroot failed; see $log"; }
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
  else from=$CACHE/$(chroot_of "$v"); stamp=$from/.pg_mig-built; fi
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

[ $# -eq 1 ] || die "usage: pgbuild.sh 15|17|18|19|django|django5"
case "$1" in
  15|17|18|19) v=$1 ;;
  django) v=17 ;;
  django5) v=19 ;;
  *) die "usage: pgbuild.sh 15|17|18|19|django|django5" ;;
esac
[ "$(id -u)" -eq 0 ] || die "run as root: $1 is built or installed into $CACHE"
mkdir -p "$CACHE"
bash "$src/scripts/deps.sh" "$v"
[ "$v" = 15 ] && { bash "$src/scripts/deps.sh" 15; private_copy 15; exit 0; }
(
  flock 9
  if [ "$v" = 18 ]; then build_18; else build_chroot "$v"; fi
  case "$1" in django*) django_in "$v" ;; esac
) 9>"$CACHE/pg$v.lock"
case "$1" in django*) ;; *) private_copy "$1" ;; esac

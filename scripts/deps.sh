#!/usr/bin/env bash
# scripts/deps.sh [15|17|18|19|all] -- installs the Debian packages pg_mig needs
# to build, test and run its demo, only those missing. Idempotent; run as
# root. 15 (the default) is Debian 12's server; 18 adds what building
# PostgreSQL 18 from source needs, 17 and 19 what making their trixie and
# sid chroots needs (scripts/pgbuild.sh).
set -euo pipefail
PKGS=(postgresql-15 postgresql-client-15 postgresql-server-dev-15 libpq-dev
      libboost-program-options-dev libgtest-dev cmake g++ gcc make pkg-config
      # operations (issue 16): promtool for the metrics and alert rules tests,
      # tmux for the live-view tests, man for the man page, and the Debian
      # packaging tools for make deb and the deb test
      prometheus tmux man-db groff-base dpkg-dev debhelper postgresql-server-dev-all
      # the Django integration tests (issue 17): Debian's Django 3.2 and both drivers
      python3-django python3-psycopg2 python3-psycopg
      # monitoring (issue 27): headless Chromium renders migctl report --html
      chromium
      # it_robust holds a scan at a point of its own with gdb (a race with
      # DROP EXTENSION a few instructions wide)
      gdb)
for v in "${@:-15}"; do
  case "$v" in
    15) ;;
    17|19) PKGS+=(debootstrap util-linux) ;;
    18) PKGS+=(bison flex libicu-dev zlib1g-dev) ;;
    all) PKGS+=(debootstrap util-linux bison flex libicu-dev zlib1g-dev) ;;
    *) echo "deps.sh: unknown version $v (15, 17, 18, 19 or all)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

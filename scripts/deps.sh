#!/usr/bin/env bash
# scripts/deps.sh -- installs the Debian packages pg_mig needs to build, test
# and run its demo, only those missing. Idempotent; run as root.
set -euo pipefail
PKGS=(postgresql-15 postgresql-client-15 postgresql-server-dev-15 libpq-dev
      libboost-program-options-dev libgtest-dev cmake g++ gcc make pkg-config
      python3-django python3-psycopg2 python3-psycopg)
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

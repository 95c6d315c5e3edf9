#!/usr/bin/env bash
# test/ops/test_deb.sh -- builds the Debian packages (scripts/deb.sh), installs
# both with apt-get, and runs a smoke test against the INSTALLED files: a
# sandbox primary + standby of the system's PostgreSQL 15 preloading the
# installed pg_mig, CREATE EXTENSION and a small backfill through the
# installed /usr/bin/migctl, the man page and the bash completion.
# Writes into the system PostgreSQL 15 (/usr/lib/postgresql/15): run as root.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/pgmig-deb-test.XXXXXX)
chmod 755 "$tmp"
export PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# the package is for Debian 12's PostgreSQL 15, whichever server the rest of
# the suite runs on (scripts/test.sh --pg 17): the sandbox takes PATH's
unset PGMIG_PG PG_CONFIG PG_BINDIR
trap '"$src/scripts/sandbox.sh" stop "$tmp/sb" --remove >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

bash "$src/scripts/deb.sh" "$tmp/out"
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
ext="$tmp/out/postgresql-15-pg-mig_${version}_${arch}.deb"
client="$tmp/out/pg-mig-client_${version}_${arch}.deb"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --reinstall \
  --no-install-recommends "$ext" "$client" > "$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; exit 1; }
for f in /usr/bin/migctl /usr/share/man/man1/migctl.1.gz /usr/share/bash-completion/completions/migctl \
         /usr/lib/postgresql/15/lib/pg_mig.so /usr/share/postgresql/15/extension/pg_mig.control \
         "/usr/share/postgresql/15/extension/pg_mig--${version%-*}.sql" \
         /usr/share/postgresql/15/extension/pg_mig--0.1.sql \
         "/usr/share/postgresql/15/extension/pg_mig--0.3--${version%-*}.sql"; do
  dpkg -S "$f" > /dev/null || { echo "FAIL: $f is not from a package"; exit 1; }
done

# the sandbox takes pg_config from PATH: the system's, with the installed pg_mig
[ "$(pg_config --pkglibdir)" = /usr/lib/postgresql/15/lib ]
SANDBOX_CONF="fsync = off" "$src/scripts/sandbox.sh" start "$tmp/sb" > /dev/null
# shellcheck disable=SC1091
. "$tmp/sb/env"
/usr/bin/migctl install
/usr/bin/migctl --version | tee "$tmp/version.txt"
grep -q "^extension ${version%-*} in database" "$tmp/version.txt"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE TABLE deb_t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
  INSERT INTO deb_t (id) SELECT g FROM generate_series(1, 20000) g"
/usr/bin/migctl start --table deb_t --set "n = n + 1" --batch-size 1000 --wait > "$tmp/start.txt"
grep -q '^started job [0-9]*$' "$tmp/start.txt"
[ "$(psql -qXAt -c 'SELECT count(*) FROM deb_t WHERE n = 1')" = 20000 ]
/usr/bin/migctl metrics | grep -q '^pg_mig_job_rows_done_total{.*relation="deb_t".*} 20000$'
MANWIDTH=80 man migctl 2> "$tmp/man.err" | grep -q 'migctl start'
[ ! -s "$tmp/man.err" ] || { cat "$tmp/man.err"; exit 1; }
bash -c 'source /usr/share/bash-completion/completions/migctl; COMP_WORDS=(migctl sta); COMP_CWORD=1; _migctl;
         [ "${COMPREPLY[*]}" = "start status" ]'
echo "deb: built, installed and tested ${ext##*/} and ${client##*/}"

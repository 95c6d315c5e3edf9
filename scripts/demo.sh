#!/usr/bin/env bash
# scripts/demo.sh -- the demo: installs what is missing, builds, starts a
# throwaway primary + standby, backfills a 1,000,000-row orders table through
# migctl with a live progress view, shows the result, stops the sandbox.
# PGMIG_PG=17|18 runs it on that server (scripts/pgenv.sh); default: the
# pg_config on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=pgenv.sh
. scripts/pgenv.sh
bash scripts/deps.sh ${PGMIG_PG:-15}
[ -z "${PGMIG_PG:-}" ] || bash scripts/pgbuild.sh "$PGMIG_PG"
echo "== building"
pg_resolve && pg_install_extension
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target migctl >/dev/null
migctl=$root/build/controller/migctl

dir=$(mktemp -d /tmp/pgmig-demo.XXXXXX)
chmod 755 "$dir"
trap '"$root/scripts/sandbox.sh" stop "$dir/sb" --remove >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
echo "== starting a sandbox primary + streaming standby"
scripts/sandbox.sh start "$dir/sb"
# shellcheck disable=SC1091
. "$dir/sb/env"

echo "== creating a 1,000,000-row orders table and a new nullable column"
psql -Xq <<'SQL'
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL,
                     created_at timestamptz NOT NULL);
INSERT INTO orders SELECT g, g % 50000, (g % 1000) / 10.0, now() - g * interval '1 second'
  FROM generate_series(1, 1000000) g;
VACUUM ANALYZE orders;
ALTER TABLE orders ADD COLUMN tracking_id text;
SQL

echo "== migctl install"
"$migctl" install
echo "== migctl plan (a dry run: checks, triggers, indexes, replicas, 2 sample chunks rolled back)"
"$migctl" plan --table orders --set "tracking_id = 'TRK-' || id" --where 'tracking_id IS NULL' --samples 2
echo "== migctl start --wait (live view)"
"$migctl" start --table orders --set "tracking_id = 'TRK-' || id" --where 'tracking_id IS NULL' \
  --max-lag-bytes 16MB --wait

echo "== the result"
psql -X <<'SQL'
SELECT id, tracking_id FROM orders ORDER BY id LIMIT 3;
SELECT count(*) AS still_null FROM orders WHERE tracking_id IS NULL;
SELECT job_id, relation, state, rows_done, chunks_done, started_at, finished_at FROM mig_jobs;
SELECT at, event, detail FROM mig_job_events ORDER BY event_id;
SQL
echo "== the standby"
psql -X -p "$STANDBY_PORT" -c "SELECT count(*) AS still_null_on_standby FROM orders WHERE tracking_id IS NULL"
echo "== stopping the sandbox"

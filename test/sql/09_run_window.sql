-- run_window: times in the zone written after the windows, or else in the
-- server's TimeZone (postgresql.conf), never in the TimeZone of the
-- session that started the job.
CREATE TABLE rw_t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO rw_t (id) SELECT g FROM generate_series(1, 100) g;

-- the server's zone, and one far from it
SELECT setting AS server_tz FROM pg_file_settings WHERE name = 'timezone' \gset
SELECT CASE WHEN abs(extract(epoch FROM (now() AT TIME ZONE :'server_tz')
                              - (now() AT TIME ZONE 'Asia/Kathmandu'))) < 3 * 3600
            THEN 'America/Caracas' ELSE 'Asia/Kathmandu' END AS far_tz \gset
-- a window of 40 minutes around now, written in a given zone's clock time
CREATE FUNCTION rw_window(tz text) RETURNS text LANGUAGE sql AS $$
  SELECT to_char((now() - interval '20 min') AT TIME ZONE tz, 'HH24:MI') || '-' ||
         to_char((now() + interval '20 min') AT TIME ZONE tz, 'HH24:MI')
$$;

-- a window with its own zone: the job runs now, whatever the session's zone
SET TimeZone = 'UTC';
SELECT mig_start_backfill('rw_t', 'n = n + 1', batch_size => 10,
                          run_window => rw_window(:'far_tz') || ' ' || :'far_tz') AS j1 \gset
SELECT mig_wait(:j1, '60s');

-- a window without a zone is in the server's zone, not the session's
SET TimeZone = :'far_tz';
SELECT mig_start_backfill('rw_t', 'n = n + 1', batch_size => 10,
                          run_window => 'sun-sat ' || rw_window(:'server_tz')) AS j2 \gset
SELECT mig_wait(:j2, '60s');
RESET TimeZone;
SELECT n, count(*) FROM rw_t GROUP BY n;

-- zones are checked at start; only the last window may carry one
\set VERBOSITY default
SELECT mig_start_backfill('rw_t', 'n = 1', run_window => '01:00-02:00 Mars/Olympus_Mons');
SELECT mig_start_backfill('rw_t', 'n = 1', run_window => '01:00-02:00 UTC; 03:00-04:00');
\set VERBOSITY terse
BEGIN;
SELECT mig_start_backfill('rw_t', 'n = 1',
                          run_window => 'mon-fri 22:00-06:00; sat,sun 00:00-24:00 Europe/Berlin') > 0 AS started;
ROLLBACK;
DROP FUNCTION rw_window(text);
DROP TABLE rw_t;

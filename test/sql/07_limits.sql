-- Settings with units, one check for given and defaulted knobs, length caps
-- of the text knobs, and the retention of a job's events.
CREATE TABLE lim_t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO lim_t (id) SELECT g FROM generate_series(1, 100) g;

-- durations and sizes are settings with units, like PostgreSQL's own
SELECT name, setting, unit, boot_val, min_val, max_val
  FROM pg_settings
 WHERE name IN ('pg_mig.default_chunk_time', 'pg_mig.default_max_lag',
                'pg_mig.default_max_lag_bytes', 'pg_mig.default_lock_timeout',
                'pg_mig.default_statement_timeout', 'pg_mig.max_events_per_job')
 ORDER BY name;
SHOW pg_mig.default_chunk_time;
SHOW pg_mig.default_max_lag_bytes;
SET pg_mig.default_lock_timeout = '2s';
SHOW pg_mig.default_lock_timeout;
SET pg_mig.default_statement_timeout = 90000;
SHOW pg_mig.default_statement_timeout;
SET pg_mig.default_max_lag = '1min';
SET pg_mig.default_chunk_time = '200ms';
SET pg_mig.default_max_lag_bytes = '16MB';
SHOW pg_mig.default_max_lag_bytes;
-- nonsense and values out of range are refused by SET itself (set_guc
-- shows the error without the range in parentheses, which has units from
-- PostgreSQL 17 on: "(1 ms .. 600000 ms)", before "(1 .. 600000)")
CREATE FUNCTION pg_temp.set_guc(name text, value text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_catalog.set_config(name, value, false);
    RETURN 'set';
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN 'ERROR: ' || pg_catalog.regexp_replace(SQLERRM, ' \([^()]*\)$', '');
END $f$;
SET pg_mig.default_lock_timeout = '30d';
SELECT pg_temp.set_guc('pg_mig.default_lock_timeout', '11min');
SELECT pg_temp.set_guc('pg_mig.default_lock_timeout', '0');
SET pg_mig.default_lock_timeout = 'soon';
SELECT pg_temp.set_guc('pg_mig.default_chunk_time', '-1s');
SET pg_mig.default_max_lag_bytes = 'lots';
SET pg_mig.max_events_per_job = 5;

-- a job takes the settings: when an argument is left out, and for the
-- required knobs when it is NULL
BEGIN;
SELECT mig_start_backfill('lim_t', 'n = n + 1') AS j1 \gset
SELECT chunk_time, max_lag, max_lag_bytes, lock_timeout, statement_timeout
  FROM mig_job WHERE job_id = :j1;
ROLLBACK;
BEGIN;
SELECT mig_start_backfill('lim_t', 'n = n + 1', lock_timeout => NULL,
                          statement_timeout => NULL, batch_size => NULL,
                          max_retries => NULL) AS j2 \gset
SELECT batch_size, lock_timeout, statement_timeout, max_retries
  FROM mig_job WHERE job_id = :j2;
ROLLBACK;
RESET pg_mig.default_lock_timeout;
RESET pg_mig.default_statement_timeout;
RESET pg_mig.default_max_lag;
RESET pg_mig.default_chunk_time;
RESET pg_mig.default_max_lag_bytes;

-- text knobs and clauses are at most 64 kB
\set VERBOSITY default
SELECT mig_start_backfill('lim_t', 'n = ' || repeat('1', 70000));
SELECT mig_start_backfill('lim_t', 'n = 1', where_clause => repeat(' ', 70000) || 'true');
SELECT mig_start_backfill('lim_t', 'n = 1', throttle_query => 'SELECT ' || repeat(' ', 70000) || 'false');
SELECT mig_start_backfill('lim_t', 'n = 1', run_window => repeat(' ', 70000) || '01:00-02:00');
SELECT mig_start_backfill('lim_t', 'n = 1', ignore_slots => ARRAY[repeat('s', 70000)]);
SELECT mig_start_backfill('lim_t', 'n = 1',
                          ignore_slots => array(SELECT 'slot_' || g FROM generate_series(1, 8000) g));
SELECT * FROM mig_plan('lim_t', 'n = ' || repeat('1', 70000));
SELECT * FROM mig_plan('lim_t', 'n = 1', repeat(' ', 70000) || 'true');
\set VERBOSITY terse
-- 64 kB itself is allowed
BEGIN;
SELECT mig_start_backfill('lim_t', 'n = 1', where_clause => repeat(' ', 65536 - 4) || 'true') > 0 AS started;
ROLLBACK;

-- a job keeps pg_mig.max_events_per_job events; the repeated ones go first
BEGIN;
SELECT mig_start_backfill('lim_t', 'n = n + 1') AS j3 \gset
SELECT mig_pause(:j3);
COMMIT;
SELECT count(*) AS calls
  FROM generate_series(1, 1100) i, LATERAL (SELECT mig_set(:j3, batch_size => 10 + i)) s;
SELECT count(*) AS events, count(*) FILTER (WHERE event = 'changed') AS changed
  FROM mig_job_event WHERE job_id = :j3;
SELECT event FROM mig_job_event WHERE job_id = :j3 AND event <> 'changed' ORDER BY event_id;
-- the newest change is kept
SELECT detail LIKE '%batch_size changed' AS last_kept, batch_size
  FROM mig_job_event e JOIN mig_job j USING (job_id)
 WHERE job_id = :j3 ORDER BY event_id DESC LIMIT 1;
SET pg_mig.max_events_per_job = 10;
SELECT mig_set(:j3, batch_size => 5);
SELECT count(*) AS events FROM mig_job_event WHERE job_id = :j3;
SELECT event FROM mig_job_event WHERE job_id = :j3 AND event <> 'changed' ORDER BY event_id;
RESET pg_mig.max_events_per_job;
SELECT mig_cancel(:j3);
SELECT mig_wait(:j3);
SELECT count(*) AS untouched FROM lim_t WHERE n = 0;
DROP TABLE lim_t;

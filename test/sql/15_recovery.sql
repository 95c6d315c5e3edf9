-- Starting again is safe (0.4, issue 21): job_key on every start function,
-- the retry of a failed job by starting it again, failed schema steps that
-- block nothing, mig_forget of every finished job, and hints that name a
-- path that works in SQL.  Job ids vary with the tests before this one:
-- rk_try shows an error with every job id replaced by N.
\set VERBOSITY default
SET client_min_messages = warning;
CREATE FUNCTION rk_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  st text; msg text; det text; hin text;
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
  RETURN regexp_replace(st || ': ' || msg || E'\nDETAIL: ' || coalesce(det, '')
                        || E'\nHINT: ' || coalesce(hin, ''), '(job |\()[0-9]+', '\1N', 'gi');
END $$;

CREATE TABLE rk (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0, note text, ref_id int);
INSERT INTO rk (id, note)
  SELECT g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'x' END FROM generate_series(1, 2000) g;

-- job_key is the last argument of every start function, NULL by default
SELECT p.proname, (p.proargnames)[p.pronargs] AS last_argument,
       pg_get_function_arg_default(p.oid, p.pronargs) AS default_value
  FROM pg_proc p
 WHERE p.proname IN ('mig_start_backfill', 'mig_start_delete', 'mig_set_not_null',
                     'mig_add_foreign_key', 'mig_validate_constraint',
                     'mig_create_index', 'mig_revert')
 ORDER BY 1;
SELECT format_type(atttypid, atttypmod) AS job_key_type FROM pg_attribute
 WHERE attrelid = 'mig_jobs'::regclass AND attname = 'job_key';

-- 0.3 calls by position and by name work as before
SELECT mig_start_backfill('rk', 'v = v + 1', NULL, 500) AS j0 \gset
SELECT mig_wait(:j0, '60s');
SELECT mig_start_delete('rk', 'id < 0', batch_size => 500) AS j00 \gset
SELECT mig_wait(:j00, '60s');

-- a non-idempotent backfill with a key: started again, it runs once
SELECT mig_start_backfill('rk', 'v = v + 1', batch_size => 500, job_key => 'rk-1') AS j1 \gset
SELECT mig_wait(:j1, '60s');
SELECT mig_start_backfill('rk', 'v = v + 1', batch_size => 500, job_key => 'rk-1') = :j1 AS same_job;
-- knobs do not change what runs: the same job
SELECT mig_start_backfill('rk', 'v = v + 1', batch_size => 100, job_key => 'rk-1') = :j1 AS same_job;
SELECT v, count(*) FROM rk GROUP BY v;
SELECT job_key, state FROM mig_jobs WHERE job_id = :j1;
SELECT count(*) AS jobs_with_the_key FROM mig_jobs WHERE job_key = 'rk-1';
-- other arguments or another kind with the key: an error that names both
SELECT rk_try($$SELECT mig_start_backfill('rk', 'v = v + 2', job_key => 'rk-1')$$);
SELECT rk_try($$SELECT mig_start_delete('rk', 'v < 0', job_key => 'rk-1')$$);
SELECT rk_try($$SELECT mig_start_backfill('rk', 'v = v + 1', job_key => ' ')$$);
-- only a role that may control the job as its owner gets it back
CREATE ROLE rk_other LOGIN;
GRANT SELECT, UPDATE ON rk TO rk_other;
SET ROLE rk_other;
SELECT rk_try($$SELECT mig_start_backfill('rk', 'v = v + 1', batch_size => 500, job_key => 'rk-1')$$);
RESET ROLE;

-- a paused job with the key is resumed
SELECT mig_start_backfill('rk', 'v = v + 1', batch_size => 100, sleep => '20ms',
                          job_key => 'rk-2') AS j2 \gset
SELECT mig_pause(:j2);
SELECT state FROM mig_jobs WHERE job_id = :j2;
SELECT mig_start_backfill('rk', 'v = v + 1', batch_size => 100, sleep => '20ms',
                          job_key => 'rk-2') = :j2 AS same_job;
SELECT mig_wait(:j2, '60s');
SELECT event FROM mig_job_events WHERE job_id = :j2 AND event IN ('paused', 'resumed')
 ORDER BY event_id;
SELECT v, count(*) FROM rk GROUP BY v;

-- SET NOT NULL on NULLs fails and leaves nothing; the hint's own path
-- works: a backfill of the NULLs, then mig_set_not_null again, which
-- resumes the failed job (event 'retried')
SELECT mig_set_not_null('rk', 'note', lock_timeout => '2s') AS jn \gset
SELECT mig_wait(:jn, '60s');
SELECT state, regexp_replace(last_error, '[0-9]+', 'N', 'g') AS last_error
  FROM mig_jobs WHERE job_id = :jn;
SELECT mig_start_backfill('rk', $$note = 'y'$$, 'note IS NULL') AS jb \gset
SELECT mig_wait(:jb, '60s');
SELECT mig_set_not_null('rk', 'note', lock_timeout => '2s') = :jn AS resumed_the_failed_job;
SELECT mig_wait(:jn, '60s');
SELECT attnotnull FROM pg_attribute WHERE attrelid = 'rk'::regclass AND attname = 'note';
SELECT count(*) AS retried FROM mig_job_events WHERE job_id = :jn AND event = 'retried';
-- a finished job's hint names its own kind's start function
SELECT rk_try(format('SELECT mig_cancel(%s)', :jn));

-- a foreign key with orphans => 'fail' fails and leaves nothing; the hint's
-- orphans => 'delete' then works
CREATE TABLE rk_parent (id int PRIMARY KEY);
INSERT INTO rk_parent SELECT generate_series(1, 10);
UPDATE rk SET ref_id = id % 12;
SELECT mig_add_foreign_key('rk', '{ref_id}', 'rk_parent') AS jf \gset
SELECT mig_wait(:jf, '60s');
SELECT state, regexp_replace(last_error, '[0-9]+', 'N', 'g') AS last_error
  FROM mig_jobs WHERE job_id = :jf;
SELECT count(*) AS constraints_left FROM pg_constraint WHERE conrelid = 'rk'::regclass AND contype = 'f';
SELECT mig_add_foreign_key('rk', '{ref_id}', 'rk_parent', orphans => 'delete') AS jf2 \gset
SELECT :jf2 <> :jf AS new_job;
SELECT mig_wait(:jf2, '60s');
SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'rk'::regclass AND contype = 'f';
SELECT count(*) AS orphans FROM rk WHERE ref_id NOT IN (SELECT id FROM rk_parent);

-- a unique index over duplicates fails and leaves no index; delete the
-- duplicates, start the index again: the failed job is resumed and succeeds
CREATE TABLE rk_u (id int PRIMARY KEY, code int);
INSERT INTO rk_u SELECT g, g % 500 FROM generate_series(1, 600) g;
SELECT mig_create_index('rk_u', 'code', "unique" => true) AS ji \gset
SELECT mig_wait(:ji, '60s');
SELECT state, regexp_replace(last_error, '[0-9]+', 'N', 'g') AS last_error
  FROM mig_jobs WHERE job_id = :ji;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'rk_u'::regclass AND NOT indisprimary;
SELECT mig_start_delete('rk_u', 'id > 500') AS jd \gset
SELECT mig_wait(:jd, '60s');
SELECT mig_create_index('rk_u', 'code', "unique" => true) = :ji AS resumed_the_failed_job;
SELECT mig_wait(:ji, '60s');
SELECT indisvalid, indisunique FROM pg_index WHERE indrelid = 'rk_u'::regclass AND NOT indisprimary;

-- a failed walk still blocks another walk of its rows, with a hint that works
SELECT mig_start_backfill('rk', 'v = v + 100 / (id - 1501)', batch_size => 100) AS jx \gset
SELECT mig_wait(:jx, '60s');
SELECT rk_try($$SELECT mig_start_delete('rk', 'id < 0')$$);
-- forgotten, it blocks nothing and cannot be resumed
SELECT mig_forget(:jx);
SELECT rk_try(format('SELECT mig_resume(%s)', :jx));
SELECT state, job_key FROM mig_jobs WHERE job_id = :jx;
SELECT mig_start_delete('rk', 'id < 0') AS jd2 \gset
SELECT mig_wait(:jd2, '60s');
-- an unfinished job cannot be forgotten; forgetting twice is a notice
SELECT mig_start_backfill('rk', 'v = v', batch_size => 10, sleep => '1s') AS jw \gset
SELECT mig_pause(:jw);
SELECT rk_try(format('SELECT mig_forget(%s)', :jw));
SELECT mig_cancel(:jw);
SELECT mig_forget(:jw);
SELECT rk_try(format('SELECT mig_forget(%s)', :jw));

-- forgetting a job releases its key: the step can be done again
SELECT mig_forget(:j1);
SELECT job_key FROM mig_jobs WHERE job_id = :j1;
SELECT event, regexp_replace(detail, ' by [a-z_]+', '') AS detail FROM mig_job_events
 WHERE job_id = :j1 AND event IN ('forgotten', 'key released') ORDER BY event_id;
SELECT mig_start_backfill('rk', 'v = v + 1', batch_size => 500, job_key => 'rk-1') AS j1b \gset
SELECT :j1b <> :j1 AS new_job;
SELECT mig_wait(:j1b, '60s');

-- a revert that succeeded releases the backfill's key; the revert has its own
SELECT mig_start_backfill('rk', 'v = v + 1000', keep_old_values => true, job_key => 'rk-3') AS jk \gset
SELECT mig_wait(:jk, '60s');
SELECT mig_revert(:jk, job_key => 'rk-3-revert') AS jr \gset
SELECT mig_wait(:jr, '60s');
SELECT mig_revert(:jk, job_key => 'rk-3-revert') = :jr AS same_revert;
SELECT job_id = :jk AS is_backfill, job_key FROM mig_jobs WHERE job_id IN (:jk, :jr) ORDER BY job_id;
SELECT max(v) < 1000 AS reverted FROM rk;

SELECT mig_wait(job_id, '60s') FROM mig_jobs WHERE state IN ('queued', 'running') ORDER BY job_id;
DROP TABLE rk, rk_parent, rk_u;
DROP FUNCTION rk_try(text);
DROP ROLE rk_other;
RESET client_min_messages;

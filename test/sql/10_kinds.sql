-- Job kinds (0.3): mig_start_delete, mig_set_not_null and
-- mig_validate_constraint, their checks at start and their outcome.
\set VERBOSITY default
CREATE TABLE kd (id bigint PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO kd SELECT g, g % 10, CASE WHEN g % 3 = 0 THEN NULL ELSE 'x' END
  FROM generate_series(1, 3000) g;

-- the new columns of mig_jobs
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'mig_jobs'::regclass AND attname IN ('kind', 'step', 'parallel')
 ORDER BY attnum;

-- mig_start_delete: the where clause is required and checked like a backfill's
SELECT mig_start_delete('kd', NULL);
SELECT mig_start_delete('kd', '  ');
SELECT mig_start_delete('kd', 'v = ');
SELECT mig_start_delete('kd', 'nope = 1');
SELECT mig_start_delete('kd', 'v = 1; DROP TABLE kd');
SELECT mig_start_delete('kd', 'v = 1 RETURNING id');
SELECT mig_start_delete('kd', 'v = 1', batch_size => -1);
SELECT mig_start_delete('no_such_table', 'v = 1');
CREATE TABLE kd_nokey (a int);
SELECT mig_start_delete('kd_nokey', 'a = 1');

-- mig_plan explains a delete (set_clause NULL): sample chunks are rolled back
SELECT kind, target, CASE WHEN kind = 'sample' THEN keys END AS keys, rows
  FROM mig_plan('kd', NULL, 'v = 3', batch_size => 400, samples => 2)
 WHERE kind <> 'change' ORDER BY kind, target;
SELECT count(*) FILTER (WHERE v = 3) AS still_there FROM kd;
SELECT mig_plan('kd', NULL, NULL);
-- a delete end to end: only the matching rows go, in chunks
SELECT mig_start_delete('kd', 'v = 3', batch_size => 400, chunk_time => NULL) AS job \gset
SELECT mig_wait(:job, '60s');
SELECT kind, state, rows_done, chunks_done, step, parallel, set_clause, where_clause
  FROM mig_jobs WHERE job_id = :job;
SELECT count(*) AS rows_left, count(*) FILTER (WHERE v = 3) AS matching FROM kd;

-- mig_set_not_null: checks at start
SELECT mig_set_not_null('kd', 'nope');
SELECT mig_set_not_null('kd', NULL);
SELECT mig_set_not_null('kd', 'note', lock_timeout => '-1s');
CREATE TEMP TABLE kd_temp (id int PRIMARY KEY, a int);
SELECT mig_set_not_null('kd_temp', 'a');
-- each kind's refusal names what it would do, in a sentence of its own
SELECT mig_validate_constraint('kd_temp', 'kd_temp_pkey');
SELECT mig_create_index('kd_temp', 'a');
SELECT mig_add_foreign_key('kd_temp', '{a}', 'kd');
SELECT mig_change_type('kd_temp', 'a', 'bigint');

-- rows still NULL: the job fails with their count and leaves no constraint
SELECT mig_set_not_null('kd', 'note', lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '60s');
SELECT kind, state, step, last_error FROM mig_jobs WHERE job_id = :job;
-- (contype 'n': PostgreSQL 18 lists NOT NULL constraints in pg_constraint too)
SELECT conname FROM pg_constraint WHERE conrelid = 'kd'::regclass AND contype <> 'n' ORDER BY 1;
SELECT attnotnull FROM pg_attribute WHERE attrelid = 'kd'::regclass AND attname = 'note';

-- (0.4: the failed job left nothing behind and blocks no other job on the
-- table; starting it again resumes it: see 15_recovery)

-- backfilled, resumed: the column is NOT NULL and the check is gone
UPDATE kd SET note = 'y' WHERE note IS NULL;
SELECT mig_resume(:job);
SELECT mig_wait(:job, '60s');
SELECT state, step FROM mig_jobs WHERE job_id = :job;
SELECT conname FROM pg_constraint WHERE conrelid = 'kd'::regclass AND contype <> 'n' ORDER BY 1;
SELECT attnotnull FROM pg_attribute WHERE attrelid = 'kd'::regclass AND attname = 'note';
SELECT event, detail FROM mig_job_events WHERE job_id = :job AND event = 'step' ORDER BY event_id;

-- a column that is NOT NULL already: every step is skipped
SELECT mig_set_not_null('kd', 'v') AS job \gset
SELECT mig_wait(:job, '60s');
SELECT count(*) FILTER (WHERE detail LIKE '%already done') AS skipped
  FROM mig_job_events WHERE job_id = :job AND event = 'step';

-- mig_validate_constraint
SELECT mig_validate_constraint('kd', 'nope');
SELECT mig_validate_constraint('kd', 'kd_pkey');
ALTER TABLE kd ADD CONSTRAINT kd_v_small CHECK (v < 9) NOT VALID;
SELECT mig_validate_constraint('kd', 'kd_v_small') AS job \gset
SELECT mig_wait(:job, '60s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT convalidated FROM pg_constraint WHERE conname = 'kd_v_small';
SELECT mig_cancel(:job);
DELETE FROM kd WHERE v >= 9;
SELECT mig_validate_constraint('kd', 'kd_v_small') AS job \gset
SELECT mig_wait(:job, '60s');
SELECT kind, state, step FROM mig_jobs WHERE job_id = :job;
SELECT convalidated FROM pg_constraint WHERE conname = 'kd_v_small';

-- caller's rights: DDL needs the table's owner; a delete needs DELETE
CREATE ROLE regress_mig_kinds LOGIN;
GRANT SELECT, UPDATE ON kd TO regress_mig_kinds;
SET ROLE regress_mig_kinds;
SELECT mig_set_not_null('kd', 'note');
SELECT mig_validate_constraint('kd', 'kd_v_small');
SELECT mig_start_delete('kd', 'v = 1');
RESET ROLE;
SELECT count(*) AS jobs_of_the_role FROM mig_jobs WHERE owner = 'regress_mig_kinds';
REVOKE ALL ON kd FROM regress_mig_kinds;
DROP ROLE regress_mig_kinds;

-- mig_create_index: the parts are checked, never pasted
SELECT mig_create_index('kd', 'v) WHERE (true');
SELECT mig_create_index('kd', 'v) WITH (fillfactor = 10');
SELECT mig_create_index('kd', 'v', where_clause => 'true) TABLESPACE pg_default; --');
SELECT mig_create_index('kd', 'v', method => 'nope');
SELECT mig_create_index('kd', 'v', method => 'brin', "unique" => true);
SELECT mig_create_index('kd', 'nope');
SELECT mig_create_index('kd', 'v', include => '{nope}');
SELECT mig_create_index('kd', '');
-- mig_wait would hold a snapshot that CREATE INDEX CONCURRENTLY waits for:
-- wait in a procedure that commits between looks
CREATE PROCEDURE kd_wait(job bigint) LANGUAGE plpgsql AS $$
BEGIN
  LOOP
    EXIT WHEN (SELECT state FROM mig_jobs WHERE job_id = job)
              IN ('succeeded', 'failed', 'cancelled');
    COMMIT;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT mig_create_index('kd', 'v, id DESC', include => '{note}', where_clause => 'v > 1') AS job \gset
CALL kd_wait(:job);
SELECT kind, state, step, last_error FROM mig_jobs WHERE job_id = :job;
SELECT indexrelid::regclass, indisvalid, pg_get_indexdef(indexrelid)
  FROM pg_index WHERE indrelid = 'kd'::regclass ORDER BY 1;
-- names in the expressions are resolved at start, as the caller sees them
CREATE FUNCTION kd_bucket(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 / 2';
SELECT mig_create_index('kd', 'kd_bucket(v)', where_clause => 'kd_bucket(v) > 0') AS job \gset
CALL kd_wait(:job);
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indrelid = 'kd'::regclass AND pg_get_indexdef(indexrelid) LIKE '%kd_bucket%';
-- duplicates: the job fails with the error and leaves no invalid index
SELECT mig_create_index('kd', 'v', "unique" => true, index_name => 'kd_v_unique') AS job \gset
CALL kd_wait(:job);
SELECT kind, state, step, split_part(last_error, ':', 1) AS error,
       last_error LIKE '%is duplicated. (SQLSTATE 23505). Hint: %mig_create_index() again.' AS says_why
  FROM mig_jobs WHERE job_id = :job;
SELECT count(*) AS kd_v_unique FROM pg_class WHERE relname = 'kd_v_unique';

-- mig_add_foreign_key: checks at start
CREATE TABLE kfp (id int PRIMARY KEY, code text UNIQUE);
INSERT INTO kfp SELECT g, 'c' || g FROM generate_series(1, 90) g;
CREATE TABLE kfc (id int PRIMARY KEY, pid int, pcode text);
INSERT INTO kfc SELECT g, CASE WHEN g % 50 = 0 THEN NULL ELSE g % 100 + 1 END,
                       'c' || (g % 90 + 1)
  FROM generate_series(1, 2000) g;
SELECT mig_add_foreign_key('kfc', '{nope}', 'kfp');
SELECT mig_add_foreign_key('kfc', '{}', 'kfp');
SELECT mig_add_foreign_key('kfc', '{pid}', 'kfp', ref_columns => '{nope}');
SELECT mig_add_foreign_key('kfc', '{pid, pcode}', 'kfp');
SELECT mig_add_foreign_key('kfc', '{pid}', 'kfp', on_delete => 'explode');
SELECT mig_add_foreign_key('kfc', '{pid}', 'kfp', orphans => 'ignore');
SELECT mig_add_foreign_key('kfc', '{pid}', 'kfp', constraint_name => 'kfc_pkey');
SELECT mig_add_foreign_key('kfc', '{pid}', 'kfc_nope');
-- orphans => 'fail': the count and a few of them; the NOT VALID constraint goes again
SELECT mig_add_foreign_key('kfc', '{pid}', 'kfp', batch_size => 300, chunk_time => NULL) AS job \gset
SELECT mig_wait(:job, '60s');
SELECT kind, state, step, last_error FROM mig_jobs WHERE job_id = :job;
SELECT conname FROM pg_constraint WHERE conrelid = 'kfc'::regclass AND contype <> 'n' ORDER BY 1;
SELECT mig_cancel(:job);
-- orphans => 'delete': chunk by chunk, then VALIDATE; NULL keys are no orphans
SELECT mig_add_foreign_key('kfc', '{pid}', 'kfp', orphans => 'delete', on_delete => 'cascade',
                           batch_size => 300, chunk_time => NULL) AS job \gset
SELECT mig_wait(:job, '60s');
SELECT kind, state, step, rows_done, last_error FROM mig_jobs WHERE job_id = :job;
SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'kfc'::regclass AND contype <> 'n' ORDER BY 1;
SELECT count(*) AS rows_left, count(*) FILTER (WHERE pid IS NULL) AS null_keys FROM kfc;
-- a composite key to other columns, orphans => 'set_null'
UPDATE kfc SET pcode = 'zz' WHERE id % 100 = 1;
ALTER TABLE kfp ADD UNIQUE (id, code);
SELECT mig_add_foreign_key('kfc', '{pid, pcode}', 'kfp', ref_columns => '{id, code}',
                           constraint_name => 'kfc_pair_fk', orphans => 'set_null') AS job \gset
SELECT mig_wait(:job, '60s');
SELECT state, rows_done FROM mig_jobs WHERE job_id = :job;
SELECT convalidated FROM pg_constraint WHERE conname = 'kfc_pair_fk';
SELECT count(*) FROM kfc WHERE pcode = 'zz';

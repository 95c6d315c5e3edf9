-- Hostile and malformed input: each is an ERROR with an errcode, a message
-- and a hint, and no job is made; valid odd input works.
\set VERBOSITY default
CREATE TABLE t (id int PRIMARY KEY, a int, b text, n int DEFAULT 0);
INSERT INTO t SELECT g, g, 'b' || g FROM generate_series(1, 100) g;
CREATE TABLE t_copy AS SELECT * FROM t;
SELECT count(*) AS jobs_before FROM mig_jobs \gset

-- set clause
SELECT mig_start_backfill('t', NULL);
SELECT mig_start_backfill('t', '');
SELECT mig_start_backfill('t', '   ');
SELECT mig_start_backfill('t', 'a = 1; DROP TABLE t');
SELECT mig_start_backfill('t', 'a = 1 WHERE true');
SELECT mig_start_backfill('t', 'a = 1 WHERE CURRENT OF c');
SELECT mig_start_backfill('t', 'a = 1 RETURNING *');
SELECT mig_start_backfill('t', 'a = 1 FROM pg_authid');
SELECT mig_start_backfill('t', 'a = 1 /* unterminated comment');
SELECT mig_start_backfill('t', $$b = 'unterminated$$);
SELECT mig_start_backfill('t', $$b = $q$x$$);
SELECT mig_start_backfill('t', 'nosuch = 1');
SELECT mig_start_backfill('t', 'a = nosuch');
SELECT mig_start_backfill('t', $$a = 'text'$$);
SELECT mig_start_backfill('t', 'a = now()');
SELECT mig_start_backfill('t', 'id = id + 1');
SELECT mig_start_backfill('t', 'a = 1, a = 2');
SELECT mig_start_backfill('t', 'a = (SELECT 1; SELECT 2)');
SELECT mig_start_backfill('t', 'a = pg_sleep(1)');
SELECT mig_start_backfill('t', 'a = 1 ) ; DELETE FROM t WHERE ( true');
SELECT mig_start_backfill('t', repeat('a = 1, ', 20000) || 'a = 1');
SELECT mig_start_backfill('t', 'xmin = 1');
-- where clause
SELECT mig_start_backfill('t', 'a = 1', where_clause => '');
SELECT mig_start_backfill('t', 'a = 1', where_clause => 'a > 0; DROP TABLE t');
SELECT mig_start_backfill('t', 'a = 1', where_clause => 'true) OR (true');
SELECT mig_start_backfill('t', 'a = 1', where_clause => 'true
) OR (true');
SELECT mig_start_backfill('t', 'a = 1', where_clause => 'a');
SELECT mig_start_backfill('t', 'a = 1', where_clause => 'nosuch IS NULL');
SELECT mig_start_backfill('t', 'a = 1', where_clause => 'true RETURNING *');
SELECT mig_start_backfill('t', 'a = 1', where_clause => $$b = 'x$$);
-- relation
SELECT mig_start_backfill(NULL, 'a = 1');
SELECT mig_start_backfill('nosuch', 'a = 1');
SELECT mig_start_backfill(12345678::oid::regclass, 'a = 1');
SELECT mig_start_backfill('pg_class', 'relname = relname');
CREATE VIEW t_view AS SELECT * FROM t;
SELECT mig_start_backfill('t_view', 'a = 1');
CREATE TEMP TABLE t_temp (id int PRIMARY KEY, a int);
SELECT mig_start_backfill('t_temp', 'a = 1');
CREATE TABLE t_nokey (id int, a int);
SELECT mig_start_backfill('t_nokey', 'a = 1');
CREATE TABLE t_nullable_unique (id int UNIQUE, a int);
SELECT mig_start_backfill('t_nullable_unique', 'a = 1');
CREATE SEQUENCE t_seq;
SELECT mig_start_backfill('t_seq', 'a = 1');
-- knobs
SELECT mig_start_backfill('t', 'a = 1', batch_size => 0);
SELECT mig_start_backfill('t', 'a = 1', batch_size => -5);
SELECT mig_start_backfill('t', 'a = 1', batch_size => 2000000000);
SELECT mig_start_backfill('t', 'a = 1', chunk_time => '-1s');
SELECT mig_start_backfill('t', 'a = 1', chunk_time => '2 days');
SELECT mig_start_backfill('t', 'a = 1', max_lag => '-5 min');
SELECT mig_start_backfill('t', 'a = 1', max_lag_bytes => -1);
SELECT mig_start_backfill('t', 'a = 1', sleep => '1000 years');
SELECT mig_start_backfill('t', 'a = 1', lock_timeout => '0');
SELECT mig_start_backfill('t', 'a = 1', max_retries => -1);
SELECT mig_start_backfill('t', 'a = 1', statement_timeout => '0');
SELECT mig_start_backfill('t', 'a = 1', max_wal_rate => -100);
SELECT mig_start_backfill('t', 'a = 1', nice_ratio => 'NaN');
SELECT mig_start_backfill('t', 'a = 1', nice_ratio => -1);
SELECT mig_start_backfill('t', 'a = 1', ignore_slots => ARRAY[NULL]::text[]);
SELECT mig_start_backfill('t', 'a = 1', run_window => 'bogus');
SELECT mig_start_backfill('t', 'a = 1', throttle_query => 'SELECT 1');
SELECT mig_start_backfill('t', 'a = 1', throttle_query => 'SELECT true; SELECT false');
SELECT mig_start_backfill('t', 'a = 1', throttle_query => 'SELEC true');
SELECT mig_start_backfill('t', 'a = 1', max_active_sessions => -1);

-- nothing was made, nothing was changed
SELECT count(*) - :jobs_before AS new_jobs FROM mig_jobs;
SELECT count(*) AS differing FROM t FULL JOIN t_copy USING (id)
 WHERE t IS DISTINCT FROM t_copy;

-- odd but valid input works: quoted identifiers, comments, dollar quotes
CREATE TABLE "Order Items" ("Item ID" int PRIMARY KEY, "Qty ""x""" int, note text);
INSERT INTO "Order Items" SELECT g, 0, NULL FROM generate_series(1, 500) g;
SELECT mig_start_backfill('"Order Items"', $$"Qty ""x""" = "Item ID" * 2, note = $n$it's; "fine" -- really$n$ -- trailing comment$$,
                          where_clause => '"Item ID" > 100 -- only some',
                          batch_size => 64) AS job \gset
SELECT mig_wait(:job, '60s');
SELECT count(*) FILTER (WHERE "Qty ""x""" = "Item ID" * 2 AND note = $$it's; "fine" -- really$$) AS changed,
       count(*) FILTER (WHERE "Qty ""x""" = 0 AND note IS NULL) AS untouched
  FROM "Order Items";
SELECT relation, rows_done FROM mig_jobs WHERE job_id = :job;

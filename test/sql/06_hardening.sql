-- Hardening (issue 11): nobody can make a worker run anything as another
-- role, not through pg_mig's tables, not through objects created later,
-- not through settings; who may control a job; who sees the replicas.
\set VERBOSITY default
CREATE ROLE regress_mig_h_owner LOGIN;      -- owns the table
CREATE ROLE regress_mig_h_writer LOGIN;     -- may UPDATE it
CREATE ROLE regress_mig_h_mallory LOGIN;    -- may write everything
CREATE ROLE regress_mig_h_granted LOGIN;    -- was granted UPDATE on mig_job
CREATE ROLE regress_mig_h_noset LOGIN;      -- a member without SET (16+)
CREATE ROLE regress_mig_h_expired LOGIN VALID UNTIL '2001-01-01';
GRANT pg_write_all_data, pg_read_all_data TO regress_mig_h_mallory;
GRANT UPDATE, DELETE, TRUNCATE ON mig_job, mig_job_target, mig_job_event
   TO regress_mig_h_granted;
GRANT SELECT ON mig_job TO regress_mig_h_granted;
CREATE TABLE hard (id bigint PRIMARY KEY, v text, n int NOT NULL DEFAULT 0);
INSERT INTO hard (id) SELECT g FROM generate_series(1, 300) g;
ALTER TABLE hard OWNER TO regress_mig_h_owner;
GRANT SELECT, UPDATE ON hard TO regress_mig_h_writer, regress_mig_h_expired;
-- errors whose text names job ids or OIDs, which depend on earlier tests
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || pg_catalog.regexp_replace(SQLERRM, '[0-9]+', 'N', 'g');
END $$;

-- item 1: the job tables are written by pg_mig's functions only
BEGIN;
SELECT mig_start_backfill('hard', 'n = n + 1', batch_size => 10, chunk_time => NULL) AS job \gset
SELECT mig_pause(:job);
COMMIT;
SET ROLE regress_mig_h_mallory;
UPDATE mig_job SET owner = 10, set_clause = 'n = 0' WHERE job_id = :job;
INSERT INTO mig_job_event (job_id, event) VALUES (:job, 'forged');
DELETE FROM mig_job_target;
-- reading it gives nothing away either: row-level security, no policy
SELECT count(*) FROM mig_job;
RESET ROLE;
SET ROLE regress_mig_h_granted;
UPDATE mig_job SET owner = 10 WHERE job_id = :job;
UPDATE mig_job_target SET resolved_set_clause = 'n = 0';
TRUNCATE mig_job_event;
-- a write that failed in pg_mig's own code leaves no open door behind
DO $$
BEGIN
    PERFORM mig_set(999999, batch_size => 5);
EXCEPTION WHEN OTHERS THEN
    UPDATE mig_job SET owner = 10;
END $$;
RESET ROLE;
SELECT owner, set_clause FROM mig_jobs WHERE job_id = :job;
SELECT count(*) AS forged FROM mig_job_events WHERE event = 'forged';
SELECT count(*) AS targets FROM mig_job_target WHERE job_id = :job;
SELECT mig_cancel(:job);

-- items 5 and 7: who may control a job
SET ROLE regress_mig_h_writer;
SELECT mig_start_backfill('hard', 'n = n + 1', batch_size => 10, chunk_time => NULL,
                          sleep => '1s') AS wjob \gset
SELECT mig_pause(:wjob);
RESET ROLE;
-- a member that may not SET ROLE to the owner is refused (a plain
-- non-member before PostgreSQL 16, which has no such grant)
DO $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::int >= 160000 THEN
        EXECUTE 'GRANT regress_mig_h_writer TO regress_mig_h_noset WITH INHERIT FALSE, SET FALSE';
    END IF;
END $$;
SET ROLE regress_mig_h_noset;
SELECT pg_temp.try($$SELECT mig_set($$ || :wjob || $$, throttle_query => 'SELECT false')$$);
SELECT pg_temp.try('SELECT mig_resume(' || :wjob || ')');
RESET ROLE;
-- the table's owner may control any job on her table, and start her own
SET ROLE regress_mig_h_owner;
SELECT set_clause FROM mig_jobs WHERE job_id = :wjob;
SELECT mig_set(:wjob, batch_size => 20);
SELECT mig_cancel(:wjob);
SELECT mig_start_backfill('hard', 'n = 0', batch_size => 100, chunk_time => NULL) AS ojob \gset
SELECT mig_wait(:ojob, '60s');
RESET ROLE;
SELECT state FROM mig_jobs WHERE job_id = :wjob;

-- items 1 and 12: the owner must still be able to log in, when the job
-- starts and when its worker starts
SET ROLE regress_mig_h_expired;
SELECT mig_start_backfill('hard', 'n = 1');
RESET ROLE;
BEGIN;
SET ROLE regress_mig_h_writer;
SELECT mig_start_backfill('hard', 'n = 2', batch_size => 100, chunk_time => NULL) AS njob \gset
RESET ROLE;
ALTER ROLE regress_mig_h_writer NOLOGIN;
COMMIT;
SELECT mig_wait(:njob, '60s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :njob;
SELECT count(*) AS changed FROM hard WHERE n = 2;
ALTER ROLE regress_mig_h_writer LOGIN;
SELECT mig_cancel(:njob);
-- ... and still hold UPDATE on the table
BEGIN;
SET ROLE regress_mig_h_writer;
SELECT mig_start_backfill('hard', 'n = 3', batch_size => 100, chunk_time => NULL) AS ujob \gset
RESET ROLE;
REVOKE UPDATE ON hard FROM regress_mig_h_writer;
COMMIT;
SELECT mig_wait(:ujob, '60s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :ujob;
SELECT count(*) AS changed FROM hard WHERE n = 3;
GRANT UPDATE ON hard TO regress_mig_h_writer;
SELECT mig_cancel(:ujob);

-- item 19: a job whose owner OID no longer carries the owner's name (as
-- after a restore into another cluster) is refused, at resume and in the
-- worker; so is one whose table name no longer names its table
BEGIN;
SELECT mig_start_backfill('hard', 'n = 4', batch_size => 100, chunk_time => NULL) AS djob \gset
SELECT mig_pause(:djob);
COMMIT;
UPDATE mig_job SET owner_name = 'regress_mig_h_gone' WHERE job_id = :djob;
SELECT pg_temp.try('SELECT mig_resume(' || :djob || ')');
UPDATE mig_job SET owner_name = current_user, relation_name = 'public.hard_other'
 WHERE job_id = :djob;
SELECT pg_temp.try('SELECT mig_resume(' || :djob || ')');
UPDATE mig_job SET relation_name = 'public.hard', owner_name = 'regress_mig_h_gone',
                   state = 'queued' WHERE job_id = :djob;
SELECT mig_wait(:djob, '60s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :djob;
SELECT count(*) AS changed FROM hard WHERE n = 4;

-- item 6: names are resolved once, at start; an operator created later by
-- an ordinary user cannot capture a superuser's job
CREATE TABLE cap (id bigint PRIMARY KEY, v text);
INSERT INTO cap (id) SELECT g FROM generate_series(1, 200) g;
BEGIN;
SELECT mig_start_backfill('cap', $$v = 'TRK-' || id$$, where_clause => $$v IS DISTINCT FROM 'x' || id$$,
                          batch_size => 50, chunk_time => NULL) AS cjob \gset
SELECT mig_pause(:cjob);
COMMIT;
SELECT resolved_set_clause, resolved_where_clause FROM mig_job_target WHERE job_id = :cjob;
GRANT CREATE ON SCHEMA public TO regress_mig_h_mallory;
SET ROLE regress_mig_h_mallory;
CREATE FUNCTION public.grab(text, bigint) RETURNS text LANGUAGE sql
    AS $$ SELECT 'captured by ' || current_user $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.grab);
-- the same expression in a fresh statement is captured ...
SELECT 'TRK-' || 1::bigint AS fresh;
RESET ROLE;
-- ... the job is not
SELECT mig_resume(:cjob);
SELECT mig_wait(:cjob, '60s');
SELECT count(*) FILTER (WHERE v = 'TRK-' || id::text) AS resolved,
       count(*) FILTER (WHERE v LIKE 'captured%') AS captured
  FROM cap;
-- a name the caller sees outside pg_catalog is kept qualified
BEGIN;
SELECT mig_start_backfill('cap', $$v = 'P-' || id$$, batch_size => 50) AS pjob \gset
SELECT resolved_set_clause FROM mig_job_target WHERE job_id = :pjob;
ROLLBACK;
-- the throttle query is resolved the same way, at start and by mig_set
BEGIN;
SELECT mig_start_backfill('cap', 'v = NULL',
                          throttle_query => 'SELECT count(*) > 0 FROM cap WHERE v IS NULL') AS tjob \gset
SELECT throttle_query FROM mig_job WHERE job_id = :tjob;
SELECT mig_set(:tjob, throttle_query => $$SELECT 'a' || 1::bigint = 'a1' FROM cap LIMIT 1$$);
SELECT throttle_query FROM mig_job WHERE job_id = :tjob;
ROLLBACK;
DROP OPERATOR public.|| (text, bigint);
DROP FUNCTION public.grab(text, bigint);
REVOKE CREATE ON SCHEMA public FROM regress_mig_h_mallory;
-- the clauses are resolved for each leaf of a partitioned table, so a
-- correlated subquery refers to the leaf the chunk changes
CREATE TABLE lookup (k int PRIMARY KEY, w int);
INSERT INTO lookup SELECT g, g * 10 FROM generate_series(1, 200) g;
CREATE TABLE pt (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (1) TO (101);
CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (101) TO (201);
INSERT INTO pt SELECT g FROM generate_series(1, 200) g;
SELECT mig_start_backfill('pt', 'v = (SELECT w FROM lookup WHERE k = id)',
                          where_clause => 'EXISTS (SELECT FROM lookup WHERE k = id)',
                          batch_size => 30, chunk_time => NULL) AS ptjob \gset
SELECT relation_name, resolved_set_clause, resolved_where_clause
  FROM mig_job_target WHERE job_id = :ptjob ORDER BY ord;
SELECT mig_wait(:ptjob, '60s');
SELECT count(*) FILTER (WHERE v = id * 10) AS right, count(*) AS total FROM pt;
DROP TABLE pt, lookup;
-- a job of 0.2 has no resolved clauses: its worker resolves them once,
-- with the search_path stored with the job, and records them
CREATE SCHEMA old_sp;
CREATE FUNCTION old_sp.tag(bigint) RETURNS text LANGUAGE sql AS $$ SELECT 'OLD-' || $1 $$;
CREATE TABLE old_sp.flag (closed boolean);
INSERT INTO old_sp.flag VALUES (false);
SET search_path = old_sp, public;
BEGIN;
SELECT mig_start_backfill('cap', 'v = tag(id)', batch_size => 100, chunk_time => NULL,
                          throttle_query => 'SELECT closed FROM flag') AS ojob2 \gset
SELECT mig_pause(:ojob2);
COMMIT;
RESET search_path;
UPDATE mig_job_target SET resolved_set_clause = NULL, resolved_where_clause = NULL
 WHERE job_id = :ojob2;
UPDATE mig_job SET throttle_query = 'SELECT closed FROM flag' WHERE job_id = :ojob2;
SELECT mig_resume(:ojob2);
SELECT mig_wait(:ojob2, '60s');
SELECT resolved_set_clause FROM mig_job_target WHERE job_id = :ojob2;
SELECT throttle_query FROM mig_job WHERE job_id = :ojob2;
SELECT count(*) AS tagged FROM cap WHERE v = 'OLD-' || id::text;
DROP SCHEMA old_sp CASCADE;

-- item 4: operators in the install schema are not bound into the views,
-- neither at CREATE EXTENSION nor at ALTER EXTENSION UPDATE from 0.2
\set regress_db :DBNAME
CREATE DATABASE regress_mig_capture;
\c regress_mig_capture
CREATE TABLE public.calls (who text);
CREATE FUNCTION public.grab_div(float8, int8) RETURNS float8 LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO public.calls VALUES (current_user); RETURN 0; END $$;
CREATE FUNCTION public.grab_div(int8, float8) RETURNS float8 LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO public.calls VALUES (current_user); RETURN 0; END $$;
CREATE FUNCTION public.grab_gt(float8, int4) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO public.calls VALUES (current_user); RETURN true; END $$;
CREATE OPERATOR public./ (LEFTARG = float8, RIGHTARG = int8, FUNCTION = public.grab_div);
CREATE OPERATOR public./ (LEFTARG = int8, RIGHTARG = float8, FUNCTION = public.grab_div);
CREATE OPERATOR public.> (LEFTARG = float8, RIGHTARG = int4, FUNCTION = public.grab_gt);
CREATE TABLE t (id int PRIMARY KEY, n int);
INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g;
CREATE EXTENSION pg_mig;
BEGIN;
SELECT mig_start_backfill('t', 'n = 1', batch_size => 10, chunk_time => NULL) AS vjob \gset
SELECT mig_cancel(:vjob);
COMMIT;
SELECT state, progress IS NOT NULL AS has_progress, eta FROM mig_jobs;
SELECT count(*) AS calls FROM public.calls;
DROP EXTENSION pg_mig;
CREATE EXTENSION pg_mig VERSION '0.2';
ALTER EXTENSION pg_mig UPDATE;
BEGIN;
SELECT mig_start_backfill('t', 'n = 1', batch_size => 10, chunk_time => NULL) AS vjob \gset
SELECT mig_cancel(:vjob);
COMMIT;
SELECT state, progress IS NOT NULL AS has_progress, eta FROM mig_jobs;
SELECT count(*) AS calls FROM public.calls;
\c :regress_db
DROP DATABASE regress_mig_capture WITH (FORCE);

-- item 12 (replica names and positions only for pg_monitor): 14_replica_privileges

DROP TABLE hard, cap;
DROP OWNED BY regress_mig_h_owner, regress_mig_h_writer, regress_mig_h_mallory,
    regress_mig_h_granted, regress_mig_h_noset, regress_mig_h_expired;
DROP ROLE regress_mig_h_owner, regress_mig_h_writer, regress_mig_h_mallory,
    regress_mig_h_granted, regress_mig_h_noset, regress_mig_h_expired;

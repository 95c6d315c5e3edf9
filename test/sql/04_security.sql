-- Caller's rights: the worker runs as the job's owner; only the owner, its
-- members and superusers control a job; the job tables are no back door.
\set VERBOSITY default
CREATE ROLE regress_mig_alice LOGIN;
CREATE ROLE regress_mig_bob LOGIN;
CREATE ROLE regress_mig_group NOLOGIN;
GRANT regress_mig_group TO regress_mig_bob;
CREATE TABLE sec (id int PRIMARY KEY, a int DEFAULT 0, secret text DEFAULT 's', n int DEFAULT 0);
INSERT INTO sec (id) SELECT g FROM generate_series(1, 1000) g;
GRANT SELECT (id, a, n), UPDATE (a) ON sec TO regress_mig_alice;
GRANT SELECT ON sec TO regress_mig_bob;

SET ROLE regress_mig_alice;
-- no UPDATE on the column
SELECT mig_start_backfill('sec', 'n = 1');
-- no SELECT on a column the expression reads
SELECT mig_start_backfill('sec', 'a = length(secret)');
-- a superuser-only function: refused at start, never run
SELECT mig_start_backfill('sec', $$a = length(pg_read_file('postgresql.conf'))$$);
SELECT mig_start_backfill('sec', 'a = 1', where_clause => $$pg_read_file('postgresql.conf') IS NOT NULL$$);
-- the job tables cannot be written, nor read, directly
INSERT INTO mig_job (relid, relation_name, set_clause, search_path, owner, batch_size,
                     lock_timeout, statement_timeout, max_retries)
VALUES ('sec'::regclass, 'sec', 'a = 1', 'public', 10, 1, '1s', '1s', 1);
UPDATE mig_job SET owner = 10;
SELECT count(*) FROM mig_job;
DELETE FROM mig_job_event;
-- what alice may do, she can
SELECT mig_start_backfill('sec', 'a = id * 2', batch_size => 100, chunk_time => NULL) AS job \gset
SELECT mig_wait(:job, '60s');
SELECT owner, state, rows_done FROM mig_jobs WHERE job_id = :job;
RESET ROLE;
SELECT count(*) FILTER (WHERE a = id * 2) AS changed FROM sec;

-- bob cannot control alice's job, nor see its details
SELECT mig_start_backfill('sec', 'a = a + 1', batch_size => 10, chunk_time => NULL,
                          sleep => '1s') AS job2 \gset
SELECT mig_pause(:job2);
UPDATE mig_job SET owner = 'regress_mig_alice'::regrole WHERE job_id = :job2;
SET ROLE regress_mig_bob;
SELECT mig_resume(:job2);
SELECT mig_cancel(:job2);
SELECT mig_set(:job2, batch_size => 5);
SELECT owner, set_clause, where_clause, last_error FROM mig_jobs WHERE job_id = :job2;
SELECT count(*) AS details FROM mig_job_events WHERE job_id = :job2 AND detail IS NOT NULL;
RESET ROLE;
-- alice can
SET ROLE regress_mig_alice;
SELECT set_clause FROM mig_jobs WHERE job_id = :job2;
SELECT mig_cancel(:job2);
RESET ROLE;

-- a job owned by a group role: its members may control it
UPDATE mig_job SET owner = 'regress_mig_group'::regrole, state = 'paused', finished_at = NULL
 WHERE job_id = :job2;
SET ROLE regress_mig_bob;
SELECT mig_cancel(:job2);
RESET ROLE;

-- a role that cannot log in cannot own a job (its worker could not connect)
GRANT UPDATE ON sec TO regress_mig_group;
SET ROLE regress_mig_group;
SELECT mig_start_backfill('sec', 'a = 0');
RESET ROLE;

-- row-level security applies to the worker as to the owner
ALTER TABLE sec ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_low ON sec FOR ALL TO regress_mig_alice USING (id <= 100);
GRANT UPDATE (n) ON sec TO regress_mig_alice;
SET ROLE regress_mig_alice;
SELECT mig_start_backfill('sec', 'n = n + 1', batch_size => 7, chunk_time => NULL) AS job3 \gset
SELECT mig_wait(:job3, '60s');
RESET ROLE;
SELECT count(*) FILTER (WHERE n = 1) AS visible_changed, count(*) FILTER (WHERE n = 0) AS hidden_kept FROM sec;
ALTER TABLE sec DISABLE ROW LEVEL SECURITY;

-- the search_path the clauses were checked under is the worker's
CREATE SCHEMA sp1;
CREATE FUNCTION sp1.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE SCHEMA sp2;
CREATE FUNCTION sp2.f() RETURNS int LANGUAGE sql AS 'SELECT 2';
SET search_path = sp1, public;
SELECT mig_start_backfill('sec', 'a = f()', batch_size => 100, chunk_time => NULL, sleep => '10ms') AS job4 \gset
SET search_path = sp2, public;
SELECT mig_wait(:job4, '60s');
RESET search_path;
SELECT count(*) FILTER (WHERE a = 1) AS via_sp1 FROM sec;

DROP TABLE sec;
DROP SCHEMA sp1 CASCADE;
DROP SCHEMA sp2 CASCADE;
DROP OWNED BY regress_mig_alice, regress_mig_bob, regress_mig_group;
DROP ROLE regress_mig_alice, regress_mig_bob, regress_mig_group;

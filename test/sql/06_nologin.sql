-- A job owned by a role without LOGIN. Before PostgreSQL 17 no background
-- worker can connect as such a role, so mig_start_backfill refuses it
-- (06_nologin.out); from 17 on the worker connects with
-- BGWORKER_BYPASS_ROLELOGINCHECK and runs the job as that role
-- (06_nologin_1.out). The first query tells the two files apart, so each
-- version must match its own.
\set VERBOSITY default
SELECT current_setting('server_version_num')::int >= 170000 AS worker_bypasses_login_check;
CREATE ROLE regress_mig_nologin NOLOGIN;
CREATE TABLE nologin_t (id int PRIMARY KEY, who text);
INSERT INTO nologin_t (id) SELECT g FROM generate_series(1, 50) g;
GRANT SELECT, UPDATE ON nologin_t TO regress_mig_nologin;
SET ROLE regress_mig_nologin;
SELECT mig_start_backfill('nologin_t', 'who = current_user', batch_size => 7, chunk_time => NULL) AS job \gset
RESET ROLE;
\if :{?job}
SELECT mig_wait(:job, '60s');
\endif
-- the worker ran as the owner
SELECT who, count(*) FROM nologin_t GROUP BY who ORDER BY who;
DROP TABLE nologin_t;
DROP OWNED BY regress_mig_nologin;
DROP ROLE regress_mig_nologin;

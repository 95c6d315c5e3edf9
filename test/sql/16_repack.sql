-- mig_repack (0.4, issue 24): REPACK (CONCURRENTLY) of a table as a job on
-- PostgreSQL 19 and later (this file's _1 output); before 19 it is refused
-- at start with feature_not_supported and a hint, and no job is made.
\set VERBOSITY default
CREATE TABLE rp (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO rp SELECT g, 'v' || g FROM generate_series(1, 2000) g;
DELETE FROM rp WHERE id % 2 = 0;
SELECT pg_catalog.current_setting('server_version_num')::int >= 190000 AS has_repack \gset
\if :has_repack
SELECT mig_repack('rp', lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT kind, state, step, last_error FROM mig_jobs WHERE job_id = :job;
SELECT event, detail FROM mig_job_events WHERE job_id = :job AND event = 'step' ORDER BY event_id;
SELECT count(*), min(id), max(id) FROM rp;
-- refusals on 19: a partitioned table, a table of someone else
CREATE TABLE rp_p (id int PRIMARY KEY) PARTITION BY RANGE (id);
SELECT mig_repack('rp_p');
CREATE ROLE regress_mig_repack LOGIN;
SET ROLE regress_mig_repack;
SELECT mig_repack('rp');
RESET ROLE;
DROP ROLE regress_mig_repack;
DROP TABLE rp_p;
\else
SELECT mig_repack('rp');
SELECT mig_repack('rp', lock_timeout => '1s', max_retries => 3, job_key => 'x');
\endif
SELECT count(*) AS repack_jobs FROM mig_jobs WHERE kind = 'repack' AND state <> 'succeeded';
DROP TABLE rp;

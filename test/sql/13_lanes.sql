-- Parallel lanes (0.3, issue 15): the parallel argument, the split of the
-- key range (a table smaller than the sample is read whole, so the lanes'
-- bounds are exact quantiles here), mig_plan's lanes, a parallel backfill
-- and delete end to end, mig_jobs' sums and the lanes view.
\set VERBOSITY default
CREATE TABLE lanes_t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO lanes_t SELECT g, 0 FROM generate_series(1, 9000) g;
ANALYZE lanes_t;

-- refusals
SELECT mig_start_backfill('lanes_t', 'n = n + 1', parallel => 0);
SELECT mig_start_backfill('lanes_t', 'n = n + 1', parallel => 33);
CREATE TABLE lanes_p (id int PRIMARY KEY, n int) PARTITION BY RANGE (id);
CREATE TABLE lanes_p1 PARTITION OF lanes_p FOR VALUES FROM (0) TO (100);
CREATE TABLE lanes_p2 PARTITION OF lanes_p FOR VALUES FROM (100) TO (200);
SELECT mig_start_backfill('lanes_p', 'n = 1', parallel => 2);
SELECT mig_start_delete('lanes_p', 'n = 1', parallel => 2);
-- one lane is the ordinary walk: no lane rows
SELECT kind, keys FROM mig_plan('lanes_t', 'n = n + 1', parallel => 1);

-- what three lanes would do
SELECT kind, target, keys, rows FROM mig_plan('lanes_t', 'n = n + 1', parallel => 3);

-- a parallel backfill: every row once, lanes cover the range without gaps
SELECT mig_start_backfill('lanes_t', 'n = n + 1', parallel => 3, batch_size => 500) AS job \gset
SELECT mig_wait(:job, '2min');
SELECT state, rows_done, keys_done, chunks_done >= 3 AS chunks, parallel, last_error
  FROM mig_jobs WHERE job_id = :job;
SELECT lane, state, rows_done, keys_done, lower_key, upper_key
  FROM mig_job_lanes WHERE job_id = :job ORDER BY lane;
SELECT n, count(*) FROM lanes_t GROUP BY n ORDER BY n;
SELECT event, regexp_replace(detail, '[0-9]+ chunks', 'N chunks') AS detail
  FROM mig_job_events WHERE job_id = :job ORDER BY event, detail;

-- a parallel delete of every third row
SELECT mig_start_delete('lanes_t', 'id % 3 = 0', parallel => 2, batch_size => 700) AS job \gset
SELECT mig_wait(:job, '2min');
SELECT state, rows_done, parallel FROM mig_jobs WHERE job_id = :job;
SELECT lane, state, rows_done FROM mig_job_lanes WHERE job_id = :job ORDER BY lane;
SELECT count(*), count(*) FILTER (WHERE id % 3 = 0) FROM lanes_t;

-- an empty table: the lanes are empty and the job succeeds
CREATE TABLE lanes_e (id int PRIMARY KEY, n int);
SELECT mig_start_backfill('lanes_e', 'n = 1', parallel => 2) AS job \gset
SELECT mig_wait(:job, '1min');
SELECT lane, state, rows_done, lower_key, upper_key FROM mig_job_lanes WHERE job_id = :job ORDER BY lane;

-- the lanes' table is written by pg_mig's functions only, like the others
CREATE ROLE regress_lanes_mallory LOGIN;
GRANT pg_write_all_data, pg_read_all_data TO regress_lanes_mallory;
SET ROLE regress_lanes_mallory;
UPDATE mig_job_lane SET done = false, last_key = NULL;
INSERT INTO mig_job_lane (job_id, lane) VALUES (:job, 9);
SELECT count(*) FROM mig_job_lane;
RESET ROLE;
SELECT count(*) FROM mig_job_lane WHERE NOT done;
DROP ROLE regress_lanes_mallory;

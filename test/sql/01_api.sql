-- The SQL surface: objects, a first backfill end to end, job control.
CREATE EXTENSION pg_mig;
SELECT mig_version();

-- every public function and view is there, with a comment
SELECT p.proname, obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_mig'
 ORDER BY 1;
SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class') IS NOT NULL AS commented
  FROM pg_class c JOIN pg_depend d ON d.objid = c.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_mig'
 WHERE c.relkind IN ('r', 'v')
 ORDER BY 1;

-- the columns of mig_jobs the contract promises
SELECT attname FROM pg_attribute
 WHERE attrelid = 'mig_jobs'::regclass AND attnum > 0
   AND attname IN ('job_id', 'relation', 'state', 'rows_done', 'rows_total',
                   'progress', 'rows_per_sec', 'eta', 'batch_size', 'throttled',
                   'last_error', 'owner', 'started_at', 'updated_at', 'finished_at')
 ORDER BY attnum;

-- a first backfill
CREATE TABLE orders (id bigint PRIMARY KEY, amount int NOT NULL, tracking_id text);
INSERT INTO orders SELECT g, g % 100, NULL FROM generate_series(1, 10000) g;
UPDATE orders SET tracking_id = 'old' WHERE id % 10 = 0;
SELECT mig_start_backfill('orders', $$tracking_id = 'TRK-' || id$$,
                          where_clause => 'tracking_id IS NULL',
                          batch_size => 700, chunk_time => NULL) AS job \gset
SELECT mig_wait(:job, '60s');
SELECT state, rows_done, progress, batch_size, throttled, last_error,
       owner = current_user AS mine, started_at <= finished_at AS ordered
  FROM mig_jobs WHERE job_id = :job;
SELECT count(*) FILTER (WHERE tracking_id = 'TRK-' || id) AS changed,
       count(*) FILTER (WHERE tracking_id = 'old') AS kept,
       count(*) FILTER (WHERE tracking_id IS NULL) AS missed
  FROM orders;
SELECT event FROM mig_job_events WHERE job_id = :job ORDER BY event_id;

-- a finished job cannot be controlled, only queried
SELECT mig_pause(:job);
SELECT mig_resume(:job);
SELECT mig_cancel(:job);
SELECT mig_set(:job, batch_size => 10);
SELECT mig_wait(:job);
SELECT mig_wait(:job, '0');

-- unknown jobs
SELECT mig_pause(999999);
SELECT mig_wait(999999, '1s');
SELECT mig_set(999999, batch_size => 5);
SELECT mig_wait(NULL);
SELECT mig_wait(:job, '-1s');

-- pause, change knobs, resume and cancel a job
CREATE TABLE big (id int PRIMARY KEY, v int);
INSERT INTO big SELECT g, 0 FROM generate_series(1, 50000) g;
BEGIN;
SELECT mig_start_backfill('big', 'v = v + 1', batch_size => 100, chunk_time => NULL,
                          sleep => '50ms') AS job2 \gset
SELECT mig_pause(:job2);
COMMIT;
SELECT state FROM mig_jobs WHERE job_id = :job2;
SELECT mig_pause(:job2);
SELECT mig_set(:job2);
SELECT mig_set(:job2, batch_size => 0);
SELECT mig_set(:job2, batch_size => 250, max_lag => '0', sleep => '0');
SELECT batch_size, max_lag FROM mig_jobs WHERE job_id = :job2;
SELECT mig_wait(:job2, '200ms');
-- a second job on the same table is refused while the first is unfinished
SELECT mig_start_backfill('big', 'v = 0');
SELECT mig_resume(:job2);
SELECT mig_wait(:job2, '60s');
SELECT count(*) FILTER (WHERE v = 1) AS once, count(*) FILTER (WHERE v <> 1) AS other FROM big;
SELECT mig_cancel(:job2);
SELECT event FROM mig_job_events WHERE job_id = :job2 AND event <> 'throttled' AND event <> 'unthrottled'
 ORDER BY event_id;

-- cancel a paused job: it ends at once, committed chunks stay
SELECT mig_start_backfill('big', 'v = v + 1', batch_size => 100, chunk_time => NULL,
                          sleep => '1s') AS job3 \gset
SELECT mig_cancel(:job3);
SELECT mig_wait(:job3, '10s');
SELECT state, finished_at IS NOT NULL AS finished FROM mig_jobs WHERE job_id = :job3;
SELECT mig_resume(:job3);

-- mig_wait refuses snapshots that never see the job change
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT mig_wait(:job3);
ROLLBACK;

-- a job started in this transaction cannot run before it commits
SELECT mig_wait(mig_start_backfill('big', 'v = v'), '1s');

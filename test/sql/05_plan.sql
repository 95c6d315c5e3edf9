-- mig_plan: the checks of mig_start_backfill with no job, and sample chunks
-- that are rolled back.
CREATE TABLE plan_t (id int PRIMARY KEY, status text NOT NULL DEFAULT 'new', note text);
INSERT INTO plan_t (id) SELECT g FROM generate_series(1, 5000) g;
VACUUM ANALYZE plan_t;

-- the walk, the columns and the estimates; no sample unless asked
SELECT kind, target, columns, keys, rows, ms IS NULL AS no_ms
  FROM mig_plan('plan_t', $$note = 'n' || id, status = 'old'$$, 'note IS NULL');

-- three sample chunks of 1000: measured, then rolled back
SELECT kind, keys, rows, ms > 0 AS timed, wal_bytes > 0 AS logged
  FROM mig_plan('plan_t', $$note = 'n' || id$$, batch_size => 1000, samples => 3)
 WHERE kind = 'sample';
SELECT count(*) AS changed FROM plan_t WHERE note IS NOT NULL;
SELECT count(*) AS jobs FROM mig_jobs WHERE relation = 'plan_t'::regclass;

-- the where clause is applied in the samples too
SELECT kind, keys, rows
  FROM mig_plan('plan_t', $$note = 'x'$$, 'id % 10 = 0', batch_size => 2000, samples => 5)
 WHERE kind = 'sample';

-- a partitioned table: one target per partition
CREATE TABLE plan_p (id int, part int, v int) PARTITION BY LIST (part);
CREATE TABLE plan_p1 PARTITION OF plan_p FOR VALUES IN (1);
CREATE TABLE plan_p2 PARTITION OF plan_p FOR VALUES IN (2);
ALTER TABLE plan_p ADD PRIMARY KEY (id, part);
INSERT INTO plan_p SELECT g, 1 + g % 2, 0 FROM generate_series(1, 100) g;
SELECT kind, target, columns FROM mig_plan('plan_p', 'v = 1') WHERE kind <> 'change';
SELECT kind, target, keys, rows FROM mig_plan('plan_p', 'v = 1', samples => 4, batch_size => 30)
 WHERE kind = 'sample';
SELECT count(*) FROM plan_p WHERE v = 1;

-- the same errors as mig_start_backfill
\set VERBOSITY default
SELECT * FROM mig_plan('plan_t', 'nope = 1');
SELECT * FROM mig_plan('plan_t', 'note = 1; DROP TABLE plan_t');
SELECT * FROM mig_plan('plan_t', 'id = id + 1');
SELECT * FROM mig_plan('plan_t', 'note = 1', batch_size => 0);
SELECT * FROM mig_plan('plan_t', 'note = 1', samples => 21);
SELECT * FROM mig_plan('plan_t', 'note = 1', lock_timeout => '0');
SELECT * FROM mig_plan(NULL, 'note = 1');
CREATE ROLE regress_mig_carol LOGIN;
GRANT SELECT ON plan_t TO regress_mig_carol;
SET ROLE regress_mig_carol;
SELECT * FROM mig_plan('plan_t', 'note = 1');
RESET ROLE;
REVOKE ALL ON plan_t FROM regress_mig_carol;
DROP ROLE regress_mig_carol;

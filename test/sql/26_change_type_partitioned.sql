-- mig_change_type (0.4, issue 25) of a key that a partitioned table
-- references: before PostgreSQL 18 refused (a foreign key cannot be added
-- NOT VALID to a partitioned table), with nothing left behind
-- (26_change_type_partitioned.out); on 18 and later the foreign key is
-- carried over, and afterwards the partitioned table's constraint and its
-- partitions' ones have their names and pg_get_constraintdef as after
-- ALTER COLUMN TYPE; mig_revert swaps back the same way
-- (26_change_type_partitioned_1.out).
\set VERBOSITY default
CREATE TABLE ctp (id serial PRIMARY KEY, v text);
INSERT INTO ctp (v) SELECT 'v' || g FROM generate_series(1, 300) g;
CREATE TABLE ctp_ref (id int, ctp_id int NOT NULL REFERENCES ctp ON DELETE CASCADE)
    PARTITION BY RANGE (id);
CREATE TABLE ctp_ref_1 PARTITION OF ctp_ref FOR VALUES FROM (0) TO (100);
CREATE TABLE ctp_ref_2 PARTITION OF ctp_ref FOR VALUES FROM (100) TO (1000)
    PARTITION BY RANGE (id);
CREATE TABLE ctp_ref_2a PARTITION OF ctp_ref_2 FOR VALUES FROM (100) TO (1000);
INSERT INTO ctp_ref SELECT g, g FROM generate_series(1, 300) g;
SELECT mig_change_type('ctp', 'id', 'bigint') AS job \gset
\if :{?job}
SELECT mig_wait(:job, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ctp'::regclass AND attname = 'id';
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), convalidated
  FROM pg_constraint WHERE contype = 'f' AND confrelid = 'ctp'::regclass
 ORDER BY conrelid::regclass::text, conname;
-- the key acts: a delete cascades to every partition
DELETE FROM ctp WHERE id IN (5, 150);
SELECT count(*) FROM ctp_ref WHERE ctp_id IN (5, 150);
INSERT INTO ctp_ref VALUES (7, 100000);
-- and back: mig_revert re-points the partitioned table's key the same way
SELECT mig_revert(:job) AS rev \gset
SELECT mig_wait(:rev, '120s');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ctp'::regclass AND attname = 'id';
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), convalidated
  FROM pg_constraint WHERE contype = 'f' AND confrelid = 'ctp'::regclass
 ORDER BY conrelid::regclass::text, conname;
DELETE FROM ctp WHERE id = 7;
SELECT count(*) FROM ctp_ref WHERE ctp_id = 7;
\endif
-- nothing left behind (refused) or the column of the new type dropped (reverted)
SELECT count(*) AS columns_left FROM pg_attribute
 WHERE attrelid = 'ctp'::regclass AND attname LIKE 'mig%' AND NOT attisdropped;
SELECT count(*) AS jobs_left FROM mig_jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled');
DROP TABLE ctp_ref, ctp;

-- Keyset chunking on every kind of key: each row is changed exactly once
-- (the set clause is not idempotent), sparse keys make no empty chunks.
CREATE FUNCTION check_once(rel regclass) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE r record;
BEGIN
  EXECUTE format('SELECT count(*) AS total, count(*) FILTER (WHERE n = 1) AS once FROM %s', rel) INTO r;
  RETURN format('%s rows, %s changed once', r.total, r.once);
END $f$;

CREATE TABLE k_int (id int PRIMARY KEY, n int DEFAULT 0);
INSERT INTO k_int SELECT g FROM generate_series(1, 3000) g;
SELECT mig_start_backfill('k_int', 'n = n + 1', batch_size => 128, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_int');

-- sparse bigint keys: 3000 rows spread over 1e15; chunks follow the rows
CREATE TABLE k_sparse (id bigint PRIMARY KEY, n int DEFAULT 0);
INSERT INTO k_sparse SELECT g * 333333333333 FROM generate_series(1, 3000) g;
SELECT mig_start_backfill('k_sparse', 'n = n + 1', batch_size => 500, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_sparse');
SELECT chunks_done FROM mig_jobs WHERE job_id = :j;

CREATE TABLE k_uuid (id uuid PRIMARY KEY, n int DEFAULT 0);
INSERT INTO k_uuid SELECT md5(g::text)::uuid FROM generate_series(1, 2000) g;
SELECT mig_start_backfill('k_uuid', 'n = n + 1', batch_size => 99, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_uuid');

CREATE TABLE k_text (id text COLLATE "C" PRIMARY KEY, n int DEFAULT 0);
INSERT INTO k_text SELECT 'key ' || g || $$ 'quoted' "and" , (comma)$$ FROM generate_series(1, 2000) g;
SELECT mig_start_backfill('k_text', 'n = n + 1', batch_size => 77, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_text');

-- timestamptz keys, started under a DateStyle the worker does not have
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Asia/Kolkata';
CREATE TABLE k_ts (id timestamptz PRIMARY KEY, n int DEFAULT 0);
INSERT INTO k_ts SELECT '2020-01-01 00:00:00.123456+00'::timestamptz + g * interval '37 minutes 1.5 seconds'
  FROM generate_series(1, 2000) g;
SELECT mig_start_backfill('k_ts', 'n = n + 1', batch_size => 150, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_ts');
RESET DateStyle;
RESET TimeZone;

-- a composite key compared as a row
CREATE TABLE k_comp (a int, b text, c date, n int DEFAULT 0, PRIMARY KEY (a, b, c));
INSERT INTO k_comp SELECT g % 7, 'b' || (g % 13), DATE '2024-01-01' + g FROM generate_series(1, 3000) g;
SELECT mig_start_backfill('k_comp', 'n = n + 1', batch_size => 101, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_comp');

-- no primary key, but a unique index on NOT NULL columns
CREATE TABLE k_unique (x int NOT NULL, n int DEFAULT 0);
CREATE UNIQUE INDEX ON k_unique (x);
INSERT INTO k_unique SELECT g FROM generate_series(1, 1000) g;
SELECT mig_start_backfill('k_unique', 'n = n + 1', batch_size => 64, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_unique');

-- a partitioned table: the leaf partitions one after another
CREATE TABLE k_part (id int, region text, n int DEFAULT 0, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE k_part_eu PARTITION OF k_part FOR VALUES IN ('eu');
CREATE TABLE k_part_us PARTITION OF k_part FOR VALUES IN ('us') PARTITION BY RANGE (id);
CREATE TABLE k_part_us_low PARTITION OF k_part_us FOR VALUES FROM (0) TO (1000);
CREATE TABLE k_part_us_high PARTITION OF k_part_us FOR VALUES FROM (1000) TO (100000);
CREATE TABLE k_part_empty PARTITION OF k_part FOR VALUES IN ('none');
INSERT INTO k_part SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 3000) g;
SELECT mig_start_backfill('k_part', 'n = n + 1', batch_size => 200, chunk_time => NULL) AS j \gset
SELECT mig_wait(:j, '60s');
SELECT check_once('k_part');
SELECT rows_done, progress FROM mig_jobs WHERE job_id = :j;
SELECT mig_start_backfill('k_part', 'region = region');
SELECT mig_start_backfill('k_part_us', 'id = id');

-- an empty table succeeds at once
CREATE TABLE k_empty (id int PRIMARY KEY, n int);
SELECT mig_start_backfill('k_empty', 'n = 1') AS j \gset
SELECT mig_wait(:j, '60s');

-- rows beyond the upper key fixed at start are the application's
CREATE TABLE k_grow (id int PRIMARY KEY, n int DEFAULT 0);
INSERT INTO k_grow SELECT g FROM generate_series(1, 1000) g;
BEGIN;
SELECT mig_start_backfill('k_grow', 'n = n + 1', batch_size => 100, chunk_time => NULL) AS j \gset
INSERT INTO k_grow SELECT g FROM generate_series(1001, 1100) g;
COMMIT;
SELECT mig_wait(:j, '60s');
SELECT count(*) FILTER (WHERE n = 1 AND id <= 1000) AS in_range,
       count(*) FILTER (WHERE n = 0 AND id > 1000) AS later
  FROM k_grow;

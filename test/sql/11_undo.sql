-- Undo (0.3): keep_old_values, mig_revert, mig_forget, kept_bytes; every
-- refusal, the kept table's types and rights, a revert end to end.
\set VERBOSITY default
CREATE ROLE regress_undo_alice LOGIN;
CREATE ROLE regress_undo_bob LOGIN;
GRANT USAGE ON SCHEMA public TO regress_undo_alice, regress_undo_bob;
-- job ids depend on the tests before: errors are shown with numbers as N
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text;
    hint text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || regexp_replace(msg || ' (hint: ' || hint || ')',
                                              '[0-9]+', 'N', 'g');
END $$;

-- the new column of mig_jobs
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'mig_jobs'::regclass AND attname = 'kept_bytes';

-- a composite text/int key, assigned columns of several types (json has no =)
CREATE TABLE ud (region text COLLATE "C", id int, price numeric(10,2), tags text[],
                 doc json, note varchar(20), PRIMARY KEY (region, id));
INSERT INTO ud SELECT CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g, g * 1.5,
       ARRAY['t' || g], json_build_object('g', g), CASE WHEN g % 5 <> 0 THEN 'n' || g END
  FROM generate_series(1, 500) g;
CREATE TABLE ud_before AS SELECT * FROM ud;
ALTER TABLE ud OWNER TO regress_undo_alice;

-- refused at start: the key is how a revert finds the rows again
SET ROLE regress_undo_alice;
SELECT mig_start_backfill('ud', 'id = id + 1000', keep_old_values => true);
RESET ROLE;

-- refused at start: a partitioned table whose key is unique per partition only
CREATE TABLE udp_nokey (id int, v int) PARTITION BY RANGE (id);
CREATE TABLE udp_nokey_1 PARTITION OF udp_nokey FOR VALUES FROM (0) TO (100);
ALTER TABLE udp_nokey_1 ADD PRIMARY KEY (id);
INSERT INTO udp_nokey SELECT g, g FROM generate_series(1, 50) g;
SELECT mig_start_backfill('udp_nokey', 'v = 0', keep_old_values => true);
SELECT count(*) AS kept_tables FROM pg_class WHERE relname LIKE 'mig\_kept\_%';

-- an overwriting backfill that keeps its old values
SET ROLE regress_undo_alice;
SELECT mig_start_backfill('ud', $$price = price * 2, tags = tags || 'new'::text,
       doc = '{"new": true}', note = NULL$$, 'id % 4 <> 0',
       batch_size => 60, chunk_time => NULL, keep_old_values => true) AS job \gset
SELECT mig_wait(:job, '60s');
SELECT state, rows_done, kept_bytes > 0 AS kept_some FROM mig_jobs WHERE job_id = :job;
RESET ROLE;
SELECT 'mig_kept_' || :job AS kept \gset

-- the kept table: the key and the old and new values, of the table's own types
SELECT attname, format_type(atttypid, atttypmod), collname
  FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
 WHERE attrelid = :'kept'::regclass AND attnum > 0 ORDER BY attnum;
SELECT pg_get_userbyid(relowner) = current_user AS owned_by_superuser,
       has_table_privilege('regress_undo_alice', oid, 'SELECT') AS alice_select,
       has_table_privilege('regress_undo_alice', oid, 'UPDATE, DELETE, TRUNCATE') AS alice_write,
       has_table_privilege('regress_undo_bob', oid, 'SELECT, INSERT') AS bob_any
  FROM pg_class WHERE oid = :'kept'::regclass;

-- the owner reads the kept rows (one per changed row), but cannot forge any
SET ROLE regress_undo_alice;
SELECT count(*) AS kept_rows,
       count(*) FILTER (WHERE mig_new_1 = mig_old_1 * 2 AND mig_new_4 IS NULL) AS as_written
  FROM :kept;
SELECT pg_temp.try('INSERT INTO ' || :'kept' || $$ (region, id, mig_old_1, mig_old_2,
    mig_old_3, mig_old_4, mig_new_1, mig_new_2, mig_new_3, mig_new_4)
    VALUES ('eu', 4, 0, '{}', '{}', 'forged', 0, '{}', '{}', NULL)$$);
RESET ROLE;
SET ROLE regress_undo_bob;
SELECT pg_temp.try('SELECT count(*) FROM ' || :'kept' || '');
RESET ROLE;

-- mig_revert and mig_forget: refusals
SELECT mig_revert(NULL);
SELECT mig_revert(999999);
SET ROLE regress_undo_bob;
SELECT pg_temp.try('SELECT mig_revert(' || :job || ')');
SELECT pg_temp.try('SELECT mig_forget(' || :job || ')');
RESET ROLE;
CREATE TABLE ud_plain (id int PRIMARY KEY, v int);
INSERT INTO ud_plain SELECT g, g FROM generate_series(1, 10) g;
SELECT mig_start_backfill('ud_plain', 'v = 0') AS plain \gset
SELECT mig_wait(:plain, '60s');
SELECT pg_temp.try('SELECT mig_revert(' || :plain || ')');
SELECT pg_temp.try('SELECT mig_forget(' || :plain || ')');
SELECT mig_start_delete('ud_plain', 'v = 0', max_lag_bytes => 67108864) AS del \gset
SELECT mig_wait(:del, '60s');
SELECT pg_temp.try('SELECT mig_revert(' || :del || ')');
-- not finished: queued (in the transaction that started it)
BEGIN;
SELECT mig_start_backfill('ud_plain', 'v = 1', keep_old_values => true) AS unfinished \gset
SELECT pg_temp.try('SELECT mig_revert(' || :unfinished || ')');
ROLLBACK;

-- failed: refused (it may be resumed); once cancelled, the chunks it
-- committed are reverted
CREATE TABLE ud_fail (id int PRIMARY KEY, v int);
INSERT INTO ud_fail SELECT g, g FROM generate_series(1, 12) g;
SELECT mig_start_backfill('ud_fail', 'v = v + 100 / (id - 6)', batch_size => 4,
                          chunk_time => NULL, max_retries => 0, keep_old_values => true) AS failing \gset
SELECT mig_wait(:failing, '60s');
SELECT state, rows_done FROM mig_jobs WHERE job_id = :failing;
SELECT pg_temp.try('SELECT mig_revert(' || :failing || ')');
SELECT pg_temp.try('SELECT mig_forget(' || :failing || ')');
SELECT count(*) FILTER (WHERE v <> id) AS changed_by_its_first_chunk FROM ud_fail;
SELECT mig_cancel(:failing);
SELECT mig_revert(:failing, chunk_time => NULL) AS failing_rev \gset
SELECT mig_wait(:failing_rev, '60s');
SELECT count(*) FILTER (WHERE v = id) AS as_before, count(*) AS all_rows FROM ud_fail;
SELECT mig_forget(:failing);

-- the application changes a few rows after the backfill
UPDATE ud SET price = 1 WHERE (region, id) IN (('us', 1), ('eu', 2));
UPDATE ud SET note = 'app' WHERE (region, id) = ('us', 5);
DELETE FROM ud WHERE (region, id) = ('us', 7);

-- a revert started by a superuser runs as the backfill's owner
BEGIN;
SELECT mig_revert(:job, batch_size => 45, chunk_time => NULL) AS rev \gset
SELECT kind, owner, state, rows_total FROM mig_jobs WHERE job_id = :rev;
SELECT pg_temp.try('SELECT mig_revert(' || :job || ')');
SELECT pg_temp.try('SELECT mig_forget(' || :job || ')');
COMMIT;
SELECT mig_wait(:rev, '60s');
SELECT kind, state, rows_done, keys_done, kept_bytes FROM mig_jobs WHERE job_id = :rev;
SELECT event, regexp_replace(detail, 'job [0-9]+', 'job N') AS detail
  FROM mig_job_events WHERE job_id = :rev ORDER BY event_id;
SELECT event FROM mig_job_events WHERE job_id = :job ORDER BY event_id;

-- every row back as it was, except those the application changed
SELECT b.region, b.id, b.price, u.price AS now_price, b.note, u.note AS now_note
  FROM ud_before b LEFT JOIN ud u USING (region, id)
 WHERE (u.price, u.tags, u.doc::text, u.note) IS DISTINCT FROM (b.price, b.tags, b.doc::text, b.note)
 ORDER BY b.region, b.id;

-- reverted once
SELECT pg_temp.try('SELECT mig_revert(' || :job || ')');

-- mig_forget: the kept table goes, and with it what a revert needs
SELECT pg_temp.try('SELECT mig_forget(' || :job || ')');
SELECT to_regclass(:'kept') AS kept_table, kept_bytes FROM mig_jobs WHERE job_id = :job;
SELECT event, detail ~ '^kept values dropped \(\d+ bytes\) by ' AS detail_ok
  FROM mig_job_events WHERE job_id = :job AND event = 'forgotten';
SELECT pg_temp.try('SELECT mig_forget(' || :job || ')');
SELECT pg_temp.try('SELECT mig_revert(' || :job || ')');

-- a hash-partitioned table with a uuid key: one kept table for all its
-- partitions; a cancelled revert leaves the backfill revertible again
CREATE TABLE udh (id uuid PRIMARY KEY, v int, w text) PARTITION BY HASH (id);
CREATE TABLE udh_0 PARTITION OF udh FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE udh_1 PARTITION OF udh FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE udh_2 PARTITION OF udh FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO udh SELECT md5(g::text)::uuid, g, 'w' || g FROM generate_series(1, 300) g;
CREATE TABLE udh_before AS SELECT * FROM udh;
SELECT mig_start_backfill('udh', 'v = -v, w = NULL', batch_size => 40, chunk_time => NULL,
                          keep_old_values => true) AS job2 \gset
SELECT mig_wait(:job2, '60s');
SELECT 'mig_kept_' || :job2 AS kept2 \gset
SELECT count(*) AS kept_rows FROM :kept2;
BEGIN;
SELECT mig_revert(:job2) AS rev2 \gset
SELECT mig_cancel(:rev2);
COMMIT;
UPDATE udh SET v = 0 WHERE id = md5('10')::uuid;
SELECT mig_revert(:job2, batch_size => 70, chunk_time => NULL) AS rev3 \gset
SELECT mig_wait(:rev3, '60s');
SELECT rows_done, keys_done FROM mig_jobs WHERE job_id = :rev3;
SELECT regexp_replace(detail, 'job [0-9]+', 'job N') AS detail
  FROM mig_job_events WHERE job_id = :rev3 AND event = 'conflicts';
SELECT b.v, u.v AS now_v FROM udh_before b JOIN udh u USING (id)
 WHERE (u.v, u.w) IS DISTINCT FROM (b.v, b.w);
SELECT mig_forget(:job2);
SELECT count(*) AS kept_tables FROM pg_class WHERE relname LIKE 'mig\_kept\_%';

DROP TABLE ud, ud_before, ud_plain, udp_nokey, udh, udh_before, ud_fail;
DROP OWNED BY regress_undo_alice, regress_undo_bob;
DROP ROLE regress_undo_alice, regress_undo_bob;

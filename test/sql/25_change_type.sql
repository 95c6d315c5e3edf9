-- mig_change_type (0.4, issue 25): the refusals at start (each with its
-- errcode, message and hint, and nothing left behind), a small int ->
-- bigint conversion end to end, and a catalog-only change.
\set VERBOSITY default
CREATE TABLE ct (id serial PRIMARY KEY, customer_id int NOT NULL, v text);
CREATE INDEX ct_customer_id_idx ON ct (customer_id, id);
CREATE INDEX ct_recent_idx ON ct (id) WHERE id > 100;
CREATE INDEX ct_mod_idx ON ct ((id % 7));
INSERT INTO ct (customer_id, v) SELECT g % 13, 'v' || g FROM generate_series(1, 500) g;

-- refusals: arguments
SELECT mig_change_type('ct', 'nope', 'bigint');
SELECT mig_change_type('ct', 'id', NULL);
SELECT mig_change_type('ct', 'id', 'no_such_type');
SELECT mig_change_type('ct', 'id', 'integer');
SELECT mig_change_type('ct', 'id', 'bigint', using_expr => 'id +');
SELECT mig_change_type('ct', 'id', 'bigint', using_expr => 'nope * 2');
SELECT mig_change_type('ct', 'id', 'bigint', using_expr => 'id) FROM ct; DROP TABLE ct; SELECT (1');
SELECT mig_change_type('ct', 'id', 'bigint', using_expr => 'id, 1');
SELECT mig_change_type('ct', 'id', 'bigint', parallel => 2);
-- refusals: what depends on the column
CREATE VIEW ct_view AS SELECT id FROM ct;
SELECT mig_change_type('ct', 'id', 'bigint');
DROP VIEW ct_view;
-- (a partitioned table that references the column: 26_change_type_partitioned)
CREATE TABLE ct_p (id int, PRIMARY KEY (id)) PARTITION BY RANGE (id);
SELECT mig_change_type('ct_p', 'id', 'bigint');
DROP TABLE ct_p;
-- refusal: a table the caller does not own
CREATE ROLE regress_mig_ct LOGIN;
GRANT ALL ON ct TO regress_mig_ct;
SET ROLE regress_mig_ct;
SELECT mig_change_type('ct', 'id', 'bigint');
RESET ROLE;
REVOKE ALL ON ct FROM regress_mig_ct;
DROP ROLE regress_mig_ct;
-- nothing left behind by the refusals
SELECT count(*) AS jobs FROM mig_jobs WHERE kind = 'change_type';
SELECT attname FROM pg_attribute WHERE attrelid = 'ct'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- int -> bigint end to end, with cleanup; the rows written after the start,
-- in the same transaction, so that the walk never sees id 3 before it moves
-- (the NOT NULL constraints, in pg_constraint since PostgreSQL 18: their
-- names are the ones before)
CREATE TEMP TABLE ct_not_null AS
  SELECT conname FROM pg_constraint WHERE conrelid = 'ct'::regclass AND contype = 'n';
BEGIN;
SELECT mig_change_type('ct', 'id', 'bigint', cleanup => true, batch_size => 100,
                       chunk_time => NULL, lock_timeout => '2s') AS job \gset
-- rows written after the start get the new column from the trigger
INSERT INTO ct (customer_id, v) VALUES (1, 'after start');
UPDATE ct SET id = id + 10000 WHERE id = 3;
COMMIT;
SELECT mig_wait(:job, '120s');
SELECT kind, state, step, rows_done, last_error FROM mig_jobs WHERE job_id = :job;
SELECT detail FROM mig_job_events WHERE job_id = :job AND event = 'step' ORDER BY event_id;
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
 WHERE attrelid = 'ct'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'ct'::regclass;
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'ct'::regclass ORDER BY 1;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ct'::regclass AND contype <> 'n' ORDER BY 1;
SELECT array(SELECT conname::text FROM pg_constraint WHERE conrelid = 'ct'::regclass AND contype = 'n' ORDER BY 1) =
       array(SELECT conname::text FROM ct_not_null ORDER BY 1) AS same_not_null_names;
SELECT format_type(seqtypid, NULL), seqmax FROM pg_sequence WHERE seqrelid = 'ct_id_seq'::regclass;
SELECT pg_get_serial_sequence('ct', 'id');
SELECT count(*), count(DISTINCT id), min(id), max(id), sum(id) FROM ct;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'ct'::regclass AND NOT tgisinternal;
-- the sequence goes past 2^31 - 1
SELECT setval('ct_id_seq', 2147483645);
INSERT INTO ct (customer_id, v) SELECT 1, 'big' FROM generate_series(1, 5);
SELECT max(id) FROM ct;

-- without cleanup: the old column stays and follows the new one
CREATE TABLE ct2 (id int PRIMARY KEY, n numeric(10,2));
INSERT INTO ct2 SELECT g, g / 3.0 FROM generate_series(1, 50) g;
SELECT mig_change_type('ct2', 'n', 'bigint', using_expr => 'round(n * 100)',
                       lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ct2'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
SELECT * FROM ct2 WHERE id IN (1, 2, 3) ORDER BY id;
INSERT INTO ct2 (id, n) VALUES (51, 12345);
SELECT * FROM ct2 WHERE id = 51;

-- the column's own checks and foreign key, and a foreign key of the table
-- itself that references its key: carried over, as ALTER COLUMN TYPE would
CREATE TABLE ct_parent (id int PRIMARY KEY);
INSERT INTO ct_parent SELECT g FROM generate_series(1, 20) g;
CREATE TABLE ct4 (id int PRIMARY KEY, parent_id int NOT NULL
                      CONSTRAINT ct4_parent_fk REFERENCES ct_parent ON DELETE CASCADE DEFERRABLE,
                  next_id int CONSTRAINT ct4_next_fk REFERENCES ct4 (id) ON DELETE SET NULL,
                  CONSTRAINT ct4_parent_positive CHECK (parent_id > 0),
                  CONSTRAINT ct4_near CHECK (parent_id < id + 1000) NO INHERIT);
INSERT INTO ct4 SELECT g, 1 + g % 20, NULLIF(g - 1, 0) FROM generate_series(1, 100) g;
CREATE TABLE ct4_twin (LIKE ct4 INCLUDING ALL);
ALTER TABLE ct4_twin ADD CONSTRAINT ct4_parent_fk FOREIGN KEY (parent_id) REFERENCES ct_parent ON DELETE CASCADE DEFERRABLE;
ALTER TABLE ct4_twin ADD CONSTRAINT ct4_next_fk FOREIGN KEY (next_id) REFERENCES ct4_twin (id) ON DELETE SET NULL;
ALTER TABLE ct4_twin ALTER COLUMN parent_id TYPE bigint, ALTER COLUMN id TYPE bigint;
SELECT mig_change_type('ct4', 'parent_id', 'bigint', cleanup => true, lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT detail FROM mig_job_events WHERE job_id = :job AND event = 'step' ORDER BY event_id;
SELECT mig_change_type('ct4', 'id', 'bigint', cleanup => true, lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
-- the same constraints as ALTER COLUMN TYPE's, validated
SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
 WHERE conrelid = 'ct4'::regclass AND contype <> 'n' ORDER BY 1;
SELECT (SELECT array_agg(replace(conname || ': ' || pg_get_constraintdef(oid), 'ct4_twin', 'ct4') ORDER BY conname)
          FROM pg_constraint WHERE conrelid = 'ct4_twin'::regclass AND contype <> 'n') =
       (SELECT array_agg(conname || ': ' || pg_get_constraintdef(oid) ORDER BY conname)
          FROM pg_constraint WHERE conrelid = 'ct4'::regclass AND contype <> 'n') AS same_constraints;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ct4'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
-- they act: the check, the foreign keys
INSERT INTO ct4 (id, parent_id, next_id) VALUES (101, 0, NULL);
INSERT INTO ct4 (id, parent_id, next_id) VALUES (101, 21, NULL);
INSERT INTO ct4 (id, parent_id, next_id) VALUES (101, 1, 999);
DELETE FROM ct_parent WHERE id = 1;
SELECT count(*), count(next_id) FROM ct4;
DROP TABLE ct4, ct4_twin, ct_parent;

-- convert_referencing: the referencing columns (two of one table) change in the same job
CREATE TABLE ct5 (id serial PRIMARY KEY);
CREATE TABLE ct5_ref (id int PRIMARY KEY, ct5_id int NOT NULL REFERENCES ct5 ON DELETE CASCADE,
                      other int REFERENCES ct5);
CREATE INDEX ct5_ref_ct5_id_idx ON ct5_ref (ct5_id);
INSERT INTO ct5 SELECT FROM generate_series(1, 50);
INSERT INTO ct5_ref SELECT g, 1 + g % 50, NULLIF(g % 7, 0) FROM generate_series(1, 200) g;
SELECT mig_change_type('ct5', 'id', 'bigint', convert_referencing => true, cleanup => true,
                       lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT attrelid::regclass, attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
 WHERE attrelid IN ('ct5'::regclass, 'ct5_ref'::regclass) AND attnum > 0 AND NOT attisdropped ORDER BY 1, 2;
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
 WHERE conrelid IN ('ct5'::regclass, 'ct5_ref'::regclass) AND contype <> 'n' ORDER BY 1, 2;
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'ct5_ref'::regclass ORDER BY 1;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid IN ('ct5'::regclass, 'ct5_ref'::regclass) AND NOT tgisinternal;
SELECT count(*), sum(ct5_id), count(other), sum(other) FROM ct5_ref;
DELETE FROM ct5 WHERE id = 50;
SELECT count(*) FROM ct5_ref WHERE ct5_id = 50;
DROP TABLE ct5_ref, ct5;

-- the end of a job that kept its old column (cleanup => false): mig_forget
-- drops the old column with its index, the trigger and its function, and
-- mig_revert then refuses
CREATE FUNCTION pg_temp.try(job bigint, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; msg text; detail text; hint text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN regexp_replace(state || ': ' || msg || E'\nDETAIL: ' || detail || E'\nHINT: ' || hint,
                          '\m' || job || '\M', 'N', 'g');
END $$;
CREATE TABLE ct6 (id int PRIMARY KEY, v text);
CREATE INDEX ct6_v_idx ON ct6 (v, id);
INSERT INTO ct6 SELECT g, 'v' || g FROM generate_series(1, 50) g;
SELECT mig_change_type('ct6', 'id', 'bigint', lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ct6'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
SELECT count(*) AS old_indexes FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
 WHERE i.indrelid = 'ct6'::regclass AND c.relname LIKE 'mig_ct_old_%';
SELECT tgfoid AS function FROM pg_trigger WHERE tgrelid = 'ct6'::regclass AND NOT tgisinternal \gset
SELECT pg_temp.try(:job, format('SELECT mig_forget(%s)', :job));
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ct6'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
SELECT c.relname FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
 WHERE i.indrelid = 'ct6'::regclass ORDER BY 1;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'ct6'::regclass AND NOT tgisinternal;
SELECT count(*) AS functions FROM pg_proc WHERE oid = :function;
SELECT event, regexp_replace(detail, ' by .*', '') AS detail FROM mig_job_events
 WHERE job_id = :job AND event IN ('old column dropped', 'forgotten') ORDER BY event_id;
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
SET client_min_messages = warning;
SELECT pg_temp.try(:job, format('SELECT mig_forget(%s)', :job));
RESET client_min_messages;
INSERT INTO ct6 (id, v) VALUES (3000000000, 'big');
SELECT count(*), max(id) FROM ct6;
DROP TABLE ct6;

-- mig_revert after the swap (cleanup => false): the same steps the other
-- way, no walk; afterwards the schema is the one before the first job
CREATE TABLE ct7 (id serial PRIMARY KEY, customer_id int NOT NULL, v text);
CREATE TABLE ct7_ref (id int PRIMARY KEY,
                      ct7_id int NOT NULL CONSTRAINT ct7_ref_fk REFERENCES ct7 ON DELETE CASCADE);
CREATE INDEX ct7_customer_id_idx ON ct7 (customer_id, id);
CREATE INDEX ct7_recent_idx ON ct7 (id) WHERE id > 100;
INSERT INTO ct7 (customer_id, v) SELECT g % 13, 'v' || g FROM generate_series(1, 300) g;
INSERT INTO ct7_ref SELECT g, 1 + g % 300 FROM generate_series(1, 600) g;
CREATE FUNCTION pg_temp.ct_schema(t text, r text) RETURNS SETOF text LANGUAGE sql AS $$
SELECT 'column ' || attrelid::regclass || ' ' || attnum || ' ' || attname || ' ' ||
       format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END
  FROM pg_attribute WHERE attrelid IN (t::regclass, r::regclass) AND attnum > 0 AND NOT attisdropped
UNION ALL
SELECT 'default ' || pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid IN (t::regclass, r::regclass)
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid IN (t::regclass, r::regclass)
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) ||
       CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END
  FROM pg_constraint WHERE conrelid IN (t::regclass, r::regclass) AND contype <> 'n'
UNION ALL
SELECT 'not null ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE conrelid IN (t::regclass, r::regclass) AND contype = 'n'
UNION ALL
SELECT 'sequence ' || pg_get_serial_sequence(t, 'id')
UNION ALL
SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid IN (t::regclass, r::regclass) AND NOT tgisinternal
ORDER BY 1
$$;
CREATE TEMP TABLE ct7_before AS SELECT s FROM pg_temp.ct_schema('ct7', 'ct7_ref') s;
SELECT 'ct7_customer_id_idx'::regclass::oid AS customer_idx, 'ct7_recent_idx'::regclass::oid AS recent_idx \gset
-- refused: the job has not swapped yet
BEGIN;
SELECT mig_change_type('ct7', 'id', 'bigint', lock_timeout => '2s', job_key => 'ct7 to bigint') AS job \gset
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
ROLLBACK;
SELECT mig_change_type('ct7', 'id', 'bigint', lock_timeout => '2s', job_key => 'ct7 to bigint') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :job;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ct7'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
-- refused, with the count: values integer cannot hold (the old column is NULL there)
SELECT setval('ct7_id_seq', 3000000000) IS NOT NULL AS set;
INSERT INTO ct7 (customer_id, v) VALUES (1, 'big'), (2, 'big');
SELECT count(*) FROM ct7 WHERE mig_old_id IS NULL;
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
DELETE FROM ct7 WHERE v = 'big';
SELECT setval('ct7_id_seq', 300) IS NOT NULL AS set;
-- a revert cancelled before its swap leaves the job revertible
BEGIN;
SELECT mig_revert(:job, lock_timeout => '2s') AS cancelled \gset
SELECT mig_cancel(:cancelled);
COMMIT;
SELECT state FROM mig_jobs WHERE job_id = :cancelled;
-- the revert, and a second one refused while the first is queued, and
-- mig_forget of the job refused while it is reverted
BEGIN;
SELECT mig_revert(:job, lock_timeout => '2s') AS revert \gset
SELECT regexp_replace(pg_temp.try(:job, format('SELECT mig_revert(%s)', :job)),
                      '\m' || :revert || '\M', 'R', 'g');
SELECT regexp_replace(pg_temp.try(:job, format('SELECT mig_forget(%s)', :job)),
                      '\m' || :revert || '\M', 'R', 'g');
COMMIT;
-- the application writes on (the trigger keeps the old column)
INSERT INTO ct7 (customer_id, v) SELECT 5, 'during' FROM generate_series(1, 10);
INSERT INTO ct7_ref SELECT 600 + g, 300 + g FROM generate_series(1, 10) g;
UPDATE ct7 SET customer_id = 6 WHERE id IN (1, 2, 3);
SELECT mig_wait(:revert, '120s');
SELECT kind, state, last_error FROM mig_jobs WHERE job_id = :revert;
SELECT detail FROM mig_job_events WHERE job_id = :revert AND event = 'step' ORDER BY event_id;
-- the schema before the first job: names and definitions of the indexes and
-- constraints, the default, the sequence's ownership, no trigger left (the
-- NOT NULL constraints of PostgreSQL 18 and later compared, not shown)
SELECT s FROM pg_temp.ct_schema('ct7', 'ct7_ref') s WHERE s NOT LIKE 'not null %';
(SELECT s FROM pg_temp.ct_schema('ct7', 'ct7_ref') s EXCEPT ALL SELECT s FROM ct7_before)
UNION ALL
(SELECT s FROM ct7_before EXCEPT ALL SELECT s FROM pg_temp.ct_schema('ct7', 'ct7_ref') s);
-- the plain indexes the first job kept are the ones used again
SELECT 'ct7_customer_id_idx'::regclass::oid = :customer_idx AS same_customer_idx,
       'ct7_recent_idx'::regclass::oid = :recent_idx AS same_recent_idx;
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'pg_mig_change_type_' || 'ct7'::regclass::oid || '_%';
SELECT count(*), count(DISTINCT id), min(id), max(id), sum(customer_id) FROM ct7;
SELECT count(*), sum(ct7_id) FROM ct7_ref;
-- the foreign key acts; the sequence goes on
DELETE FROM ct7 WHERE id = 300;
SELECT count(*) FROM ct7_ref WHERE ct7_id = 300;
INSERT INTO ct7 (customer_id, v) VALUES (1, 'next') RETURNING id;
-- the reverted job: its event, its job_key released
SELECT job_key FROM mig_jobs WHERE job_id = :job;
SELECT event, regexp_replace(regexp_replace(regexp_replace(detail, '\m' || :revert || '\M', 'R', 'g'),
                                            '\m' || :cancelled || '\M', 'C', 'g'), ' by .*', '') AS detail
  FROM mig_job_events WHERE job_id = :job AND event IN ('reverting', 'reverted', 'key released') ORDER BY event_id;
-- refused: reverted once; the revert itself; mig_forget leaves the column
SELECT regexp_replace(pg_temp.try(:job, format('SELECT mig_revert(%s)', :job)),
                      '\m' || :revert || '\M', 'R', 'g');
SELECT regexp_replace(pg_temp.try(:revert, format('SELECT mig_revert(%s)', :revert)),
                      '\m' || :job || '\M', 'J', 'g');
SELECT pg_temp.try(:job, format('SELECT mig_forget(%s)', :job));
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ct7'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
DROP TABLE ct7_ref, ct7, ct7_before;

-- a job with convert_referencing, reverted: the referencing column too
CREATE TABLE ct8 (id serial PRIMARY KEY);
CREATE TABLE ct8_ref (id int PRIMARY KEY,
                      ct8_id int NOT NULL CONSTRAINT ct8_ref_fk REFERENCES ct8 ON DELETE CASCADE);
CREATE INDEX ct8_ref_ct8_id_idx ON ct8_ref (ct8_id);
INSERT INTO ct8 SELECT FROM generate_series(1, 50);
INSERT INTO ct8_ref SELECT g, 1 + g % 50 FROM generate_series(1, 200) g;
CREATE TEMP TABLE ct8_before AS SELECT s FROM pg_temp.ct_schema('ct8', 'ct8_ref') s;
SELECT mig_change_type('ct8', 'id', 'bigint', convert_referencing => true, lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT attrelid::regclass, attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid IN ('ct8'::regclass, 'ct8_ref'::regclass) AND attnum > 0 AND NOT attisdropped ORDER BY 1, 2;
-- refused, with the count: a value of the referencing column integer cannot hold
ALTER TABLE ct8_ref DROP CONSTRAINT ct8_ref_fk;
INSERT INTO ct8_ref (id, ct8_id) VALUES (1000, 3000000000);
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
DELETE FROM ct8_ref WHERE id = 1000;
ALTER TABLE ct8_ref ADD CONSTRAINT ct8_ref_fk FOREIGN KEY (ct8_id) REFERENCES ct8 ON DELETE CASCADE;
SELECT mig_revert(:job, lock_timeout => '2s', job_key => 'ct8 back') AS revert \gset
-- started again by its job_key: the same revert (Django's reverse migration)
SET client_min_messages = warning;
SELECT mig_revert(:job, lock_timeout => '2s', job_key => 'ct8 back') = :revert AS same_revert;
RESET client_min_messages;
INSERT INTO ct8 SELECT FROM generate_series(1, 5);
INSERT INTO ct8_ref (id, ct8_id) SELECT 200 + g, 50 + g FROM generate_series(1, 5) g;
SELECT mig_wait(:revert, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id = :revert;
SELECT s FROM pg_temp.ct_schema('ct8', 'ct8_ref') s WHERE s NOT LIKE 'not null %';
(SELECT s FROM pg_temp.ct_schema('ct8', 'ct8_ref') s EXCEPT ALL SELECT s FROM ct8_before)
UNION ALL
(SELECT s FROM ct8_before EXCEPT ALL SELECT s FROM pg_temp.ct_schema('ct8', 'ct8_ref') s);
SELECT count(*), sum(ct8_id) FROM ct8_ref;
SET client_min_messages = warning;
SELECT mig_revert(:job, job_key => 'ct8 back') = :revert AS same_revert_when_done;
RESET client_min_messages;
DELETE FROM ct8 WHERE id = 55;
SELECT count(*) FROM ct8_ref WHERE ct8_id = 55;
DROP TABLE ct8_ref, ct8, ct8_before;

-- a catalog-only change: one ALTER, no walk
CREATE TABLE ct3 (id int PRIMARY KEY, name varchar(50));
INSERT INTO ct3 VALUES (1, 'a');
SELECT mig_change_type('ct3', 'name', 'varchar(100)', lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT state, rows_done FROM mig_jobs WHERE job_id = :job;
SELECT detail FROM mig_job_events WHERE job_id = :job AND event = 'step' ORDER BY event_id;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'ct3'::regclass AND attname = 'name';
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
DROP TABLE ct, ct2, ct3, ct_not_null;

-- identity keys (issue 25): ALWAYS and BY DEFAULT, each referenced by a
-- foreign key; the identity moves to the new column with its sequence
-- (the same sequence: options, privileges, state), made AS bigint as
-- ALTER COLUMN TYPE makes it (the twins, changed by plain ALTER, compare)
CREATE TABLE cti_a (id int GENERATED ALWAYS AS IDENTITY (CACHE 5) PRIMARY KEY, v text);
CREATE TABLE cti_d (id int GENERATED BY DEFAULT AS IDENTITY
                        (START WITH 10 INCREMENT BY 3 MAXVALUE 2147483000 CYCLE) PRIMARY KEY, v text);
CREATE TABLE cti_a_twin (id int GENERATED ALWAYS AS IDENTITY (CACHE 5) PRIMARY KEY, v text);
CREATE TABLE cti_d_twin (id int GENERATED BY DEFAULT AS IDENTITY
                             (START WITH 10 INCREMENT BY 3 MAXVALUE 2147483000 CYCLE) PRIMARY KEY, v text);
ALTER TABLE cti_a_twin ALTER COLUMN id TYPE bigint;
ALTER TABLE cti_d_twin ALTER COLUMN id TYPE bigint;
-- a referencing column that is itself an identity (converted with convert_referencing)
CREATE TABLE cti_one (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY REFERENCES cti_d, w text);
CREATE TABLE cti_ref (id int PRIMARY KEY, a_id int NOT NULL REFERENCES cti_a ON DELETE CASCADE,
                      d_id int REFERENCES cti_d);
INSERT INTO cti_a (v) SELECT 'a' || g FROM generate_series(1, 60) g;
INSERT INTO cti_d (v) SELECT 'd' || g FROM generate_series(1, 60) g;
INSERT INTO cti_one (id, w) SELECT id, 'one' FROM cti_d WHERE id < 100;
INSERT INTO cti_ref SELECT g, g, (SELECT min(id) FROM cti_d) + 3 * (g % 60) FROM generate_series(1, 60) g;
GRANT USAGE ON SEQUENCE cti_a_id_seq TO PUBLIC;
-- the sequence advanced beyond the largest row (cti_a), and not called yet (cti_d)
SELECT setval('cti_a_id_seq', 1000);
SELECT setval('cti_d_id_seq', 500, false);
SELECT 'cti_a_id_seq'::regclass::oid AS a_seq \gset
-- refused: an identity column becomes an integer type only
SELECT mig_change_type('cti_a', 'id', 'numeric');
SELECT mig_change_type('cti_a', 'id', 'bigint', cleanup => true, lock_timeout => '2s') AS job_a \gset
SELECT mig_change_type('cti_d', 'id', 'bigint', convert_referencing => true,
                       lock_timeout => '2s') AS job_d \gset
-- rows written during the job draw from the identity of the old column
INSERT INTO cti_a (v) VALUES ('during');
INSERT INTO cti_d (v) VALUES ('during');
-- (each in a statement of its own: an index copy of job_d waits for the end
-- of every transaction whose snapshot it saw, and one statement that waited
-- for both jobs would end only after job_d: mig_wait refuses that deadlock)
SELECT mig_wait(:job_a, '120s');
SELECT mig_wait(:job_d, '120s');
SELECT state, last_error FROM mig_jobs WHERE job_id IN (:job_a, :job_d) ORDER BY job_id;
SELECT attrelid::regclass, attname, format_type(atttypid, atttypmod), attnotnull, attidentity
  FROM pg_attribute WHERE attrelid IN ('cti_a'::regclass, 'cti_d'::regclass, 'cti_one'::regclass,
                                       'cti_ref'::regclass)
   AND attnum > 0 AND NOT attisdropped ORDER BY 1, 2;
SELECT pg_get_serial_sequence('cti_a', 'id'), pg_get_serial_sequence('cti_d', 'id'),
       pg_get_serial_sequence('cti_one', 'id'), pg_get_serial_sequence('cti_d', 'mig_old_id');
SELECT 'cti_a_id_seq'::regclass::oid = :a_seq AS same_sequence,
       has_sequence_privilege('public', 'cti_a_id_seq', 'USAGE') AS privilege_kept;
-- the sequences as plain ALTER COLUMN TYPE leaves them
SELECT s.seqrelid::regclass, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin,
       s.seqcache, s.seqcycle,
       (s.seqtypid, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle) =
       (t.seqtypid, t.seqstart, t.seqincrement, t.seqmax, t.seqmin, t.seqcache, t.seqcycle) AS as_alter
  FROM (VALUES ('cti_a_id_seq'::regclass, 'cti_a_twin_id_seq'::regclass),
               ('cti_d_id_seq', 'cti_d_twin_id_seq')) v(s, t)
  JOIN pg_sequence s ON s.seqrelid = v.s JOIN pg_sequence t ON t.seqrelid = v.t ORDER BY 1;
SELECT format_type(seqtypid, NULL), seqmax FROM pg_sequence WHERE seqrelid = 'cti_one_id_seq'::regclass;
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
 WHERE conrelid IN ('cti_a'::regclass, 'cti_d'::regclass, 'cti_one'::regclass, 'cti_ref'::regclass)
   AND contype <> 'n' ORDER BY 1, 2;
-- the next values continue after the last ones handed out (cti_a's
-- cache of 5 in this session discarded, as ALTER SEQUENCE ... AS does)
SELECT id FROM cti_a WHERE v = 'during';
SELECT id FROM cti_d WHERE v = 'during';
INSERT INTO cti_a (v) VALUES ('after') RETURNING id;
INSERT INTO cti_d (v) VALUES ('after') RETURNING id;
INSERT INTO cti_a (id, v) VALUES (5, 'explicit');
INSERT INTO cti_a (id, v) OVERRIDING SYSTEM VALUE VALUES (5000, 'explicit') RETURNING id;
-- the old column (no identity any more) follows the new one
INSERT INTO cti_d (id, v) VALUES (7, 'explicit');
SELECT id, mig_old_id FROM cti_d WHERE id = 7;
SELECT count(*), count(DISTINCT id), sum(id) FROM cti_a;
-- past 2^31 - 1
SELECT setval('cti_a_id_seq', 2147483642);
INSERT INTO cti_a (v) SELECT 'big' FROM generate_series(1, 20);
SELECT count(*), min(id), max(id) FROM cti_a WHERE v = 'big';
-- the old column of cti_d, kept (cleanup => false), dropped by mig_forget
SET client_min_messages = warning;
SELECT mig_forget(:job_d);
RESET client_min_messages;
SELECT attrelid::regclass, attname, attidentity FROM pg_attribute
 WHERE attrelid IN ('cti_d'::regclass, 'cti_one'::regclass) AND attnum > 0 AND NOT attisdropped ORDER BY 1, 2;
SELECT pg_get_serial_sequence('cti_d', 'id'), pg_get_serial_sequence('cti_one', 'id');
DROP TABLE cti_ref, cti_one, cti_a, cti_d, cti_a_twin, cti_d_twin;
-- smallint -> integer: the sequence AS integer, as ALTER COLUMN TYPE makes it
CREATE TABLE cti_s (id smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
CREATE TABLE cti_s_twin (id smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
ALTER TABLE cti_s_twin ALTER COLUMN id TYPE integer;
INSERT INTO cti_s SELECT FROM generate_series(1, 10);
SELECT mig_change_type('cti_s', 'id', 'integer', cleanup => true, lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT format_type(atttypid, atttypmod), attidentity FROM pg_attribute
 WHERE attrelid = 'cti_s'::regclass AND attnum > 0 AND NOT attisdropped;
SELECT format_type(s.seqtypid, NULL), s.seqmax,
       (s.seqtypid, s.seqmax, s.seqmin) = (t.seqtypid, t.seqmax, t.seqmin) AS as_alter
  FROM pg_sequence s, pg_sequence t
 WHERE s.seqrelid = 'cti_s_id_seq'::regclass AND t.seqrelid = 'cti_s_twin_id_seq'::regclass;
SELECT setval('cti_s_id_seq', 32766);
INSERT INTO cti_s SELECT FROM generate_series(1, 3);
SELECT count(*), max(id) FROM cti_s;
DROP TABLE cti_s, cti_s_twin;
-- mig_revert of an identity key: the identity goes back to the integer
-- column with its sequence, AS integer again (its maximum integer's): the
-- schema before the job, and the sequence goes on
CREATE TABLE cti_r (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE cti_r_ref (id int PRIMARY KEY, r_id int NOT NULL REFERENCES cti_r);
INSERT INTO cti_r (v) SELECT 'v' || g FROM generate_series(1, 100) g;
INSERT INTO cti_r_ref SELECT g, g FROM generate_series(1, 100) g;
CREATE FUNCTION pg_temp.cti_identity() RETURNS SETOF text LANGUAGE sql AS $$
SELECT 'identity ' || attname || ' ' || attidentity::text FROM pg_attribute
 WHERE attrelid = 'cti_r'::regclass AND attidentity <> ''
UNION ALL
SELECT 'sequence ' || format_type(seqtypid, NULL) || ' ' || seqmax FROM pg_sequence
 WHERE seqrelid = pg_get_serial_sequence('cti_r', 'id')::regclass
$$;
CREATE TEMP TABLE cti_r_before AS
  SELECT s FROM pg_temp.ct_schema('cti_r', 'cti_r_ref') s UNION ALL SELECT * FROM pg_temp.cti_identity();
SELECT mig_change_type('cti_r', 'id', 'bigint', lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT * FROM pg_temp.cti_identity();
INSERT INTO cti_r (v) VALUES ('between') RETURNING id;
-- refused while the sequence is beyond integer (no row needs to be)
SELECT setval('cti_r_id_seq', 3000000000) IS NOT NULL AS set;
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
SELECT setval('cti_r_id_seq', 101) IS NOT NULL AS set;
SELECT mig_revert(:job, lock_timeout => '2s') AS revert \gset
SELECT mig_wait(:revert, '120s');
SELECT * FROM pg_temp.cti_identity();
(SELECT s FROM pg_temp.ct_schema('cti_r', 'cti_r_ref') s UNION ALL SELECT * FROM pg_temp.cti_identity()
 EXCEPT ALL SELECT s FROM cti_r_before)
UNION ALL
(SELECT s FROM cti_r_before EXCEPT ALL
 (SELECT s FROM pg_temp.ct_schema('cti_r', 'cti_r_ref') s UNION ALL SELECT * FROM pg_temp.cti_identity()));
INSERT INTO cti_r (v) VALUES ('after the revert') RETURNING id;
SELECT count(*), count(DISTINCT id), max(id) FROM cti_r;
DROP TABLE cti_r_ref, cti_r;
-- a descending identity: refused while its sequence is below integer
CREATE TABLE cti_desc (id int GENERATED ALWAYS AS IDENTITY (START WITH -1 INCREMENT BY -1) PRIMARY KEY, v text);
INSERT INTO cti_desc (v) SELECT 'v' || g FROM generate_series(1, 20) g;
SELECT mig_change_type('cti_desc', 'id', 'bigint', lock_timeout => '2s') AS job \gset
SELECT mig_wait(:job, '120s');
SELECT setval('cti_desc_id_seq', -3000000000) IS NOT NULL AS set;
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
SELECT count(*) AS reverts FROM mig_jobs WHERE job_id > :job;
-- also a value set to be handed out next (RESTART: not yet called)
ALTER TABLE cti_desc ALTER COLUMN id RESTART WITH -3000000000;
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
SELECT count(*) AS reverts FROM mig_jobs WHERE job_id > :job;
SELECT setval('cti_desc_id_seq', -20) IS NOT NULL AS set;
SELECT mig_revert(:job, lock_timeout => '2s') AS revert \gset
SELECT mig_wait(:revert, '120s');
SELECT format_type(atttypid, atttypmod), attidentity FROM pg_attribute
 WHERE attrelid = 'cti_desc'::regclass AND attname = 'id';
SELECT format_type(seqtypid, NULL), seqmin, seqmax, seqincrement FROM pg_sequence
 WHERE seqrelid = 'cti_desc_id_seq'::regclass;
INSERT INTO cti_desc (v) VALUES ('after the revert') RETURNING id;
DROP TABLE cti_desc;

-- a job given up before its swap: mig_cancel, then mig_forget drops what it
-- built (the new columns, their checks, the triggers and their functions),
-- so that the schema is the one before the job and the same job_key starts
-- the change again
CREATE TABLE ct9 (id serial PRIMARY KEY, v text);
CREATE TABLE ct9_ref (id int PRIMARY KEY, ct9_id int NOT NULL CONSTRAINT ct9_ref_fk REFERENCES ct9);
INSERT INTO ct9 (v) SELECT 'v' || g FROM generate_series(1, 300) g;
INSERT INTO ct9_ref SELECT g, 1 + g % 300 FROM generate_series(1, 600) g;
CREATE TEMP TABLE ct9_before AS SELECT s FROM pg_temp.ct_schema('ct9', 'ct9_ref') s;
BEGIN;
SELECT mig_change_type('ct9', 'id', 'bigint', convert_referencing => true, lock_timeout => '2s',
                       job_key => 'ct9 to bigint') AS job \gset
-- a job of the referencing column is refused while this one changes it too
SELECT pg_temp.try(:job, $$SELECT mig_change_type('ct9_ref', 'ct9_id', 'bigint')$$);
SELECT mig_cancel(:job);
COMMIT;
SELECT state FROM mig_jobs WHERE job_id = :job;
SELECT attrelid::regclass, attname FROM pg_attribute
 WHERE attrelid IN ('ct9'::regclass, 'ct9_ref'::regclass) AND attname LIKE 'mig_%' AND NOT attisdropped ORDER BY 1, 2;
-- refused: a revert (nothing to swap back), and a new job of the column
-- while the cancelled one's column is there
SELECT pg_temp.try(:job, format('SELECT mig_revert(%s)', :job));
SELECT pg_temp.try(:job, $$SELECT mig_change_type('ct9', 'id', 'bigint', convert_referencing => true)$$);
SELECT pg_temp.try(:job, $$SELECT mig_change_type('ct9_ref', 'ct9_id', 'bigint')$$);
SET client_min_messages = warning;
SELECT mig_forget(:job);
RESET client_min_messages;
(SELECT s FROM pg_temp.ct_schema('ct9', 'ct9_ref') s EXCEPT ALL SELECT s FROM ct9_before)
UNION ALL
(SELECT s FROM ct9_before EXCEPT ALL SELECT s FROM pg_temp.ct_schema('ct9', 'ct9_ref') s);
SELECT count(*) AS triggers FROM pg_trigger
 WHERE tgrelid IN ('ct9'::regclass, 'ct9_ref'::regclass) AND NOT tgisinternal;
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'pg_mig_change_type_' || 'ct9'::regclass::oid || '_%'
   OR proname LIKE 'pg_mig_change_type_' || 'ct9_ref'::regclass::oid || '_%';
SELECT event, regexp_replace(detail, ' by .*', '') AS detail FROM mig_job_events
 WHERE job_id = :job AND event IN ('new column dropped', 'forgotten', 'key released') ORDER BY event_id;
-- the same key starts the change again, which succeeds
SELECT mig_change_type('ct9', 'id', 'bigint', convert_referencing => true, lock_timeout => '2s',
                       cleanup => true, job_key => 'ct9 to bigint') AS again \gset
SELECT :again > :job AS new_job;
SELECT mig_wait(:again, '120s');
SELECT attrelid::regclass, attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid IN ('ct9'::regclass, 'ct9_ref'::regclass) AND attnum > 0 AND NOT attisdropped ORDER BY 1, 2;
-- mig_forget of a succeeded job that swapped drops nothing more
SET client_min_messages = warning;
SELECT mig_forget(:again);
RESET client_min_messages;
SELECT count(*) AS dropped_events FROM mig_job_events
 WHERE job_id = :again AND event IN ('new column dropped', 'old column dropped');
SELECT count(*), sum(ct9_id) FROM ct9_ref JOIN ct9 ON ct9.id = ct9_id;
DROP TABLE ct9_ref, ct9, ct9_before;
-- the hint names the job that left the column, not the table's newest
CREATE TABLE ct9b (id int PRIMARY KEY, x int, y int);
INSERT INTO ct9b SELECT g, g, g FROM generate_series(1, 100) g;
BEGIN;
SELECT mig_change_type('ct9b', 'x', 'bigint', lock_timeout => '2s') AS jx \gset
SELECT mig_cancel(:jx);
COMMIT;
SELECT mig_change_type('ct9b', 'y', 'bigint', lock_timeout => '2s') AS jy \gset
SELECT mig_wait(:jy, '120s');
SELECT pg_temp.try(:jx, $$SELECT mig_change_type('ct9b', 'x', 'bigint')$$);
-- and the job that kept its old column
SELECT pg_temp.try(:jy, $$SELECT mig_change_type('ct9b', 'y', 'numeric')$$);
SET client_min_messages = warning;
SELECT mig_forget(:jx);
SELECT mig_forget(:jy);
RESET client_min_messages;
DROP TABLE ct9b;

-- the table's owner points the job's trigger at another role's function:
-- mig_forget by that role (here a superuser) drops the trigger, not the
-- function, which is not the job's
CREATE ROLE regress_ct_owner;
CREATE TABLE ct10 (id int PRIMARY KEY);
INSERT INTO ct10 SELECT generate_series(1, 10);
ALTER TABLE ct10 OWNER TO regress_ct_owner;
CREATE FUNCTION ct10_victim() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
BEGIN;
SELECT mig_change_type('ct10', 'id', 'bigint', lock_timeout => '2s') AS job \gset
SELECT mig_cancel(:job);
COMMIT;
SET ROLE regress_ct_owner;
DROP TRIGGER zz_pg_mig_change_type_1 ON ct10;
CREATE TRIGGER zz_pg_mig_change_type_1 BEFORE INSERT ON ct10 FOR EACH ROW EXECUTE FUNCTION ct10_victim();
RESET ROLE;
SET client_min_messages = warning;
SELECT mig_forget(:job);
RESET client_min_messages;
SELECT count(*) AS victim FROM pg_proc WHERE proname = 'ct10_victim';
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'ct10'::regclass AND NOT tgisinternal;
SELECT attname FROM pg_attribute WHERE attrelid = 'ct10'::regclass AND attnum > 0 AND NOT attisdropped;
-- the job's own function, which the trigger no longer calls, is left
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT oid FROM pg_proc WHERE proname LIKE 'pg_mig_change_type_' || 'ct10'::regclass::oid || '_%' LOOP
    EXECUTE format('DROP FUNCTION %s', f);
  END LOOP;
END $$;
DROP TABLE ct10;
DROP FUNCTION ct10_victim();
DROP ROLE regress_ct_owner;

-- mig_forget by the table's owner of a job another role started (a member
-- of the owning role): what the job made is dropped with the caller's
-- rights, and the job's function is not the table owner's; refused with a
-- hint that names the job's owner, nothing dropped
CREATE ROLE regress_ct_app;
CREATE ROLE regress_ct_deploy LOGIN IN ROLE regress_ct_app;
GRANT CREATE ON SCHEMA public TO regress_ct_deploy;
CREATE TABLE ct11 (id int PRIMARY KEY);
INSERT INTO ct11 SELECT generate_series(1, 10);
ALTER TABLE ct11 OWNER TO regress_ct_app;
SET ROLE regress_ct_deploy;
BEGIN;
SELECT mig_change_type('ct11', 'id', 'bigint', lock_timeout => '2s') AS job \gset
SELECT mig_cancel(:job);
COMMIT;
SET ROLE regress_ct_app;
SELECT regexp_replace(pg_temp.try(:job, format('SELECT mig_forget(%s)', :job)),
                      'pg_mig_change_type_\d+_', 'pg_mig_change_type_T_');
SELECT attname FROM pg_attribute WHERE attrelid = 'ct11'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY 1;
SET ROLE regress_ct_deploy;
SET client_min_messages = warning;
SELECT mig_forget(:job);
RESET client_min_messages;
RESET ROLE;
SELECT attname FROM pg_attribute WHERE attrelid = 'ct11'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY 1;
DROP TABLE ct11;
REVOKE CREATE ON SCHEMA public FROM regress_ct_deploy;
DROP ROLE regress_ct_deploy, regress_ct_app;

-- Security, round two (issue 22): kept tables pg_mig owns and finds by OID,
-- what the owner of a job's table may do, orphan walks that see what the
-- foreign key sees, keys compared by their own operators, caps, and the
-- reliability items.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_sec2_alice LOGIN;
CREATE ROLE regress_sec2_bob LOGIN;
CREATE ROLE regress_sec2_carol LOGIN;
CREATE TABLE sec2_calls (who name);
GRANT INSERT ON sec2_calls TO PUBLIC;
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
    RETURN SQLSTATE || ': ' || regexp_replace(msg || coalesce(' (hint: ' || hint || ')', ''),
                                              '[0-9]+', 'N', 'g');
END $$;

-- 1. kept values live in pg_mig's own schema, which no other role may write
SELECT nspname, pg_get_userbyid(nspowner) = current_user AS installer_owns,
       has_schema_privilege('regress_sec2_alice', oid, 'CREATE') AS others_create,
       has_schema_privilege('regress_sec2_alice', oid, 'USAGE') AS others_use
  FROM pg_namespace WHERE nspname = 'mig_kept';

-- the attack of the issue: the owner of the install schema (a database's
-- owner owns public on 15+) drops her backfill's kept table there, puts a
-- view over her function in its place and calls mig_revert
ALTER SCHEMA public OWNER TO regress_sec2_alice;
SET ROLE regress_sec2_alice;
CREATE TABLE kt (id int PRIMARY KEY, a int);
INSERT INTO kt SELECT g, g FROM generate_series(1, 50) g;
SELECT mig_start_backfill('kt', 'a = id * 10', batch_size => 20, chunk_time => NULL,
                          keep_old_values => true) AS ktjob \gset
SELECT mig_wait(:ktjob, '60s');
CREATE FUNCTION public.grab() RETURNS int LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO public.sec2_calls VALUES (current_user); RETURN 1; END $$;
SELECT pg_temp.try(format('DROP TABLE IF EXISTS public.%I', 'mig_kept_' || :ktjob));
SELECT pg_temp.try(format('CREATE VIEW public.%I AS SELECT g AS id, public.grab() AS mig_old_1,'
                          ' public.grab() AS mig_new_1 FROM generate_series(1, 50) g',
                          'mig_kept_' || :ktjob));
-- the real kept table cannot be dropped, nor written, by her
SELECT pg_temp.try(format('DROP TABLE mig_kept.%I', 'mig_kept_' || :ktjob));
SELECT pg_temp.try(format('DELETE FROM mig_kept.%I', 'mig_kept_' || :ktjob));
SELECT mig_revert(:ktjob) AS ktrev \gset
SELECT mig_wait(:ktrev, '60s');
RESET ROLE;
SELECT count(*) AS calls_not_by_alice FROM sec2_calls WHERE who <> 'regress_sec2_alice';
SELECT count(*) FILTER (WHERE a = id) AS reverted FROM kt;
SELECT relnamespace::regnamespace AS kept_schema, pg_get_userbyid(relowner) = 'regress_sec2_alice' AS alice_owns
  FROM pg_class WHERE relname = 'mig_kept_' || :ktjob AND relkind = 'r';

-- 2. the owner of a job's table may pause, cancel and forget it, but not
-- change what it runs, resume it or revert it
BEGIN;
SELECT mig_start_backfill('kt', 'a = id + 1', batch_size => 10, chunk_time => NULL,
                          keep_old_values => true) AS sujob \gset
SELECT pg_temp.try('SELECT mig_pause(' || :sujob || ')');
COMMIT;
SET ROLE regress_sec2_alice;
SELECT pg_temp.try('SELECT mig_set(' || :sujob || ', throttle_query => ''SELECT public.grab() > 0'')');
SELECT pg_temp.try('SELECT mig_resume(' || :sujob || ')');
SELECT mig_pause(:sujob);
SELECT pg_temp.try('SELECT mig_cancel(' || :sujob || ')');
SELECT pg_temp.try('SELECT mig_revert(' || :sujob || ')');
SELECT pg_temp.try('SELECT mig_forget(' || :sujob || ')');
RESET ROLE;
SELECT state FROM mig_jobs WHERE job_id = :sujob;
SELECT count(*) AS calls_not_by_alice FROM sec2_calls WHERE who <> 'regress_sec2_alice';

-- 10. kept tables per role are capped
SET pg_mig.max_kept_tables_per_role = 1;
SET ROLE regress_sec2_alice;
-- she has one (her first backfill's, reverted but not forgotten)
SELECT pg_temp.try($$SELECT mig_start_backfill('kt', 'a = id', keep_old_values => true)$$);
SELECT mig_forget(:ktjob);
SELECT mig_start_backfill('kt', 'a = id', batch_size => 50, chunk_time => NULL,
                          keep_old_values => true) AS capjob \gset
SELECT mig_wait(:capjob, '60s');
SELECT mig_forget(:capjob);
RESET ROLE;
RESET pg_mig.max_kept_tables_per_role;

-- keep_old_values needs SELECT on the columns it keeps: refused at start
GRANT SELECT (id), UPDATE (a) ON kt TO regress_sec2_bob;
SET ROLE regress_sec2_bob;
SELECT mig_start_backfill('kt', 'a = 0', keep_old_values => true);
RESET ROLE;

-- the upgrade from 0.3 moves the kept tables into mig_kept, by OID, and a
-- revert of a 0.3 backfill works after it
SELECT current_database() AS regress_db \gset
CREATE DATABASE regress_sec2_upgrade;
\c regress_sec2_upgrade
SET client_min_messages = warning;
CREATE TABLE t3 (id int PRIMARY KEY, a int);
INSERT INTO t3 SELECT g, g * 10 FROM generate_series(1, 20) g;
GRANT SELECT, UPDATE ON t3 TO regress_sec2_carol;
CREATE EXTENSION pg_mig VERSION '0.3';
-- a succeeded 0.3 backfill a = id * 10 with keep_old_values, as 0.3 left it
INSERT INTO mig_job (relid, relation_name, set_clause, search_path, owner, owner_name,
                     state, batch_size, lock_timeout, statement_timeout, max_retries,
                     rows_done, keys_done, kind, kind_args, finished_at)
VALUES ('t3'::regclass, 'public.t3', 'a = id * 10', 'public', 'regress_sec2_carol'::regrole,
        'regress_sec2_carol', 'succeeded', 100, '1s', '1min', 3, 20, 20, 'backfill',
        '{keep_old_values=true,kept_column=a}', now())
RETURNING job_id AS oldjob \gset
INSERT INTO mig_job_target (job_id, ord, relid, relation_name, key_columns, upper_key,
                            keys_estimate, resolved_set_clause)
VALUES (:oldjob, 0, 't3'::regclass, 'public.t3', '{id}', '{20}', 20, 'a = (id * 10)');
SELECT format('CREATE TABLE public.%1$I (id integer NOT NULL, mig_old_1 integer, mig_new_1 integer, PRIMARY KEY (id));'
              ' REVOKE ALL ON public.%1$I FROM PUBLIC; GRANT SELECT, INSERT ON public.%1$I TO regress_sec2_carol;'
              ' INSERT INTO public.%1$I SELECT g, g, g * 10 FROM generate_series(1, 20) g;'
              ' CREATE TRIGGER mig_kept_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.%1$I'
              ' FOR EACH STATEMENT EXECUTE FUNCTION public.mig_kept_guard()',
              'mig_kept_' || :oldjob) \gexec
ALTER EXTENSION pg_mig UPDATE;
SELECT c.relnamespace::regnamespace AS kept_schema,
       ('kept_relid=' || c.oid) = ANY (j.kind_args) AS oid_stored
  FROM pg_class c, mig_job j
 WHERE c.relname = 'mig_kept_' || :oldjob AND j.job_id = :oldjob;
SELECT mig_revert(:oldjob) AS oldrev \gset
SELECT mig_wait(:oldrev, '60s');
SELECT count(*) FILTER (WHERE a = id) AS reverted FROM t3;
SELECT mig_forget(:oldjob);
\c :regress_db
SET client_min_messages = warning;
DROP DATABASE regress_sec2_upgrade WITH (FORCE);

-- 9. a key whose operators are not pg_catalog's (citext): refused at start,
-- not walked by text's order
CREATE EXTENSION citext;
CREATE TABLE ck (code citext PRIMARY KEY, n int DEFAULT 0);
INSERT INTO ck SELECT chr(65 + g % 26) || g FROM generate_series(1, 200) g;
INSERT INTO ck SELECT lower(chr(65 + g % 26)) || g FROM generate_series(201, 400) g;
SELECT mig_start_backfill('ck', 'n = 1');
SELECT mig_start_backfill('ck', 'n = 1', parallel => 2);
-- with a key of its own it walks every row once
ALTER TABLE ck ADD COLUMN id serial UNIQUE NOT NULL;
SELECT mig_start_backfill('ck', 'n = n + 1', batch_size => 37, chunk_time => NULL) AS ckjob \gset
SELECT mig_wait(:ckjob, '60s');
SELECT count(*) FILTER (WHERE n = 1) AS once, count(*) FILTER (WHERE n <> 1) AS not_once FROM ck;

-- 8. the orphan walk compares by the foreign key's equality (citext)
CREATE TABLE codes (code citext PRIMARY KEY);
INSERT INTO codes SELECT 'code' || g FROM generate_series(1, 10) g;
CREATE TABLE uses (id int PRIMARY KEY, code citext);
INSERT INTO uses SELECT g, CASE WHEN g % 2 = 0 THEN 'CODE' ELSE 'code' END || (g % 10 + 1)
  FROM generate_series(1, 100) g;
INSERT INTO uses VALUES (101, 'code99'), (102, NULL);
SELECT mig_add_foreign_key('uses', '{code}', 'codes', orphans => 'delete',
                           batch_size => 25, chunk_time => NULL) AS fk1 \gset
SELECT mig_wait(:fk1, '60s');
SELECT count(*) AS kept_rows, count(*) FILTER (WHERE id = 101) AS real_orphan FROM uses;

-- 7. row-level security on the referenced table: the walk reads it as the
-- foreign key does (as its owner, policies off), not as the job's owner
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT g FROM generate_series(1, 100) g;
CREATE FUNCTION public.seen(int) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO public.sec2_calls VALUES (current_user); RETURN $1 % 2 = 0; END $$;
ALTER TABLE parent OWNER TO regress_sec2_carol;
ALTER TABLE parent ENABLE ROW LEVEL SECURITY;
ALTER TABLE parent FORCE ROW LEVEL SECURITY;
CREATE POLICY half ON parent USING (public.seen(id));
GRANT SELECT, REFERENCES ON parent TO regress_sec2_alice;
CREATE TABLE child (id int PRIMARY KEY, parent_id int);
INSERT INTO child SELECT g, g % 100 + 1 FROM generate_series(1, 300) g;
INSERT INTO child VALUES (301, 1000), (302, 2000);
ALTER TABLE child OWNER TO regress_sec2_alice;
TRUNCATE sec2_calls;
SET ROLE regress_sec2_alice;
SELECT mig_add_foreign_key('child', '{parent_id}', 'parent', orphans => 'delete',
                           batch_size => 50, chunk_time => NULL) AS fk2 \gset
SELECT mig_wait(:fk2, '60s');
RESET ROLE;
SELECT count(*) AS kept_rows, count(*) FILTER (WHERE parent_id > 100) AS real_orphans FROM child;
SELECT count(*) AS policy_calls_as_alice FROM sec2_calls WHERE who = 'regress_sec2_alice';
SELECT convalidated FROM pg_constraint WHERE conrelid = 'child'::regclass AND contype = 'f';

-- mig_create_index: a valid index of the name given is refused at start;
-- so is a start without CREATE on the table's schema
CREATE INDEX uses_code_idx ON uses (code);
SELECT mig_create_index('uses', 'code', 'uses_code_idx');
CREATE SCHEMA nocreate;
CREATE TABLE nocreate.t (id int PRIMARY KEY, v int);
ALTER TABLE nocreate.t OWNER TO regress_sec2_bob;
GRANT USAGE ON SCHEMA nocreate TO regress_sec2_bob;
SET ROLE regress_sec2_bob;
SELECT mig_create_index('nocreate.t', 'v');
RESET ROLE;

ALTER SCHEMA public OWNER TO pg_database_owner;
DO $$ DECLARE v regclass; BEGIN
  FOR v IN SELECT c.oid FROM pg_class c WHERE c.relkind = 'v' AND c.relname LIKE 'mig\_kept\_%' LOOP
    EXECUTE format('DROP VIEW %s', v);
  END LOOP; END $$;
DROP TABLE kt, ck, uses, codes, child, parent, sec2_calls;
DROP SCHEMA nocreate CASCADE;
DROP FUNCTION public.grab(), public.seen(int);
DROP EXTENSION citext;
DROP OWNED BY regress_sec2_alice, regress_sec2_bob, regress_sec2_carol;
DROP ROLE regress_sec2_alice, regress_sec2_bob, regress_sec2_carol;

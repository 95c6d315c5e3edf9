/* sql/pg_mig--0.3--0.4.sql -- pg_mig 0.4: safe retries, security round two, new kinds */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.4'" to load this file. \quit

-- Every object below is schema-qualified with @extschema@ or pg_catalog;
-- operators in views and functions are written OPERATOR(pg_catalog.x).
-- Whatever this script adds or changes goes into sql/pg_mig.sql too (the
-- full install script of 0.4), in its final form and in the section of the
-- same name; it_ops (Ops.FreshInstallEqualsTheUpgradePath) shows every
-- difference between the two.

------------------------------------------------------------------------
-- Section 1: recovery (issue 21): job keys, retries of failed jobs
------------------------------------------------------------------------

-- Starting again is safe (contract 0.4).  job_key is the caller's name for
-- "this step of this migration": a start with a key that a job of this
-- database already holds starts nothing and returns that job (resumed if it
-- failed or was paused), after checking that the kind, the table and the
-- arguments that change what runs (start_args: "name=value" items, a bare
-- "name" for NULL) are the same.  A job releases its key (job_key NULL)
-- when it is forgotten (mig_forget) or reverted (a revert of it succeeded).
-- start_args also lets a start without a key resume a failed job of the
-- same kind and arguments on the table instead of being refused.
ALTER TABLE @extschema@.mig_job
    ADD COLUMN job_key text CHECK (pg_catalog.octet_length(job_key) OPERATOR(pg_catalog.<=) 1024),
    ADD COLUMN start_args text[];
CREATE UNIQUE INDEX mig_job_job_key ON @extschema@.mig_job (job_key)
    WHERE job_key IS NOT NULL;

-- A failed job no longer blocks its table by itself (a failed schema step
-- that left nothing behind, a forgotten job), and such a job may be paused
-- or resumed while another job is on the table: the start functions and
-- mig_resume decide, under the table tree's start lock
-- (MigFindActiveJobOn).  The index keeps the wall for the jobs that run.
DROP INDEX @extschema@.mig_job_one_active_per_table;
CREATE UNIQUE INDEX mig_job_one_active_per_table
    ON @extschema@.mig_job (relid)
    WHERE state IN ('queued', 'running');

-- Every start function takes job_key as its last argument; the 0.3 calls
-- (by name or by position) keep working.
DROP FUNCTION @extschema@.mig_start_backfill(regclass, text, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, boolean, integer, bigint);
CREATE FUNCTION @extschema@.mig_start_backfill(
    relation            regclass,
    set_clause          text,
    where_clause        text     DEFAULT NULL,
    batch_size          integer  DEFAULT pg_catalog.current_setting('pg_mig.default_batch_size', true)::integer,
    chunk_time          interval DEFAULT pg_catalog.current_setting('pg_mig.default_chunk_time', true)::interval,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.pg_size_bytes(pg_catalog.regexp_replace(
                                     pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true),
                                     '([0-9])B$', '\1')),
    sleep               interval DEFAULT '0',
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    statement_timeout   interval DEFAULT pg_catalog.current_setting('pg_mig.default_statement_timeout', true)::interval,
    max_wal_rate        bigint   DEFAULT NULL,
    nice_ratio          double precision DEFAULT NULL,
    ignore_slots        text[]   DEFAULT NULL,
    run_window          text     DEFAULT NULL,
    throttle_query      text     DEFAULT NULL,
    max_active_sessions integer  DEFAULT NULL,
    max_xact_age        interval DEFAULT NULL,
    max_archive_backlog integer  DEFAULT NULL,
    throttle_on_autovacuum boolean DEFAULT false,
    keep_old_values     boolean  DEFAULT false,
    parallel            integer  DEFAULT 1,
    vacuum_every        bigint   DEFAULT NULL,
    verify              boolean  DEFAULT true,
    max_app_latency     interval DEFAULT NULL,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_backfill'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_start_backfill(regclass, text, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, boolean, integer, bigint, boolean, interval, text)
IS 'starts a chunked backfill (UPDATE) in background workers (parallel lanes), keeping the old values with keep_old_values, and verifies what still matches the where clause after the walk with verify, paced to the lag budget and max_app_latency; returns the job id; a job_key names the step, so that starting it again returns the job that has the key';

DROP FUNCTION @extschema@.mig_start_delete(regclass, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, integer, bigint);
CREATE FUNCTION @extschema@.mig_start_delete(
    relation            regclass,
    where_clause        text,
    batch_size          integer  DEFAULT pg_catalog.current_setting('pg_mig.default_batch_size', true)::integer,
    chunk_time          interval DEFAULT pg_catalog.current_setting('pg_mig.default_chunk_time', true)::interval,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.pg_size_bytes(pg_catalog.regexp_replace(
                                     pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true),
                                     '([0-9])B$', '\1')),
    sleep               interval DEFAULT '0',
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    statement_timeout   interval DEFAULT pg_catalog.current_setting('pg_mig.default_statement_timeout', true)::interval,
    max_wal_rate        bigint   DEFAULT NULL,
    nice_ratio          double precision DEFAULT NULL,
    ignore_slots        text[]   DEFAULT NULL,
    run_window          text     DEFAULT NULL,
    throttle_query      text     DEFAULT NULL,
    max_active_sessions integer  DEFAULT NULL,
    max_xact_age        interval DEFAULT NULL,
    max_archive_backlog integer  DEFAULT NULL,
    throttle_on_autovacuum boolean DEFAULT false,
    parallel            integer  DEFAULT 1,
    vacuum_every        bigint   DEFAULT NULL,
    verify              boolean  DEFAULT true,
    max_app_latency     interval DEFAULT NULL,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_delete'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_start_delete(regclass, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, integer, bigint, boolean, interval, text)
IS 'starts a chunked DELETE of the rows matching where_clause in background workers (parallel lanes), and verifies what still matches after the walk with verify, paced to the lag budget and max_app_latency; returns the job id; a job_key names the step, so that starting it again returns the job that has the key';

DROP FUNCTION @extschema@.mig_set_not_null(regclass, name, interval, integer);
CREATE FUNCTION @extschema@.mig_set_not_null(
    relation            regclass,
    column_name         name,
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_set_not_null'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_set_not_null(regclass, name, interval, integer, text)
IS 'starts a job that sets a column NOT NULL without a long lock: a NOT VALID check, VALIDATE, SET NOT NULL, drop the check; a job_key names the step, so that starting it again returns the job that has the key';

DROP FUNCTION @extschema@.mig_validate_constraint(regclass, name, interval, integer);
CREATE FUNCTION @extschema@.mig_validate_constraint(
    relation            regclass,
    constraint_name     name,
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_validate_constraint'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_validate_constraint(regclass, name, interval, integer, text)
IS 'starts a job that validates a NOT VALID check or foreign key constraint; a job_key names the step, so that starting it again returns the job that has the key';

DROP FUNCTION @extschema@.mig_create_index(regclass, text, name, boolean, text, text, name[], interval, bigint, interval, integer);
CREATE FUNCTION @extschema@.mig_create_index(
    relation            regclass,
    columns             text,
    index_name          name     DEFAULT NULL,
    "unique"            boolean  DEFAULT false,
    method              text     DEFAULT 'btree',
    where_clause        text     DEFAULT NULL,
    include             name[]   DEFAULT NULL,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.pg_size_bytes(pg_catalog.regexp_replace(
                                     pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true),
                                     '([0-9])B$', '\1')),
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_create_index'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_create_index(regclass, text, name, boolean, text, text, name[], interval, bigint, interval, integer, text)
IS 'starts a job that builds an index with CREATE INDEX CONCURRENTLY in a background worker; a job_key names the step, so that starting it again returns the job that has the key';

DROP FUNCTION @extschema@.mig_add_foreign_key(regclass, name[], regclass, name[], name, text, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean);
CREATE FUNCTION @extschema@.mig_add_foreign_key(
    relation            regclass,
    columns             name[],
    ref_relation        regclass,
    ref_columns         name[]   DEFAULT NULL,
    constraint_name     name     DEFAULT NULL,
    on_delete           text     DEFAULT 'no action',
    orphans             text     DEFAULT 'fail',
    batch_size          integer  DEFAULT pg_catalog.current_setting('pg_mig.default_batch_size', true)::integer,
    chunk_time          interval DEFAULT pg_catalog.current_setting('pg_mig.default_chunk_time', true)::interval,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.pg_size_bytes(pg_catalog.regexp_replace(
                                     pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true),
                                     '([0-9])B$', '\1')),
    sleep               interval DEFAULT '0',
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    statement_timeout   interval DEFAULT pg_catalog.current_setting('pg_mig.default_statement_timeout', true)::interval,
    max_wal_rate        bigint   DEFAULT NULL,
    nice_ratio          double precision DEFAULT NULL,
    ignore_slots        text[]   DEFAULT NULL,
    run_window          text     DEFAULT NULL,
    throttle_query      text     DEFAULT NULL,
    max_active_sessions integer  DEFAULT NULL,
    max_xact_age        interval DEFAULT NULL,
    max_archive_backlog integer  DEFAULT NULL,
    throttle_on_autovacuum boolean DEFAULT false,
    max_app_latency     interval DEFAULT NULL,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_add_foreign_key'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_add_foreign_key(regclass, name[], regclass, name[], name, text, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, interval, text)
IS 'starts a job that adds a foreign key NOT VALID, handles the orphan rows chunk by chunk, then validates it; a job_key names the step, so that starting it again returns the job that has the key';

DROP FUNCTION @extschema@.mig_revert(bigint, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, bigint);
CREATE FUNCTION @extschema@.mig_revert(
    job_id              bigint,
    batch_size          integer  DEFAULT pg_catalog.current_setting('pg_mig.default_batch_size', true)::integer,
    chunk_time          interval DEFAULT pg_catalog.current_setting('pg_mig.default_chunk_time', true)::interval,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.pg_size_bytes(pg_catalog.regexp_replace(
                                     pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true),
                                     '([0-9])B$', '\1')),
    sleep               interval DEFAULT '0',
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    statement_timeout   interval DEFAULT pg_catalog.current_setting('pg_mig.default_statement_timeout', true)::interval,
    max_wal_rate        bigint   DEFAULT NULL,
    nice_ratio          double precision DEFAULT NULL,
    ignore_slots        text[]   DEFAULT NULL,
    run_window          text     DEFAULT NULL,
    throttle_query      text     DEFAULT NULL,
    max_active_sessions integer  DEFAULT NULL,
    max_xact_age        interval DEFAULT NULL,
    max_archive_backlog integer  DEFAULT NULL,
    throttle_on_autovacuum boolean DEFAULT false,
    vacuum_every        bigint   DEFAULT NULL,
    max_app_latency     interval DEFAULT NULL,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_revert'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_revert(bigint, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, bigint, interval, text)
IS 'starts a job (kind revert) that writes the old values kept by backfill job_id back, chunk by chunk, paced to the lag budget and max_app_latency, or, for a change_type job after its swap, a change_type job that swaps the columns back; returns its id; a job_key names the step, so that starting it again returns the job that has the key';

COMMENT ON FUNCTION @extschema@.mig_forget(bigint)
IS 'forgets a finished job (succeeded, failed or cancelled): releases its job_key, stops a failed job from blocking its table, and drops the old values kept by a backfill';

-- (end of section 1)

------------------------------------------------------------------------
-- Section 2: security, round two (issue 22)
------------------------------------------------------------------------

-- Kept values (keep_old_values) live in a schema of pg_mig's own, a member
-- of the extension: no role but its owner can create, drop or swap an
-- object in it (0.3 made them in the install schema, which a database's
-- owner owns on PostgreSQL 15+).  Roles may USE it: a job's owner writes
-- her kept table from her worker and reads it for a revert.
CREATE SCHEMA mig_kept;
COMMENT ON SCHEMA mig_kept IS 'pg_mig''s tables of kept values (keep_old_values), one per backfill; see mig_revert, mig_forget';
REVOKE ALL ON SCHEMA mig_kept FROM PUBLIC;
GRANT USAGE ON SCHEMA mig_kept TO PUBLIC;

-- 0.3's kept tables move there; the job stores its kept table's OID, which
-- names it from now on.  Only a table of the bootstrap superuser (pg_mig
-- made it) moves: anything else of that name is not pg_mig's.
DO $mig$
DECLARE
    j record;
BEGIN
    FOR j IN
        SELECT job.job_id, c.oid AS kept
          FROM @extschema@.mig_job job
          JOIN pg_catalog.pg_class c
            ON c.relname OPERATOR(pg_catalog.=)
               pg_catalog.concat('mig_kept_', job.job_id)::pg_catalog.name
           AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('@extschema@')::pg_catalog.oid
           AND c.relowner OPERATOR(pg_catalog.=) 10::pg_catalog.oid
           AND c.relkind OPERATOR(pg_catalog.=) 'r'::pg_catalog."char"
         WHERE 'keep_old_values=true'::pg_catalog.text OPERATOR(pg_catalog.=) ANY (job.kind_args)
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s SET SCHEMA mig_kept', j.kept::pg_catalog.regclass);
        UPDATE @extschema@.mig_job
           SET kind_args = pg_catalog.array_append(kind_args, pg_catalog.concat('kept_relid=', j.kept))
         WHERE job_id OPERATOR(pg_catalog.=) j.job_id;
    END LOOP;
END
$mig$;

-- The orphan walk of mig_add_foreign_key reads the referenced table as the
-- foreign key does: as its owner with row-level security off, by the
-- foreign key's own equality operators (only in the worker of that job).
CREATE FUNCTION @extschema@.mig_ref_exists(ref pg_catalog.oid, ref_columns pg_catalog.text[],
                                           VARIADIC "any")
RETURNS boolean
AS 'MODULE_PATHNAME', 'mig_ref_exists' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_ref_exists(pg_catalog.oid, pg_catalog.text[], "any")
IS 'whether table ref has a row whose ref_columns equal the values, by the foreign key''s equality operators (the orphan walk of mig_add_foreign_key; in its worker, read as the table''s owner with row-level security off)';

------------------------------------------------------------------------
-- Section 3: PostgreSQL 19 (issue 24): mig_repack
------------------------------------------------------------------------

-- The kind repack: REPACK (CONCURRENTLY) of a table, run by the worker
-- (PostgreSQL 19 and later; before, mig_repack refuses to start).
ALTER TABLE @extschema@.mig_job
    DROP CONSTRAINT mig_job_kind_check,
    ADD CONSTRAINT mig_job_kind_check
        CHECK (kind IN ('backfill', 'delete', 'not_null', 'foreign_key',
                        'validate', 'index', 'revert', 'repack'));

CREATE FUNCTION @extschema@.mig_repack(
    relation            regclass,
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.pg_size_bytes(pg_catalog.regexp_replace(
                                     pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true),
                                     '([0-9])B$', '\1')),
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_repack'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_repack(regclass, interval, integer, interval, bigint, text)
IS 'starts a job that rewrites a table with REPACK (CONCURRENTLY) in a background worker (PostgreSQL 19 and later); its final lock under lock_timeout, retried';

------------------------------------------------------------------------
-- Section 4: monitoring (issue 27) and pacing (issue 28)
------------------------------------------------------------------------

-- Pacing (issue 28).  max_app_latency: while more than 1% of the
-- statements of the job's database take longer than this (its p99; the
-- launcher samples the sessions' activity, see docs), the job slows down,
-- down to a stop.  A knob of every walking kind and of mig_set, stored in
-- mig_job.max_app_latency, the last knob argument, before job_key
-- (Section 1; the start functions are defined there).
ALTER TABLE @extschema@.mig_job ADD COLUMN max_app_latency interval;

DROP FUNCTION @extschema@.mig_set(bigint, integer, interval, interval, bigint,
    interval, interval, integer, interval, bigint, double precision, text[], text,
    text, integer, interval, integer, boolean, bigint);
CREATE FUNCTION @extschema@.mig_set(
    job_id              bigint,
    batch_size          integer  DEFAULT NULL,
    chunk_time          interval DEFAULT NULL,
    max_lag             interval DEFAULT NULL,
    max_lag_bytes       bigint   DEFAULT NULL,
    sleep               interval DEFAULT NULL,
    lock_timeout        interval DEFAULT NULL,
    max_retries         integer  DEFAULT NULL,
    statement_timeout   interval DEFAULT NULL,
    max_wal_rate        bigint   DEFAULT NULL,
    nice_ratio          double precision DEFAULT NULL,
    ignore_slots        text[]   DEFAULT NULL,
    run_window          text     DEFAULT NULL,
    throttle_query      text     DEFAULT NULL,
    max_active_sessions integer  DEFAULT NULL,
    max_xact_age        interval DEFAULT NULL,
    max_archive_backlog integer  DEFAULT NULL,
    throttle_on_autovacuum boolean DEFAULT NULL,
    vacuum_every        bigint   DEFAULT NULL,
    max_app_latency     interval DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'mig_set' LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_set(bigint, integer, interval, interval, bigint,
    interval, interval, integer, interval, bigint, double precision, text[], text,
    text, integer, interval, integer, boolean, bigint,
    interval)
IS 'changes the knobs of a job (every lane of it) while it runs; NULL leaves a knob as it is, 0 (or an empty string) turns an optional limit off';


-- monitoring: the rate over wall-clock time.  The worker keeps two anchors
-- (time, rows, keys) in the checkpoint: anchor 0 is where the window
-- begins, anchor 1 where the next window will begin; every checkpoint at
-- least RATE_WINDOW (10 s) after anchor 1 moves anchor 1 to anchor 0 and
-- itself to now.  The views divide what was done since anchor 0 by the
-- time since anchor 0 at the moment they are read, so sleeps, throttled
-- and waiting time are in the rate, and a job that cannot move shows a
-- falling rate.  stalled_since: since when the worker waits on a health
-- signal without running a chunk (NULL while it runs); throttled_ms: the
-- time it waited so, counted by the worker.
ALTER TABLE @extschema@.mig_job
    ADD COLUMN throttled_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN stalled_since timestamptz,
    ADD COLUMN rate_at0 timestamptz,
    ADD COLUMN rate_rows0 bigint,
    ADD COLUMN rate_keys0 bigint,
    ADD COLUMN rate_at1 timestamptz,
    ADD COLUMN rate_rows1 bigint,
    ADD COLUMN rate_keys1 bigint;
ALTER TABLE @extschema@.mig_job_lane
    ADD COLUMN throttled_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN stalled_since timestamptz,
    ADD COLUMN rate_at0 timestamptz,
    ADD COLUMN rate_rows0 bigint,
    ADD COLUMN rate_keys0 bigint,
    ADD COLUMN rate_at1 timestamptz,
    ADD COLUMN rate_rows1 bigint,
    ADD COLUMN rate_keys1 bigint;

-- monitoring: a job's history, one sample per pg_mig.timeline_interval
-- (coarser as the job ages, at most 1000 per lane: see timeline.c),
-- written by the worker in the checkpoint's transaction (or the
-- throttled step's), so it is WAL-logged and survives restarts and
-- failover.  lane 0 is a job without lanes.  Guarded like the job tables.
CREATE TABLE @extschema@.mig_job_sample (
    job_id          bigint NOT NULL
        REFERENCES @extschema@.mig_job ON DELETE CASCADE,
    lane            integer NOT NULL DEFAULT 0,
    at              timestamptz NOT NULL,
    rows_done       bigint NOT NULL,
    keys_done       bigint NOT NULL,
    wal_bytes       bigint NOT NULL,
    batch_size      integer,
    lag_bytes       bigint,         -- the largest replica lag in bytes, NULL: no replica
    lag             interval,       -- the largest replay lag of a standby
    throttled       text,           -- why the job waited, NULL: it ran
    table_bytes     bigint,         -- pg_total_relation_size of the job's table
    PRIMARY KEY (job_id, lane, at)
);
CREATE TRIGGER mig_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.mig_job_sample
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.mig_guard();
ALTER TABLE @extschema@.mig_job_sample ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON @extschema@.mig_job_sample FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_sample', '');

-- The samples, readable as mig_jobs is: the figures by everyone, the
-- throttle reason by the roles that see a job's details.
CREATE VIEW @extschema@.mig_job_samples AS
SELECT s.job_id, s.lane, s.at, s.rows_done, s.keys_done, s.wal_bytes,
       s.batch_size, s.lag_bytes, s.lag,
       CASE WHEN pg_catalog.pg_has_role(j.owner, 'USAGE'::pg_catalog.text)
              OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
                                        'USAGE'::pg_catalog.text)
              OR COALESCE((SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'::pg_catalog.text)
                             FROM pg_catalog.pg_class c
                            WHERE c.oid OPERATOR(pg_catalog.=) j.relid), false)
            THEN s.throttled
            WHEN s.throttled IS NOT NULL THEN 'throttled'::pg_catalog.text
       END AS throttled,
       s.table_bytes
  FROM @extschema@.mig_job_sample s
  JOIN @extschema@.mig_job j ON j.job_id OPERATOR(pg_catalog.=) s.job_id;
COMMENT ON VIEW @extschema@.mig_job_samples IS 'the samples of every pg_mig job''s history, per lane, as the workers recorded them (see mig_job_timeline)';
GRANT SELECT ON @extschema@.mig_job_samples TO PUBLIC;

-- monitoring: verify (mig_start_backfill and mig_start_delete, Section 1):
-- after a walk with a where clause, count the rows up to the fixed upper
-- key that still match, into the event verified.

-- mig_job_timeline: the job's history, one row per sample of any lane,
-- with the job's rows summed over its lanes (each lane's latest sample at
-- that time) and the rate over the interval since the row before.
CREATE FUNCTION @extschema@.mig_job_timeline(job_id bigint)
RETURNS TABLE(at timestamptz, rows_done bigint, rows_per_sec double precision,
              lag_bytes bigint, lag interval, throttled text,
              keys_done bigint, wal_bytes bigint, batch_size integer,
              table_bytes bigint)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT t.at, t.rows_done,
       CASE WHEN pg_catalog.lag(t.at) OVER w IS NULL THEN NULL
            ELSE GREATEST(t.rows_done OPERATOR(pg_catalog.-) pg_catalog.lag(t.rows_done) OVER w,
                          0::pg_catalog.int8)::pg_catalog.float8
                 OPERATOR(pg_catalog./)
                 GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                              t.at OPERATOR(pg_catalog.-) pg_catalog.lag(t.at) OVER w),
                          0.001::pg_catalog.float8)
       END,
       t.lag_bytes, t.lag, t.throttled, t.keys_done, t.wal_bytes, t.batch_size,
       t.table_bytes
  FROM (SELECT s.at, a.rows_done, a.keys_done, a.wal_bytes,
               s.lag_bytes, s.lag, s.throttled, s.batch_size, s.table_bytes
          FROM @extschema@.mig_job_samples s
          CROSS JOIN LATERAL (
               SELECT pg_catalog.sum(x.rows_done)::pg_catalog.int8 AS rows_done,
                      pg_catalog.sum(x.keys_done)::pg_catalog.int8 AS keys_done,
                      pg_catalog.sum(x.wal_bytes)::pg_catalog.int8 AS wal_bytes
                 FROM (SELECT DISTINCT ON (p.lane) p.rows_done, p.keys_done, p.wal_bytes
                         FROM @extschema@.mig_job_samples p
                        WHERE p.job_id OPERATOR(pg_catalog.=) $1
                          AND p.at OPERATOR(pg_catalog.<=) s.at
                        ORDER BY p.lane, p.at DESC) x) a
         WHERE s.job_id OPERATOR(pg_catalog.=) $1) t
WINDOW w AS (ORDER BY t.at)
ORDER BY t.at
$fn$;
COMMENT ON FUNCTION @extschema@.mig_job_timeline(bigint)
IS 'the history of a pg_mig job at the resolution of its samples: time, rows done (over all lanes), rate since the sample before, replica lag, throttle reason, WAL, batch size and table size';
GRANT EXECUTE ON FUNCTION @extschema@.mig_job_timeline(bigint) TO PUBLIC;

------------------------------------------------------------------------
-- Section 5: the job views, rebuilt last over everything above
------------------------------------------------------------------------

-- mig_jobs (recovery, issue 21): job_key is appended; step says, while a
-- schema step's statement waits for a lock (CREATE INDEX CONCURRENTLY
-- waiting out older snapshots, or a lock held by another session), which
-- pids it waits for and since when; a repack's progress and phase come from
-- PostgreSQL 19's pg_stat_progress_repack.
-- (section 2, security) kept_bytes: the size of the kept table whose OID
-- the job stores, in schema mig_kept (0.3 looked the table up by name in
-- the install schema).
CREATE OR REPLACE VIEW @extschema@.mig_jobs AS
SELECT j.job_id,
       j.relid::pg_catalog.regclass AS relation,
       j.state,
       COALESCE(ln.rows_done, j.rows_done) AS rows_done,
       COALESCE(ln.rows_total, j.rows_total) AS rows_total,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'succeeded'::pg_catalog.text
            THEN 1.0::pg_catalog.float8
            WHEN p.pid IS NOT NULL THEN
                 CASE WHEN p.blocks_total OPERATOR(pg_catalog.>) 0::pg_catalog.int8
                      THEN LEAST(p.blocks_done::pg_catalog.float8
                                 OPERATOR(pg_catalog./) p.blocks_total::pg_catalog.float8,
                                 1.0::pg_catalog.float8)
                      WHEN p.tuples_total OPERATOR(pg_catalog.>) 0::pg_catalog.int8
                      THEN LEAST(p.tuples_done::pg_catalog.float8
                                 OPERATOR(pg_catalog./) p.tuples_total::pg_catalog.float8,
                                 1.0::pg_catalog.float8)
                 END
            WHEN r.pid IS NOT NULL THEN
                 CASE WHEN r.param8 OPERATOR(pg_catalog.>) 0::pg_catalog.int8
                      THEN LEAST(r.param9::pg_catalog.float8
                                 OPERATOR(pg_catalog./) r.param8::pg_catalog.float8,
                                 1.0::pg_catalog.float8)
                 END
            WHEN j.keys_total IS NULL
              OR j.keys_total OPERATOR(pg_catalog.<=) 0::pg_catalog.int8 THEN NULL
            ELSE LEAST(COALESCE(ln.keys_done, j.keys_done)::pg_catalog.float8
                       OPERATOR(pg_catalog./) j.keys_total::pg_catalog.float8,
                       1.0::pg_catalog.float8)
       END AS progress,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
            THEN COALESCE(ln.rows_per_sec, jr.rows_per_sec, j.rows_per_sec) END AS rows_per_sec,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
             AND ln.eta_secs IS NOT NULL
            THEN pg_catalog.make_interval(secs => pg_catalog.round(
                 ln.eta_secs::pg_catalog.numeric, 1::pg_catalog.int4)::pg_catalog.float8)
            WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
             AND j.parallel OPERATOR(pg_catalog.=) 1::pg_catalog.int4
             AND j.stalled_since IS NULL
             AND jr.keys_per_sec OPERATOR(pg_catalog.>) 0::pg_catalog.float8
             AND j.keys_total IS NOT NULL
            THEN pg_catalog.make_interval(secs => pg_catalog.round(
                 (GREATEST(j.keys_total OPERATOR(pg_catalog.-) j.keys_done,
                           0::pg_catalog.int8)::pg_catalog.float8
                  OPERATOR(pg_catalog./) jr.keys_per_sec)::pg_catalog.numeric,
                 1::pg_catalog.int4)::pg_catalog.float8)
       END AS eta,
       COALESCE(j.current_batch, j.batch_size) AS batch_size,
       CASE WHEN d.visible IS NOT TRUE THEN NULL
            -- no worker runs it (one left, held): the launcher's word is
            -- newer than what the last worker wrote
            WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
             AND w.pid IS NULL AND w.note IS NOT NULL THEN w.note
            ELSE COALESCE(j.throttled, ln.throttled,
                          CASE WHEN j.state OPERATOR(pg_catalog.=) ANY
                                    ('{queued,running}'::pg_catalog.text[])
                               THEN w.note END)
       END AS throttled,
       CASE WHEN d.visible THEN j.last_error END AS last_error,
       pg_catalog.pg_get_userbyid(j.owner) AS owner,
       j.started_at,
       j.updated_at,
       j.finished_at,
       j.created_at,
       CASE WHEN d.visible THEN j.set_clause END AS set_clause,
       CASE WHEN d.visible THEN j.where_clause END AS where_clause,
       COALESCE(ln.keys_done, j.keys_done) AS keys_done,
       j.keys_total,
       COALESCE(ln.chunks_done, j.chunks_done) AS chunks_done,
       COALESCE(ln.wal_bytes, j.wal_bytes) AS wal_bytes,
       COALESCE(ln.retries, j.retries) AS retries,
       w.pid AS worker_pid,
       j.chunk_time,
       j.max_lag,
       j.max_lag_bytes,
       j.sleep,
       j.lock_timeout,
       j.max_retries,
       j.kind,
       CASE WHEN p.pid IS NOT NULL
            THEN pg_catalog.concat(j.step, ': '::pg_catalog.text, p.phase)
            WHEN r.param2 IS NOT NULL
            THEN pg_catalog.concat(j.step, ': '::pg_catalog.text,
                 CASE r.param2
                      WHEN 0::pg_catalog.int8 THEN 'starting'::pg_catalog.text
                      WHEN 1::pg_catalog.int8
                      THEN pg_catalog.concat('copying the table, '::pg_catalog.text, r.param9,
                                             ' of '::pg_catalog.text, r.param8, ' pages'::pg_catalog.text)
                      WHEN 2::pg_catalog.int8
                      THEN pg_catalog.concat('copying the table in index order, '::pg_catalog.text,
                                             r.param4, ' rows read'::pg_catalog.text)
                      WHEN 3::pg_catalog.int8 THEN 'sorting the copied rows'::pg_catalog.text
                      WHEN 4::pg_catalog.int8
                      THEN pg_catalog.concat('writing the new table, '::pg_catalog.text,
                                             r.param5, ' rows written'::pg_catalog.text)
                      WHEN 5::pg_catalog.int8
                      THEN 'applying the changes made meanwhile'::pg_catalog.text
                      WHEN 6::pg_catalog.int8
                      THEN 'swapping in the new files (ACCESS EXCLUSIVE)'::pg_catalog.text
                      WHEN 7::pg_catalog.int8
                      THEN pg_catalog.concat('building the indexes of the new table, '::pg_catalog.text,
                                             r.param10, ' done'::pg_catalog.text)
                      WHEN 8::pg_catalog.int8 THEN 'cleaning up'::pg_catalog.text
                 END)
            ELSE j.step
       END
       OPERATOR(pg_catalog.||) CASE WHEN j.step IS NOT NULL
                 AND lw.blockers OPERATOR(pg_catalog.<>) ''::pg_catalog.text
            THEN pg_catalog.concat('; waits for '::pg_catalog.text, lw.blockers,
                                   ' ('::pg_catalog.text, lw.locktype, ' lock) since '::pg_catalog.text,
                                   lw.waitstart)
            ELSE ''::pg_catalog.text
       END AS step,
       j.parallel,
       (SELECT pg_catalog.pg_total_relation_size(c.oid)
          FROM pg_catalog.pg_class c
         WHERE c.oid OPERATOR(pg_catalog.=)
               (SELECT pg_catalog.substr(a, 12::pg_catalog.int4)::pg_catalog.oid
                  FROM pg_catalog.unnest(j.kind_args) a
                 WHERE pg_catalog.starts_with(a, 'kept_relid='::pg_catalog.text)
                 LIMIT 1)
           AND c.relnamespace OPERATOR(pg_catalog.=) 'mig_kept'::pg_catalog.regnamespace
       ) AS kept_bytes,
       j.job_key,
       COALESCE(ln.throttled_secs,
                j.throttled_ms::pg_catalog.float8 OPERATOR(pg_catalog./) 1000::pg_catalog.float8
                OPERATOR(pg_catalog.+)
                CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
                      AND j.stalled_since IS NOT NULL
                     THEN GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                              pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) j.stalled_since),
                              0::pg_catalog.float8)
                     ELSE 0::pg_catalog.float8 END) AS throttled_seconds
  FROM @extschema@.mig_job j
  CROSS JOIN LATERAL (
       SELECT pg_catalog.pg_has_role(j.owner, 'USAGE'::pg_catalog.text)
           OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
                                     'USAGE'::pg_catalog.text)
           OR COALESCE((SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'::pg_catalog.text)
                          FROM pg_catalog.pg_class c
                         WHERE c.oid OPERATOR(pg_catalog.=) j.relid), false)
           AS visible) d
  -- the rate since the window's anchor, at the moment the view is read
  CROSS JOIN LATERAL (
       SELECT CASE WHEN j.rate_at0 IS NOT NULL THEN
                   (j.rows_done OPERATOR(pg_catalog.-) j.rate_rows0)::pg_catalog.float8
                   OPERATOR(pg_catalog./) GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                       pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) j.rate_at0),
                       0.001::pg_catalog.float8) END AS rows_per_sec,
              CASE WHEN j.rate_at0 IS NOT NULL THEN
                   (j.keys_done OPERATOR(pg_catalog.-) j.rate_keys0)::pg_catalog.float8
                   OPERATOR(pg_catalog./) GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                       pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) j.rate_at0),
                       0.001::pg_catalog.float8) END AS keys_per_sec) jr
  -- a parallel job: its lanes' sums; the slowest lane's ETA (none while a
  -- lane cannot move: throttled, or waiting for a worker); which lanes wait
  LEFT JOIN LATERAL (
       SELECT pg_catalog.sum(l.rows_done)::pg_catalog.int8 AS rows_done,
              pg_catalog.sum(l.keys_done)::pg_catalog.int8 AS keys_done,
              pg_catalog.sum(l.chunks_done)::pg_catalog.int8 AS chunks_done,
              pg_catalog.sum(l.wal_bytes)::pg_catalog.int8 AS wal_bytes,
              pg_catalog.sum(l.retries)::pg_catalog.int4 AS retries,
              COALESCE(pg_catalog.sum(lr.rows_per_sec) FILTER (WHERE NOT l.done),
                       0::pg_catalog.float8) AS rows_per_sec,
              CASE WHEN NOT COALESCE(pg_catalog.bool_or(l.stalled_since IS NOT NULL
                                         OR lr.keys_per_sec IS NULL
                                         OR lr.keys_per_sec OPERATOR(pg_catalog.<=) 0::pg_catalog.float8)
                                     FILTER (WHERE NOT l.done), false)
                   THEN pg_catalog.max(GREATEST(l.keys_estimate OPERATOR(pg_catalog.-) l.keys_done,
                                                0::pg_catalog.int8)::pg_catalog.float8
                                       OPERATOR(pg_catalog./) lr.keys_per_sec)
                            FILTER (WHERE NOT l.done
                                      AND lr.keys_per_sec OPERATOR(pg_catalog.>) 0::pg_catalog.float8)
              END AS eta_secs,
              pg_catalog.sum(CASE WHEN l.done THEN l.rows_done
                                  WHEN l.keys_done OPERATOR(pg_catalog.>) 0::pg_catalog.int8
                                   AND l.keys_estimate OPERATOR(pg_catalog.>) 0::pg_catalog.int8
                                  THEN GREATEST(l.rows_done, pg_catalog.round(
                                       l.rows_done::pg_catalog.numeric
                                       OPERATOR(pg_catalog.*) l.keys_estimate::pg_catalog.numeric
                                       OPERATOR(pg_catalog./) l.keys_done::pg_catalog.numeric)::pg_catalog.int8)
                                  WHEN j.keys_total OPERATOR(pg_catalog.>) 0::pg_catalog.int8
                                   AND j.rows_total OPERATOR(pg_catalog.>=) 0::pg_catalog.int8
                                  THEN pg_catalog.round(j.rows_total::pg_catalog.numeric
                                       OPERATOR(pg_catalog.*) COALESCE(l.keys_estimate, 0::pg_catalog.int8)::pg_catalog.numeric
                                       OPERATOR(pg_catalog./) j.keys_total::pg_catalog.numeric)::pg_catalog.int8
                                  ELSE l.rows_done END)::pg_catalog.int8 AS rows_total,
              pg_catalog.max(l.throttled_ms::pg_catalog.float8 OPERATOR(pg_catalog./) 1000::pg_catalog.float8
                             OPERATOR(pg_catalog.+)
                             CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
                                   AND l.stalled_since IS NOT NULL
                                  THEN GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                                           pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) l.stalled_since),
                                           0::pg_catalog.float8)
                                  ELSE 0::pg_catalog.float8 END) AS throttled_secs,
              pg_catalog.string_agg(pg_catalog.concat('lane '::pg_catalog.text, l.lane,
                                                      ': '::pg_catalog.text, l.throttled),
                                    '; '::pg_catalog.text ORDER BY l.lane)
                  FILTER (WHERE l.throttled IS NOT NULL AND NOT l.done) AS throttled
         FROM @extschema@.mig_job_lane l
         CROSS JOIN LATERAL (
              SELECT CASE WHEN l.rate_at0 IS NOT NULL THEN
                          (l.rows_done OPERATOR(pg_catalog.-) l.rate_rows0)::pg_catalog.float8
                          OPERATOR(pg_catalog./) GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                              pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) l.rate_at0),
                              0.001::pg_catalog.float8) END AS rows_per_sec,
                     CASE WHEN l.rate_at0 IS NOT NULL THEN
                          (l.keys_done OPERATOR(pg_catalog.-) l.rate_keys0)::pg_catalog.float8
                          OPERATOR(pg_catalog./) GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                              pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) l.rate_at0),
                              0.001::pg_catalog.float8) END AS keys_per_sec) lr
        WHERE l.job_id OPERATOR(pg_catalog.=) j.job_id
          AND j.parallel OPERATOR(pg_catalog.>) 1::pg_catalog.int4
       HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0::pg_catalog.int8) ln ON true
  LEFT JOIN @extschema@.mig_worker_status() w
         ON w.job_id OPERATOR(pg_catalog.=) j.job_id
  -- the worker waiting for a lock (a step's statement, a wait for the
  -- transactions that hold the table or its rows): for whom, since when.
  -- A prepared transaction holds its locks with no pid (pg_blocking_pids
  -- says 0): it is named by its gid, found by the lock it holds on what the
  -- statement waits for in a mode that conflicts (the locks of one prepared
  -- transaction share the virtualtransaction of its transaction id's lock;
  -- one lock's object is its fields, those that are not null, in order)
  LEFT JOIN LATERAL (
       SELECT l.locktype, l.waitstart,
              pg_catalog.concat_ws(', '::pg_catalog.text,
                  (SELECT 'pid '::pg_catalog.text OPERATOR(pg_catalog.||)
                          pg_catalog.string_agg(b.pid::pg_catalog.text, ', '::pg_catalog.text ORDER BY b.n)
                     FROM pg_catalog.unnest(pg_catalog.pg_blocking_pids(w.pid)) WITH ORDINALITY b(pid, n)
                    WHERE b.pid OPERATOR(pg_catalog.<>) 0::pg_catalog.int4),
                  (SELECT pg_catalog.string_agg('prepared transaction '::pg_catalog.text OPERATOR(pg_catalog.||)
                                                pg_catalog.quote_literal(x.gid), ', '::pg_catalog.text
                                                ORDER BY x.prepared)
                     FROM pg_catalog.pg_prepared_xacts x
                    WHERE EXISTS (
                          SELECT
                            FROM pg_catalog.pg_locks t
                            JOIN pg_catalog.pg_locks h
                              ON h.virtualtransaction OPERATOR(pg_catalog.=) t.virtualtransaction
                           WHERE t.locktype OPERATOR(pg_catalog.=) 'transactionid'::pg_catalog.text
                             AND t.transactionid OPERATOR(pg_catalog.=) x.transaction
                             AND t.pid IS NULL
                             AND h.pid IS NULL
                             AND h.granted
                             AND pg_catalog.concat_ws('/'::pg_catalog.text, h.locktype, h.database, h.relation,
                                     h.page, h.tuple, h.virtualxid, h.transactionid, h.classid, h.objid,
                                     h.objsubid)
                                 OPERATOR(pg_catalog.=)
                                 pg_catalog.concat_ws('/'::pg_catalog.text, l.locktype, l.database, l.relation,
                                     l.page, l.tuple, l.virtualxid, l.transactionid, l.classid, l.objid,
                                     l.objsubid)
                             -- the modes that conflict with the one waited for (lock.c's table)
                             AND h.mode OPERATOR(pg_catalog.=) ANY (CASE l.mode
                                 WHEN 'AccessShareLock' THEN '{AccessExclusiveLock}'::pg_catalog.text[]
                                 WHEN 'RowShareLock' THEN '{ExclusiveLock,AccessExclusiveLock}'::pg_catalog.text[]
                                 WHEN 'RowExclusiveLock'
                                 THEN '{ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::pg_catalog.text[]
                                 WHEN 'ShareUpdateExclusiveLock'
                                 THEN '{ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::pg_catalog.text[]
                                 WHEN 'ShareLock'
                                 THEN '{RowExclusiveLock,ShareUpdateExclusiveLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::pg_catalog.text[]
                                 WHEN 'ShareRowExclusiveLock'
                                 THEN '{RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::pg_catalog.text[]
                                 WHEN 'ExclusiveLock'
                                 THEN '{RowShareLock,RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::pg_catalog.text[]
                                 ELSE '{AccessShareLock,RowShareLock,RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::pg_catalog.text[]
                                 END)))) AS blockers
         FROM pg_catalog.pg_locks l
        WHERE l.pid OPERATOR(pg_catalog.=) w.pid
          AND NOT l.granted
        LIMIT 1) lw ON j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
  LEFT JOIN pg_catalog.pg_stat_progress_create_index p
         ON j.kind OPERATOR(pg_catalog.=) 'index'::pg_catalog.text
        AND j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
        AND p.pid OPERATOR(pg_catalog.=) w.pid
  -- a repack's progress: PostgreSQL 19's pg_stat_progress_repack, read
  -- through the function under it (param2 the phase, param4 the rows read,
  -- param5 the rows written, param8 and param9 the pages to copy and copied,
  -- param10 the indexes built), since the view is not there before 19,
  -- where no repack job runs (the function is asked for VACUUM there)
  LEFT JOIN pg_catalog.pg_stat_get_progress_info(
            CASE WHEN pg_catalog.current_setting('server_version_num'::pg_catalog.text)::pg_catalog.int4
                      OPERATOR(pg_catalog.>=) 190000::pg_catalog.int4
                 THEN 'REPACK'::pg_catalog.text
                 ELSE 'VACUUM'::pg_catalog.text
            END) r
         ON j.kind OPERATOR(pg_catalog.=) 'repack'::pg_catalog.text
        AND j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
        AND r.pid OPERATOR(pg_catalog.=) w.pid;

COMMENT ON VIEW @extschema@.mig_jobs IS 'one row per pg_mig job, with its kind, step, progress, rate, ETA, throttle reason and job_key';

CREATE OR REPLACE VIEW @extschema@.mig_job_lanes AS
SELECT l.job_id,
       l.lane,
       CASE WHEN l.done THEN 'done'::pg_catalog.text
            WHEN j.state OPERATOR(pg_catalog.<>) 'running'::pg_catalog.text THEN j.state
            WHEN w.pid IS NULL THEN 'waiting for a worker'::pg_catalog.text
            ELSE 'running'::pg_catalog.text
       END AS state,
       l.rows_done,
       l.keys_done,
       l.keys_estimate,
       l.chunks_done,
       l.wal_bytes,
       l.current_batch AS batch_size,
       CASE WHEN NOT l.done AND j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
            THEN COALESCE((l.rows_done OPERATOR(pg_catalog.-) l.rate_rows0)::pg_catalog.float8
                          OPERATOR(pg_catalog./) GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                              pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) l.rate_at0),
                              0.001::pg_catalog.float8),
                          l.rows_per_sec) END AS rows_per_sec,
       CASE WHEN d.visible THEN l.throttled END AS throttled,
       l.retries,
       CASE WHEN d.visible THEN l.last_error END AS last_error,
       CASE WHEN d.visible THEN l.lower_key END AS lower_key,
       CASE WHEN d.visible THEN l.upper_key END AS upper_key,
       CASE WHEN d.visible THEN l.last_key END AS last_key,
       w.pid AS worker_pid,
       l.updated_at,
       CASE WHEN l.done THEN l.rows_done
            WHEN l.keys_done OPERATOR(pg_catalog.>) 0::pg_catalog.int8
             AND l.keys_estimate OPERATOR(pg_catalog.>) 0::pg_catalog.int8
            THEN GREATEST(l.rows_done, pg_catalog.round(
                 l.rows_done::pg_catalog.numeric OPERATOR(pg_catalog.*) l.keys_estimate::pg_catalog.numeric
                 OPERATOR(pg_catalog./) l.keys_done::pg_catalog.numeric)::pg_catalog.int8)
            WHEN j.keys_total OPERATOR(pg_catalog.>) 0::pg_catalog.int8
             AND j.rows_total OPERATOR(pg_catalog.>=) 0::pg_catalog.int8
            THEN pg_catalog.round(j.rows_total::pg_catalog.numeric
                 OPERATOR(pg_catalog.*) COALESCE(l.keys_estimate, 0::pg_catalog.int8)::pg_catalog.numeric
                 OPERATOR(pg_catalog./) j.keys_total::pg_catalog.numeric)::pg_catalog.int8
       END AS rows_total,
       l.throttled_ms::pg_catalog.float8 OPERATOR(pg_catalog./) 1000::pg_catalog.float8
       OPERATOR(pg_catalog.+)
       CASE WHEN NOT l.done AND j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
             AND l.stalled_since IS NOT NULL
            THEN GREATEST(pg_catalog.date_part('epoch'::pg_catalog.text,
                     pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) l.stalled_since),
                     0::pg_catalog.float8)
            ELSE 0::pg_catalog.float8 END AS throttled_seconds
  FROM @extschema@.mig_job_lane l
  JOIN @extschema@.mig_job j ON j.job_id OPERATOR(pg_catalog.=) l.job_id
  CROSS JOIN LATERAL (
       SELECT pg_catalog.pg_has_role(j.owner, 'USAGE'::pg_catalog.text)
           OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
                                     'USAGE'::pg_catalog.text)
           OR COALESCE((SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'::pg_catalog.text)
                          FROM pg_catalog.pg_class c
                         WHERE c.oid OPERATOR(pg_catalog.=) j.relid), false)
           AS visible) d
  LEFT JOIN @extschema@.mig_worker_lanes() w
         ON w.job_id OPERATOR(pg_catalog.=) l.job_id
        AND w.lane OPERATOR(pg_catalog.=) l.lane;

COMMENT ON VIEW @extschema@.mig_job_lanes IS 'one row per lane of a parallel pg_mig job: its state, progress, throttle reason and key range';

------------------------------------------------------------------------
-- Section 5: online column type change (issue 25): mig_change_type
------------------------------------------------------------------------

-- The kind change_type: a new column kept equal to using_expr by a
-- trigger, the rows walked, NOT NULL through a check, the indexes copied
-- concurrently, one short swap, the old column dropped with cleanup.
ALTER TABLE @extschema@.mig_job
    DROP CONSTRAINT mig_job_kind_check,
    ADD CONSTRAINT mig_job_kind_check
        CHECK (kind IN ('backfill', 'delete', 'not_null', 'foreign_key',
                        'validate', 'index', 'revert', 'repack',
                        'change_type'));

CREATE FUNCTION @extschema@.mig_change_type(
    relation            regclass,
    column_name         name,
    new_type            text,
    using_expr          text     DEFAULT NULL,
    cleanup             boolean  DEFAULT false,
    convert_referencing boolean  DEFAULT false,
    batch_size          integer  DEFAULT pg_catalog.current_setting('pg_mig.default_batch_size', true)::integer,
    chunk_time          interval DEFAULT pg_catalog.current_setting('pg_mig.default_chunk_time', true)::interval,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.pg_size_bytes(pg_catalog.regexp_replace(
                                     pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true),
                                     '([0-9])B$', '\1')),
    sleep               interval DEFAULT '0',
    lock_timeout        interval DEFAULT pg_catalog.current_setting('pg_mig.default_lock_timeout', true)::interval,
    max_retries         integer  DEFAULT pg_catalog.current_setting('pg_mig.default_max_retries', true)::integer,
    statement_timeout   interval DEFAULT pg_catalog.current_setting('pg_mig.default_statement_timeout', true)::interval,
    max_wal_rate        bigint   DEFAULT NULL,
    nice_ratio          double precision DEFAULT NULL,
    ignore_slots        text[]   DEFAULT NULL,
    run_window          text     DEFAULT NULL,
    throttle_query      text     DEFAULT NULL,
    max_active_sessions integer  DEFAULT NULL,
    max_xact_age        interval DEFAULT NULL,
    max_archive_backlog integer  DEFAULT NULL,
    throttle_on_autovacuum boolean DEFAULT false,
    parallel            integer  DEFAULT 1,
    vacuum_every        bigint   DEFAULT NULL,
    max_app_latency     interval DEFAULT NULL,
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_change_type'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_change_type(regclass, name, text, text, boolean, boolean, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, integer, bigint, interval, text)
IS 'starts a job that changes the type of a column without a rewrite under lock: a new column kept by a trigger, a chunked walk, NOT NULL through a check, the indexes copied concurrently, one short swap under lock_timeout, the old column dropped with cleanup; a job_key names the step, so that starting it again returns the job that has the key';

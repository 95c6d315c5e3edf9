/* sql/pg_mig.sql -- the install script of the current version of pg_mig
 *
 * The one maintained full script: make copies it to sql/pg_mig--$(EXTVERSION).sql
 * (the version of pg_mig.control), which CREATE EXTENSION pg_mig runs.  The
 * upgrade scripts sql/pg_mig--A--B.sql stay as they are, and the released
 * full script sql/pg_mig--0.1.sql too (CREATE EXTENSION ... VERSION '0.1').
 *
 * Every object is written here in its final form, where an upgrade script
 * adds, changes or drops it step by step: a column added by ALTER TABLE
 * comes at the end of its CREATE TABLE, in the order of the upgrades (a
 * column's position is part of the catalog); a function or view the
 * upgrades replace is here once, as the last upgrade leaves it; the grants
 * and comments are those of the last upgrade.  it_ops
 * (Ops.FreshInstallEqualsTheUpgradePath) compares the catalog after this
 * script with the one after CREATE EXTENSION pg_mig VERSION '0.1' and
 * ALTER EXTENSION pg_mig UPDATE, and prints every difference.
 *
 * Every object is schema-qualified with @extschema@ or pg_catalog;
 * operators in views and functions are written OPERATOR(pg_catalog.x).
 */

\echo Use "CREATE EXTENSION pg_mig" to load this file. \quit

/*
 * Internal tables.  Nobody but the extension's own C functions writes them:
 * every privilege is revoked from PUBLIC, and the C functions check the
 * rules (who may start, pause, resume, cancel or change which job) before
 * they write as the table owner.  Users read jobs through the views below.
 */

CREATE TABLE @extschema@.mig_job (
    job_id              bigserial PRIMARY KEY,
    relid               oid NOT NULL,
    relation_name       text NOT NULL,
    set_clause          text,               -- NULL for a delete
    where_clause        text,
    search_path         text NOT NULL,
    settings            text[] NOT NULL DEFAULT '{}',
    owner               oid NOT NULL,
    state               text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'paused',
                         'succeeded', 'failed', 'cancelled')),
    -- knobs (mig_set changes them while the job runs)
    batch_size          integer NOT NULL CHECK (batch_size > 0),
    chunk_time          interval,
    max_lag             interval,
    max_lag_bytes       bigint,
    sleep               interval NOT NULL DEFAULT '0',
    lock_timeout        interval NOT NULL,
    statement_timeout   interval NOT NULL,
    max_retries         integer NOT NULL CHECK (max_retries >= 0),
    max_wal_rate        bigint,
    nice_ratio          double precision,
    ignore_slots        text[],
    run_window          text,
    throttle_query      text,
    max_active_sessions integer,
    max_xact_age        interval,
    max_archive_backlog integer,
    throttle_on_autovacuum boolean NOT NULL DEFAULT false,
    -- checkpoint: committed in the same transaction as each chunk
    target_ord          integer NOT NULL DEFAULT 0,
    last_key            text[],
    rows_done           bigint NOT NULL DEFAULT 0,
    keys_done           bigint NOT NULL DEFAULT 0,
    chunks_done         bigint NOT NULL DEFAULT 0,
    wal_bytes           bigint NOT NULL DEFAULT 0,
    retries             integer NOT NULL DEFAULT 0,
    -- estimates and run-time figures
    rows_total          bigint,
    keys_total          bigint,
    current_batch       integer,
    rows_per_sec        double precision,
    keys_per_sec        double precision,
    throttled           text,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at          timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at         timestamptz,
    -- 0.3: what survives a dump: the owner's name next to its OID (the
    -- relation's qualified name is relation_name already); a worker
    -- refuses a job whose OIDs no longer match these names
    owner_name          name,
    -- 0.3: a job has a kind: a backfill or a delete walks its rows in
    -- chunks; the other kinds are a list of schema steps (DDL statements,
    -- each in its own transaction).  kind_args holds the arguments of the
    -- kind as "name=value" items (the column of a not_null job, the
    -- constraint of a validate job, the parts of an index, ...),
    -- steps_done the names of the steps that are done, and step what the
    -- job does now, in words.
    kind                text NOT NULL DEFAULT 'backfill'
        CHECK (kind IN ('backfill', 'delete', 'not_null', 'foreign_key',
                        'validate', 'index', 'revert', 'repack',
                        'change_type')),
    step                text,
    parallel            integer NOT NULL DEFAULT 1 CHECK (parallel >= 1),
    kind_args           text[] NOT NULL DEFAULT '{}',
    steps_done          text[] NOT NULL DEFAULT '{}',
    -- 0.3: the worker vacuums the table after about this many changed
    -- rows (0: never; resolved and stored at start, see vacuum.c)
    vacuum_every        bigint CHECK (vacuum_every >= 0),
    -- 0.4: starting again is safe.  job_key is the caller's name for "this
    -- step of this migration": a start with a key that a job of this
    -- database already holds starts nothing and returns that job, after
    -- checking that the kind, the table and the arguments that change what
    -- runs (start_args: "name=value" items, a bare "name" for NULL) are the
    -- same.  A job releases its key (job_key NULL) when it is forgotten or
    -- reverted.  start_args also lets a start without a key resume a failed
    -- job of the same kind and arguments on the table.
    job_key             text CHECK (pg_catalog.octet_length(job_key) OPERATOR(pg_catalog.<=) 1024),
    start_args          text[],
    max_app_latency     interval,
    throttled_ms        bigint NOT NULL DEFAULT 0,
    stalled_since       timestamptz,
    rate_at0            timestamptz,
    rate_rows0          bigint,
    rate_keys0          bigint,
    rate_at1            timestamptz,
    rate_rows1          bigint,
    rate_keys1          bigint
);

/*
 * At most one running or queued job per table; a paused or failed one
 * blocks a start as the start functions and mig_resume decide, under the
 * table tree's start lock (MigFindActiveJobOn).
 */
CREATE UNIQUE INDEX mig_job_one_active_per_table
    ON @extschema@.mig_job (relid)
    WHERE state IN ('queued', 'running');
CREATE UNIQUE INDEX mig_job_job_key ON @extschema@.mig_job (job_key)
    WHERE job_key IS NOT NULL;

/*
 * A job's targets: the table itself, or for a partitioned table each leaf
 * partition in turn.  The upper key of each target is fixed when the job
 * starts, so a job always terminates.
 */
CREATE TABLE @extschema@.mig_job_target (
    job_id          bigint NOT NULL
        REFERENCES @extschema@.mig_job ON DELETE CASCADE,
    ord             integer NOT NULL,
    relid           oid NOT NULL,
    relation_name   text NOT NULL,
    key_columns     text[] NOT NULL,
    upper_key       text[],
    keys_estimate   bigint,
    -- 0.3: the clauses as resolved at start for each target, every name
    -- qualified (NULL for a job of 0.2: its worker resolves them when it
    -- first starts)
    resolved_set_clause   text,
    resolved_where_clause text,
    PRIMARY KEY (job_id, ord)
);

CREATE TABLE @extschema@.mig_job_event (
    event_id        bigserial PRIMARY KEY,
    job_id          bigint NOT NULL
        REFERENCES @extschema@.mig_job ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    event           text NOT NULL,
    detail          text
);
CREATE INDEX ON @extschema@.mig_job_event (job_id, event_id);

/*
 * The lanes of a job started with parallel => n > 1: disjoint parts of the
 * fixed key range, each (lower_key, upper_key] walked by its own worker
 * with its own checkpoint, written in the same transaction as the lane's
 * chunk.  The job row stays the one row that job control acts on; the
 * lanes' rows hold what each lane has done.
 */
CREATE TABLE @extschema@.mig_job_lane (
    job_id          bigint NOT NULL
        REFERENCES @extschema@.mig_job ON DELETE CASCADE,
    lane            integer NOT NULL CHECK (lane >= 1),
    lower_key       text[],         -- exclusive; NULL: from the first key
    upper_key       text[],         -- inclusive; NULL: to the target's upper key
    keys_estimate   bigint,
    done            boolean NOT NULL DEFAULT false,
    last_key        text[],
    rows_done       bigint NOT NULL DEFAULT 0,
    keys_done       bigint NOT NULL DEFAULT 0,
    chunks_done     bigint NOT NULL DEFAULT 0,
    wal_bytes       bigint NOT NULL DEFAULT 0,
    retries         integer NOT NULL DEFAULT 0,
    current_batch   integer,
    rows_per_sec    double precision,
    keys_per_sec    double precision,
    throttled       text,
    last_error      text,
    updated_at      timestamptz,
    throttled_ms    bigint NOT NULL DEFAULT 0,
    stalled_since   timestamptz,
    rate_at0        timestamptz,
    rate_rows0      bigint,
    rate_keys0      bigint,
    rate_at1        timestamptz,
    rate_rows1      bigint,
    rate_keys1      bigint,
    PRIMARY KEY (job_id, lane)
);

/*
 * Only pg_mig's own code writes the job tables, whatever privileges a role
 * has (pg_write_all_data, a grant): the trigger mig_guard refuses every
 * other INSERT, UPDATE, DELETE and TRUNCATE (superusers excepted), and
 * row-level security with no policy is a second wall.
 */
CREATE FUNCTION @extschema@.mig_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'mig_guard' LANGUAGE C;
COMMENT ON FUNCTION @extschema@.mig_guard()
IS 'refuses changes to pg_mig''s job tables that do not come from pg_mig''s own functions';
REVOKE ALL ON FUNCTION @extschema@.mig_guard() FROM PUBLIC;

CREATE TRIGGER mig_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.mig_job
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.mig_guard();
CREATE TRIGGER mig_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.mig_job_target
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.mig_guard();
CREATE TRIGGER mig_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.mig_job_event
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.mig_guard();

CREATE TRIGGER mig_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.mig_job_lane
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.mig_guard();

ALTER TABLE @extschema@.mig_job ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mig_job_target ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mig_job_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mig_job_lane ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON @extschema@.mig_job, @extschema@.mig_job_target,
    @extschema@.mig_job_event, @extschema@.mig_job_lane FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.mig_job_job_id_seq,
    @extschema@.mig_job_event_event_id_seq FROM PUBLIC;

-- pg_dump dumps the jobs; a restored dump goes on numbering where the
-- dumped jobs left off
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_target', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_event', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_event_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_lane', '');

/*
 * Functions.  Argument defaults come from the pg_mig.default_* settings so
 * that a DBA can change them cluster-wide; an explicit NULL turns an
 * optional limit off.  pg_mig.default_max_lag_bytes is read through
 * pg_size_bytes: SHOW prints it in plain bytes, and a unit would do too
 * (pg_size_bytes does not know the unit 'B' in 15, hence the
 * regexp_replace).  The duration settings show as '50ms', '10s', '1min',
 * which ::interval reads.
 */

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

CREATE FUNCTION @extschema@.mig_pause(job_id bigint)
RETURNS void AS 'MODULE_PATHNAME', 'mig_pause' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_pause(bigint)
IS 'pauses a job after its current chunk';

CREATE FUNCTION @extschema@.mig_resume(job_id bigint)
RETURNS void AS 'MODULE_PATHNAME', 'mig_resume' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_resume(bigint)
IS 'resumes a paused or failed job from its checkpoint';

CREATE FUNCTION @extschema@.mig_cancel(job_id bigint)
RETURNS void AS 'MODULE_PATHNAME', 'mig_cancel' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_cancel(bigint)
IS 'cancels a job after its current chunk; committed chunks stay';

CREATE FUNCTION @extschema@.mig_wait(job_id bigint, timeout interval DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'mig_wait' LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_wait(bigint, interval)
IS 'waits until a job ends and returns its final state, or its current state on timeout';

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

CREATE FUNCTION @extschema@.mig_version()
RETURNS text AS 'MODULE_PATHNAME', 'mig_version' LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION @extschema@.mig_version()
IS 'version of the loaded pg_mig library';

CREATE FUNCTION @extschema@.mig_worker_status(
    OUT job_id bigint, OUT pid integer, OUT note text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mig_worker_status' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_worker_status()
IS 'jobs of this database that have a worker, or are waiting for one, with the reason';

CREATE FUNCTION @extschema@.mig_replicas(
    OUT kind text, OUT name text, OUT active boolean,
    OUT lag_bytes bigint, OUT replay_lag interval, OUT note text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mig_replicas' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_replicas()
IS 'the replicas pg_mig watches: streaming standbys and replication slots, with their lag';

CREATE FUNCTION @extschema@.mig_plan(
    relation      regclass,
    set_clause    text,
    where_clause  text     DEFAULT NULL,
    batch_size    integer  DEFAULT NULL,
    samples       integer  DEFAULT 0,
    lock_timeout  interval DEFAULT '1s',
    parallel      integer  DEFAULT 1,
    OUT kind text, OUT target text, OUT columns text[],
    OUT keys bigint, OUT rows bigint, OUT ms float8, OUT wal_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mig_plan' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_plan(regclass, text, text, integer, integer, interval, integer)
IS 'checks a backfill like mig_start_backfill without starting it; optionally measures sample chunks that are rolled back, and shows the lanes of parallel => n';

/*
 * Job kinds and schema steps: a delete walks its rows like a backfill; the
 * other kinds are schema steps, each a DDL statement in its own
 * transaction under lock_timeout, with retries.
 */
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

-- Undo.  A backfill started with keep_old_values keeps, in the
-- transaction of each chunk, the key and the old and new values of the
-- columns it assigns of every row it changes, in a table of pg_mig's
-- (@extschema@.mig_kept_<job_id>, created at start, owned like the job
-- tables, readable by the job's owner); mig_revert starts a job of kind
-- revert that writes the old values back where the rows still hold the
-- new ones; mig_forget drops the kept values.  mig_kept_guard is the
-- trigger on every kept table: only the job's worker writes it.
CREATE FUNCTION @extschema@.mig_kept_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'mig_kept_guard' LANGUAGE C;
COMMENT ON FUNCTION @extschema@.mig_kept_guard()
IS 'refuses changes to a table of kept values that do not come from the worker of its backfill';
REVOKE ALL ON FUNCTION @extschema@.mig_kept_guard() FROM PUBLIC;
-- the end of each such chunk: fails it (to be retried) if a row it read was
-- changed before its UPDATE reached it; run by the worker as the job's owner
CREATE FUNCTION @extschema@.mig_kept_check(kept bigint, read bigint) RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_kept_check' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_kept_check(bigint, bigint)
IS 'returns kept if it equals read, else raises a serialization failure (a chunk of a backfill with keep_old_values)';

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

CREATE FUNCTION @extschema@.mig_forget(job_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'mig_forget'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_forget(bigint)
IS 'forgets a finished job (succeeded, failed or cancelled): releases its job_key, stops a failed job from blocking its table, and drops the old values kept by a backfill';

CREATE FUNCTION @extschema@.mig_worker_lanes(
    OUT job_id bigint, OUT lane integer, OUT pid integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mig_worker_lanes' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_worker_lanes()
IS 'the lanes of this database''s parallel jobs that have a worker, with its pid';

/*
 * Views.  Every role sees every job, like pg_stat_activity; the details
 * (clauses, errors, throttle reason) only for jobs of roles it is a member
 * of, or when it is a member of pg_read_all_stats.
 */
-- Every operator is OPERATOR(pg_catalog.x) over operands cast to its exact
-- types, and every function is pg_catalog-qualified, so an operator or
-- function of the same name in the install schema (or anywhere on the
-- search_path of CREATE or ALTER EXTENSION) can neither be bound into the
-- views nor run as whoever reads them.  The details of a job (clauses,
-- errors, throttle reason, event details) are shown to roles that have the
-- privileges of its owner or of its table's owner, and to members of
-- pg_read_all_stats.  kind, step and parallel (section 2) come last, then
-- kept_bytes (section 3: the size of a backfill's kept values, NULL if none); an
-- index build's progress and phase come from pg_stat_progress_create_index,
-- a repack's from PostgreSQL 19's pg_stat_progress_repack.

-- Kept values live in a schema of pg_mig's own; a job finds its kept table
-- by the OID it stores (kind argument kept_relid), never by name.
CREATE SCHEMA mig_kept;
COMMENT ON SCHEMA mig_kept IS 'pg_mig''s tables of kept values (keep_old_values), one per backfill; see mig_revert, mig_forget';
REVOKE ALL ON SCHEMA mig_kept FROM PUBLIC;
GRANT USAGE ON SCHEMA mig_kept TO PUBLIC;

CREATE VIEW @extschema@.mig_jobs AS
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

CREATE VIEW @extschema@.mig_job_events AS
SELECT e.event_id, e.job_id, e.at, e.event,
       CASE WHEN pg_catalog.pg_has_role(j.owner, 'USAGE'::pg_catalog.text)
              OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
                                        'USAGE'::pg_catalog.text)
              OR COALESCE((SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'::pg_catalog.text)
                             FROM pg_catalog.pg_class c
                            WHERE c.oid OPERATOR(pg_catalog.=) j.relid), false)
            THEN e.detail END AS detail
  FROM @extschema@.mig_job_event e
  JOIN @extschema@.mig_job j ON j.job_id OPERATOR(pg_catalog.=) e.job_id;

COMMENT ON VIEW @extschema@.mig_job_events IS 'the history of every pg_mig job: started, paused, resumed, throttled, unthrottled, retried, failed, cancelled, succeeded';

GRANT SELECT ON @extschema@.mig_jobs, @extschema@.mig_job_events TO PUBLIC;

-- The lanes of parallel jobs, one row per lane, visible like mig_jobs.
CREATE VIEW @extschema@.mig_job_lanes AS
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
GRANT SELECT ON @extschema@.mig_job_lanes TO PUBLIC;

------------------------------------------------------------------------
-- 0.4, in the sections of sql/pg_mig--0.3--0.4.sql: what that script
-- adds, in its final form (a view it rebuilds: the CREATE VIEW above
-- becomes its definition)
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 1: recovery (issue 21): job keys, retries of failed jobs
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 2: security, round two (issue 22)
------------------------------------------------------------------------


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

------------------------------------------------------------------------
-- Section 5: online column type change (issue 25): mig_change_type
------------------------------------------------------------------------

-- The kind change_type: a new column kept equal to using_expr by a
-- trigger, the rows walked, NOT NULL through a check, the indexes copied
-- concurrently, one short swap, the old column dropped with cleanup.
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

/* sql/pg_mig--0.1.sql -- install script of pg_mig 0.1 */

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
    set_clause          text NOT NULL,
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
    finished_at         timestamptz
);

/* At most one unfinished job per table: a second start is refused. */
CREATE UNIQUE INDEX mig_job_one_active_per_table
    ON @extschema@.mig_job (relid)
    WHERE state IN ('queued', 'running', 'paused', 'failed');

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

REVOKE ALL ON @extschema@.mig_job, @extschema@.mig_job_target,
    @extschema@.mig_job_event FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.mig_job_job_id_seq,
    @extschema@.mig_job_event_event_id_seq FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_target', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_event', '');

/*
 * Functions.  Argument defaults come from the pg_mig.default_* settings so
 * that a DBA can change them cluster-wide; an explicit NULL turns an
 * optional limit off.
 */

CREATE FUNCTION @extschema@.mig_start_backfill(
    relation            regclass,
    set_clause          text,
    where_clause        text     DEFAULT NULL,
    batch_size          integer  DEFAULT pg_catalog.current_setting('pg_mig.default_batch_size', true)::integer,
    chunk_time          interval DEFAULT pg_catalog.current_setting('pg_mig.default_chunk_time', true)::interval,
    max_lag             interval DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag', true)::interval,
    max_lag_bytes       bigint   DEFAULT pg_catalog.current_setting('pg_mig.default_max_lag_bytes', true)::bigint,
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
    throttle_on_autovacuum boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_backfill'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION @extschema@.mig_start_backfill(regclass, text, text, integer,
    interval, interval, bigint, interval, interval, integer, interval, bigint,
    double precision, text[], text, text, integer, interval, integer, boolean)
IS 'starts a chunked backfill of a table in a background worker; returns the job id';

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
    throttle_on_autovacuum boolean DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'mig_set' LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_set(bigint, integer, interval, interval, bigint,
    interval, interval, integer, interval, bigint, double precision, text[], text,
    text, integer, interval, integer, boolean)
IS 'changes the knobs of a job while it runs; NULL leaves a knob as it is, 0 (or an empty string) turns an optional limit off';

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

/*
 * Views.  Every role sees every job, like pg_stat_activity; the details
 * (clauses, errors, throttle reason) only for jobs of roles it is a member
 * of, or when it is a member of pg_read_all_stats.
 */

CREATE VIEW @extschema@.mig_jobs AS
SELECT j.job_id,
       j.relid::pg_catalog.regclass AS relation,
       j.state,
       j.rows_done,
       j.rows_total,
       CASE WHEN j.state = 'succeeded' THEN 1.0::float8
            WHEN j.keys_total IS NULL OR j.keys_total <= 0 THEN NULL
            ELSE LEAST(j.keys_done::float8 / j.keys_total, 1.0::float8)
       END AS progress,
       CASE WHEN j.state = 'running' THEN j.rows_per_sec END AS rows_per_sec,
       CASE WHEN j.state = 'running' AND j.keys_per_sec > 0 AND j.keys_total IS NOT NULL
            THEN pg_catalog.make_interval(secs =>
                 pg_catalog.round((GREATEST(j.keys_total - j.keys_done, 0) / j.keys_per_sec)::numeric, 1)::float8)
       END AS eta,
       COALESCE(j.current_batch, j.batch_size) AS batch_size,
       CASE WHEN d.visible THEN
            COALESCE(j.throttled,
                     CASE WHEN j.state IN ('queued', 'running') THEN w.note END)
       END AS throttled,
       CASE WHEN d.visible THEN j.last_error END AS last_error,
       pg_catalog.pg_get_userbyid(j.owner) AS owner,
       j.started_at,
       j.updated_at,
       j.finished_at,
       j.created_at,
       CASE WHEN d.visible THEN j.set_clause END AS set_clause,
       CASE WHEN d.visible THEN j.where_clause END AS where_clause,
       j.keys_done,
       j.keys_total,
       j.chunks_done,
       j.wal_bytes,
       j.retries,
       w.pid AS worker_pid,
       j.chunk_time,
       j.max_lag,
       j.max_lag_bytes,
       j.sleep,
       j.lock_timeout,
       j.max_retries
  FROM @extschema@.mig_job j
  CROSS JOIN LATERAL (SELECT pg_catalog.pg_has_role(j.owner, 'USAGE')
                          OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
                          AS visible) d
  LEFT JOIN @extschema@.mig_worker_status() w ON w.job_id = j.job_id;

COMMENT ON VIEW @extschema@.mig_jobs IS 'one row per pg_mig job, with progress, rate, ETA and throttle reason';

CREATE VIEW @extschema@.mig_job_events AS
SELECT e.event_id, e.job_id, e.at, e.event,
       CASE WHEN pg_catalog.pg_has_role(j.owner, 'USAGE')
              OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
            THEN e.detail END AS detail
  FROM @extschema@.mig_job_event e
  JOIN @extschema@.mig_job j USING (job_id);

COMMENT ON VIEW @extschema@.mig_job_events IS 'the history of every pg_mig job: started, paused, resumed, throttled, unthrottled, retried, failed, cancelled, succeeded';

GRANT SELECT ON @extschema@.mig_jobs, @extschema@.mig_job_events TO PUBLIC;

/* sql/pg_mig--0.3--0.4.sql -- pg_mig 0.4: safe retries, security round two, new kinds */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.4'" to load this file. \quit

-- Every object below is schema-qualified with @extschema@ or pg_catalog;
-- operators in views and functions are written OPERATOR(pg_catalog.x).

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
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_backfill'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_start_backfill(regclass, text, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, boolean, integer, bigint, text)
IS 'starts a chunked backfill (UPDATE) in background workers (parallel lanes), keeping the old values with keep_old_values; returns the job id; a job_key names the step, so that starting it again returns the job that has the key';

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
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_delete'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_start_delete(regclass, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, integer, bigint, text)
IS 'starts a chunked DELETE of the rows matching where_clause in background workers (parallel lanes); returns the job id; a job_key names the step, so that starting it again returns the job that has the key';

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
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_add_foreign_key'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_add_foreign_key(regclass, name[], regclass, name[], name, text, text, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, text)
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
    job_key             text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_revert'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_revert(bigint, integer, interval, interval, bigint, interval, interval, integer, interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean, bigint, text)
IS 'starts a job (kind revert) that writes the old values kept by backfill job_id back, chunk by chunk; returns its id; a job_key names the step, so that starting it again returns the job that has the key';

COMMENT ON FUNCTION @extschema@.mig_forget(bigint)
IS 'forgets a finished job (succeeded, failed or cancelled): releases its job_key, stops a failed job from blocking its table, and drops the old values kept by a backfill';

-- (end of section 1)

------------------------------------------------------------------------
-- Section 2: security, round two (issue 22)
------------------------------------------------------------------------

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

------------------------------------------------------------------------
-- Section 5: the job views, rebuilt last over everything above
------------------------------------------------------------------------

-- mig_jobs (recovery, issue 21): job_key is appended; step says, while a
-- schema step's statement waits for a lock (CREATE INDEX CONCURRENTLY
-- waiting out older snapshots, or a lock held by another session), which
-- pids it waits for and since when.
CREATE OR REPLACE VIEW @extschema@.mig_jobs AS
SELECT j.job_id,
       j.relid::pg_catalog.regclass AS relation,
       j.state,
       COALESCE(ln.rows_done, j.rows_done) AS rows_done,
       j.rows_total,
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
            WHEN j.keys_total IS NULL
              OR j.keys_total OPERATOR(pg_catalog.<=) 0::pg_catalog.int8 THEN NULL
            ELSE LEAST(COALESCE(ln.keys_done, j.keys_done)::pg_catalog.float8
                       OPERATOR(pg_catalog./) j.keys_total::pg_catalog.float8,
                       1.0::pg_catalog.float8)
       END AS progress,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
            THEN COALESCE(ln.rows_per_sec, j.rows_per_sec) END AS rows_per_sec,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
             AND ln.eta_secs IS NOT NULL
            THEN pg_catalog.make_interval(secs => pg_catalog.round(
                 ln.eta_secs::pg_catalog.numeric, 1::pg_catalog.int4)::pg_catalog.float8)
            WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
             AND j.parallel OPERATOR(pg_catalog.=) 1::pg_catalog.int4
             AND j.keys_per_sec OPERATOR(pg_catalog.>) 0::pg_catalog.float8
             AND j.keys_total IS NOT NULL
            THEN pg_catalog.make_interval(secs => pg_catalog.round(
                 (GREATEST(j.keys_total OPERATOR(pg_catalog.-) j.keys_done,
                           0::pg_catalog.int8)::pg_catalog.float8
                  OPERATOR(pg_catalog./) j.keys_per_sec)::pg_catalog.numeric,
                 1::pg_catalog.int4)::pg_catalog.float8)
       END AS eta,
       COALESCE(j.current_batch, j.batch_size) AS batch_size,
       CASE WHEN d.visible THEN
            COALESCE(j.throttled, ln.throttled,
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
            ELSE j.step
       END
       OPERATOR(pg_catalog.||) CASE WHEN j.step IS NOT NULL
                 AND pg_catalog.cardinality(lw.blockers) OPERATOR(pg_catalog.>) 0::pg_catalog.int4
            THEN pg_catalog.concat('; waits for pid '::pg_catalog.text,
                                   pg_catalog.array_to_string(lw.blockers, ', '::pg_catalog.text),
                                   ' ('::pg_catalog.text, lw.locktype, ' lock) since '::pg_catalog.text,
                                   lw.waitstart)
            ELSE ''::pg_catalog.text
       END AS step,
       j.parallel,
       (SELECT pg_catalog.pg_total_relation_size(c.oid)
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
           AND c.relname OPERATOR(pg_catalog.=)
               pg_catalog.concat('mig_kept_'::pg_catalog.text, j.job_id)::pg_catalog.name
       ) AS kept_bytes,
       j.job_key
  FROM @extschema@.mig_job j
  CROSS JOIN LATERAL (
       SELECT pg_catalog.pg_has_role(j.owner, 'USAGE'::pg_catalog.text)
           OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
                                     'USAGE'::pg_catalog.text)
           OR COALESCE((SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'::pg_catalog.text)
                          FROM pg_catalog.pg_class c
                         WHERE c.oid OPERATOR(pg_catalog.=) j.relid), false)
           AS visible) d
  -- a parallel job: its lanes' sums; the slowest lane's ETA; which lanes wait
  LEFT JOIN LATERAL (
       SELECT pg_catalog.sum(l.rows_done)::pg_catalog.int8 AS rows_done,
              pg_catalog.sum(l.keys_done)::pg_catalog.int8 AS keys_done,
              pg_catalog.sum(l.chunks_done)::pg_catalog.int8 AS chunks_done,
              pg_catalog.sum(l.wal_bytes)::pg_catalog.int8 AS wal_bytes,
              pg_catalog.sum(l.retries)::pg_catalog.int4 AS retries,
              COALESCE(pg_catalog.sum(l.rows_per_sec) FILTER (WHERE NOT l.done),
                       0::pg_catalog.float8) AS rows_per_sec,
              pg_catalog.max(GREATEST(l.keys_estimate OPERATOR(pg_catalog.-) l.keys_done,
                                      0::pg_catalog.int8)::pg_catalog.float8
                             OPERATOR(pg_catalog./) l.keys_per_sec)
                  FILTER (WHERE NOT l.done
                            AND l.keys_per_sec OPERATOR(pg_catalog.>) 0::pg_catalog.float8)
                  AS eta_secs,
              pg_catalog.string_agg(pg_catalog.concat('lane '::pg_catalog.text, l.lane,
                                                      ': '::pg_catalog.text, l.throttled),
                                    '; '::pg_catalog.text ORDER BY l.lane)
                  FILTER (WHERE l.throttled IS NOT NULL AND NOT l.done) AS throttled
         FROM @extschema@.mig_job_lane l
        WHERE l.job_id OPERATOR(pg_catalog.=) j.job_id
          AND j.parallel OPERATOR(pg_catalog.>) 1::pg_catalog.int4
       HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0::pg_catalog.int8) ln ON true
  LEFT JOIN @extschema@.mig_worker_status() w
         ON w.job_id OPERATOR(pg_catalog.=) j.job_id
  -- a schema step's statement waiting for a lock: for whom, since when
  LEFT JOIN LATERAL (
       SELECT l.locktype, l.waitstart,
              pg_catalog.pg_blocking_pids(w.pid) AS blockers
         FROM pg_catalog.pg_locks l
        WHERE l.pid OPERATOR(pg_catalog.=) w.pid
          AND NOT l.granted
        LIMIT 1) lw ON j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
  LEFT JOIN pg_catalog.pg_stat_progress_create_index p
         ON j.kind OPERATOR(pg_catalog.=) 'index'::pg_catalog.text
        AND j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
        AND p.pid OPERATOR(pg_catalog.=) w.pid;

COMMENT ON VIEW @extschema@.mig_jobs IS 'one row per pg_mig job, with its kind, step, progress, rate, ETA, throttle reason and job_key';

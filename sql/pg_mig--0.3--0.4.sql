/* sql/pg_mig--0.3--0.4.sql -- pg_mig 0.4: safe retries, security round two, new kinds */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.4'" to load this file. \quit

-- Every object below is schema-qualified with @extschema@ or pg_catalog;
-- operators in views and functions are written OPERATOR(pg_catalog.x).

------------------------------------------------------------------------
-- Section 1: recovery (issue 21): job keys, retries of failed jobs
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 2: security, round two (issue 22)
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 3: PostgreSQL 19 (issue 24): mig_repack
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 4: monitoring (issue 27) and pacing (issue 28)
------------------------------------------------------------------------

-- Pacing (issue 28).  max_app_latency: while the statements that client
-- sessions of the job's database are running have been running longer
-- than this (sampled from shared memory, see docs), the job slows down,
-- down to a stop.  A knob of every walking kind and of mig_set, stored in
-- mig_job.max_app_latency, appended as the last knob argument.
ALTER TABLE @extschema@.mig_job ADD COLUMN max_app_latency interval;

DROP FUNCTION @extschema@.mig_start_backfill(regclass, text, text, integer,
    interval, interval, bigint, interval, interval, integer, interval, bigint,
    double precision, text[], text, text, integer, interval, integer, boolean, boolean,
    integer, bigint);
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
    max_app_latency     interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_backfill'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_start_backfill(regclass, text, text, integer,
    interval, interval, bigint, interval, interval, integer, interval, bigint,
    double precision, text[], text, text, integer, interval, integer, boolean, boolean,
    integer, bigint,
    interval)
IS 'starts a chunked backfill (UPDATE) in background workers (parallel lanes), keeping the old values with keep_old_values, paced to the lag budget and max_app_latency; returns the job id';

DROP FUNCTION @extschema@.mig_start_delete(regclass, text, integer,
    interval, interval, bigint, interval, interval, integer, interval, bigint,
    double precision, text[], text, text, integer, interval, integer, boolean,
    integer, bigint);
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
    max_app_latency     interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_delete'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_start_delete(regclass, text, integer,
    interval, interval, bigint, interval, interval, integer, interval, bigint,
    double precision, text[], text, text, integer, interval, integer, boolean,
    integer, bigint,
    interval)
IS 'starts a chunked DELETE of the rows matching where_clause in background workers (parallel lanes), paced to the lag budget and max_app_latency; returns the job id';

DROP FUNCTION @extschema@.mig_add_foreign_key(regclass, name[], regclass, name[],
    name, text, text, integer, interval, interval, bigint, interval, interval, integer,
    interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean);
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
    max_app_latency     interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_add_foreign_key'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_add_foreign_key(regclass, name[], regclass, name[],
    name, text, text, integer, interval, interval, bigint, interval, interval, integer,
    interval, bigint, double precision, text[], text, text, integer, interval, integer, boolean,
    interval)
IS 'starts a job that adds a foreign key NOT VALID, handles the orphan rows chunk by chunk (paced to the lag budget and max_app_latency), then validates it';

DROP FUNCTION @extschema@.mig_revert(bigint, integer,
    interval, interval, bigint, interval, interval, integer, interval, bigint,
    double precision, text[], text, text, integer, interval, integer, boolean, bigint);
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
    max_app_latency     interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_revert'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_revert(bigint, integer,
    interval, interval, bigint, interval, interval, integer, interval, bigint,
    double precision, text[], text, text, integer, interval, integer, boolean, bigint,
    interval)
IS 'starts a job (kind revert) that writes the old values kept by backfill job_id back, chunk by chunk, paced to the lag budget and max_app_latency; returns its id';

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

------------------------------------------------------------------------
-- Section 5: the job views, rebuilt last over everything above
------------------------------------------------------------------------

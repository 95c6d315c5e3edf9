/* sql/pg_mig--0.2--0.3.sql -- pg_mig 0.3: hardening, job kinds, undo, lanes */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.3'" to load this file. \quit

-- Every object below is schema-qualified with @extschema@ or pg_catalog;
-- operators in views and functions are written OPERATOR(pg_catalog.x).

------------------------------------------------------------------------
-- Section 1: hardening (issue 11): guarded job tables, grants, limits
------------------------------------------------------------------------

-- rob2: limits and settings with units (issue 11, items 11 and 20).
-- pg_mig.default_max_lag_bytes is an integer setting in bytes now, shown
-- with a unit ('64MB', '1000B'): the default of max_lag_bytes reads it
-- through pg_size_bytes (which does not know the unit 'B' in 15).  The
-- duration settings show as '50ms', '10s', '1min', which ::interval reads.
CREATE OR REPLACE FUNCTION @extschema@.mig_start_backfill(
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
    throttle_on_autovacuum boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mig_start_backfill'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- (end of section 1)

------------------------------------------------------------------------
-- Section 2: job kinds and schema steps (issue 13)
------------------------------------------------------------------------

-- (end of section 2)

------------------------------------------------------------------------
-- Section 3: undo and parallel lanes (issues 14, 15)
------------------------------------------------------------------------

-- (end of section 3)

------------------------------------------------------------------------
-- Section 4: the job view, rebuilt last over everything above
------------------------------------------------------------------------

-- (end of section 4)

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

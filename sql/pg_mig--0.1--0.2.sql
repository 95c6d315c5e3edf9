/* sql/pg_mig--0.1--0.2.sql -- pg_mig 0.2: mig_plan, the dry run of a backfill */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.2'" to load this file. \quit

CREATE FUNCTION @extschema@.mig_plan(
    relation      regclass,
    set_clause    text,
    where_clause  text     DEFAULT NULL,
    batch_size    integer  DEFAULT NULL,
    samples       integer  DEFAULT 0,
    lock_timeout  interval DEFAULT '1s',
    OUT kind text, OUT target text, OUT columns text[],
    OUT keys bigint, OUT rows bigint, OUT ms float8, OUT wal_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mig_plan' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.mig_plan(regclass, text, text, integer, integer, interval)
IS 'checks a backfill like mig_start_backfill without starting it; optionally measures sample chunks that are rolled back';

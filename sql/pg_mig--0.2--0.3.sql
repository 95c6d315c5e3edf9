/* sql/pg_mig--0.2--0.3.sql -- pg_mig 0.3: hardening, job kinds, undo, lanes */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.3'" to load this file. \quit

-- Every object below is schema-qualified with @extschema@ or pg_catalog;
-- operators in views and functions are written OPERATOR(pg_catalog.x).

------------------------------------------------------------------------
-- Section 1: hardening (issue 11): guarded job tables, grants, limits
------------------------------------------------------------------------

-- What survives a dump: the owner's name next to its OID (the relation's
-- qualified name is relation_name already).  A worker refuses a job whose
-- OIDs no longer match these names.
ALTER TABLE @extschema@.mig_job ADD COLUMN owner_name name;
UPDATE @extschema@.mig_job SET owner_name = pg_catalog.pg_get_userbyid(owner);

-- The clauses as resolved at start for each target, every name qualified
-- (NULL for a job of 0.2: its worker resolves them when it first starts).
ALTER TABLE @extschema@.mig_job_target
    ADD COLUMN resolved_set_clause text,
    ADD COLUMN resolved_where_clause text;

-- Only pg_mig's own code writes the job tables, whatever privileges a role
-- has (pg_write_all_data, a grant): the trigger refuses every other
-- INSERT, UPDATE, DELETE and TRUNCATE (superusers excepted), and row-level
-- security with no policy is a second wall.
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

ALTER TABLE @extschema@.mig_job ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mig_job_target ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mig_job_event ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON @extschema@.mig_job, @extschema@.mig_job_target,
    @extschema@.mig_job_event FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.mig_job_job_id_seq,
    @extschema@.mig_job_event_event_id_seq FROM PUBLIC;
-- a restored dump goes on numbering where the dumped jobs left off
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mig_job_event_event_id_seq', '');

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

-- Every operator is OPERATOR(pg_catalog.x) over operands cast to its exact
-- types, and every function is pg_catalog-qualified, so an operator or
-- function of the same name in the install schema (or anywhere on the
-- search_path of CREATE or ALTER EXTENSION) can neither be bound into the
-- views nor run as whoever reads them.  The details of a job (clauses,
-- errors, throttle reason, event details) are shown to roles that have the
-- privileges of its owner or of its table's owner, and to members of
-- pg_read_all_stats.

DROP VIEW @extschema@.mig_jobs;
CREATE VIEW @extschema@.mig_jobs AS
SELECT j.job_id,
       j.relid::pg_catalog.regclass AS relation,
       j.state,
       j.rows_done,
       j.rows_total,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'succeeded'::pg_catalog.text
            THEN 1.0::pg_catalog.float8
            WHEN j.keys_total IS NULL
              OR j.keys_total OPERATOR(pg_catalog.<=) 0::pg_catalog.int8 THEN NULL
            ELSE LEAST(j.keys_done::pg_catalog.float8
                       OPERATOR(pg_catalog./) j.keys_total::pg_catalog.float8,
                       1.0::pg_catalog.float8)
       END AS progress,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
            THEN j.rows_per_sec END AS rows_per_sec,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
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
            COALESCE(j.throttled,
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
  CROSS JOIN LATERAL (
       SELECT pg_catalog.pg_has_role(j.owner, 'USAGE'::pg_catalog.text)
           OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
                                     'USAGE'::pg_catalog.text)
           OR COALESCE((SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'::pg_catalog.text)
                          FROM pg_catalog.pg_class c
                         WHERE c.oid OPERATOR(pg_catalog.=) j.relid), false)
           AS visible) d
  LEFT JOIN @extschema@.mig_worker_status() w
         ON w.job_id OPERATOR(pg_catalog.=) j.job_id;

COMMENT ON VIEW @extschema@.mig_jobs IS 'one row per pg_mig job, with progress, rate, ETA and throttle reason';

DROP VIEW @extschema@.mig_job_events;
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

-- (end of section 4)

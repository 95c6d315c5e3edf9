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

------------------------------------------------------------------------
-- Section 4: monitoring (issue 27) and pacing (issue 28)
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 5: the job views, rebuilt last over everything above
------------------------------------------------------------------------

-- (section 2, security) kept_bytes: the size of the kept table whose OID
-- the job stores, in schema mig_kept (0.3 looked the table up by name in
-- the install schema).  The rest is 0.3's definition.
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
       ) AS kept_bytes
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
  LEFT JOIN pg_catalog.pg_stat_progress_create_index p
         ON j.kind OPERATOR(pg_catalog.=) 'index'::pg_catalog.text
        AND j.state OPERATOR(pg_catalog.=) 'running'::pg_catalog.text
        AND p.pid OPERATOR(pg_catalog.=) w.pid;

COMMENT ON VIEW @extschema@.mig_jobs IS 'one row per pg_mig job, with its kind, step, progress, rate, ETA and throttle reason';

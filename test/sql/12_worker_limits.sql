-- 12_worker_limits: the per-role worker limit (issue 11, item 8).
-- Default: half of pg_mig.max_workers (4 here), at least 1; a SIGHUP
-- setting, so a session cannot raise it for its own jobs.
SHOW pg_mig.max_workers;
SHOW pg_mig.max_workers_per_role;
SELECT name, setting, boot_val, context, min_val, max_val
  FROM pg_settings WHERE name = 'pg_mig.max_workers_per_role';
SET pg_mig.max_workers_per_role = 4;
ALTER ROLE CURRENT_USER SET pg_mig.max_workers_per_role = 4;

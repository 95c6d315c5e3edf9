-- mig_replicas() names replicas and their positions only to superusers and
-- pg_monitor (0.3 hardening, item 12).  A slot of the test's own makes at
-- least one replica on any server (the sandbox also has its standby and
-- its slot standby1; a temporary instance has none: 14_replica_privileges_1.out).
CREATE EXTENSION IF NOT EXISTS pg_mig;
SELECT 1 FROM pg_create_physical_replication_slot('regress_rp_slot', true);
CREATE ROLE regress_mig_rp_owner LOGIN;
SET ROLE regress_mig_rp_owner;
SELECT kind, name, lag_bytes, replay_lag, note FROM mig_replicas() ORDER BY kind;
RESET ROLE;
GRANT pg_monitor TO regress_mig_rp_owner;
SET ROLE regress_mig_rp_owner;
SELECT kind, name IS NOT NULL AS named, lag_bytes IS NOT NULL AS positioned
  FROM mig_replicas() ORDER BY kind;
RESET ROLE;
SELECT pg_drop_replication_slot('regress_rp_slot');
DROP ROLE regress_mig_rp_owner;

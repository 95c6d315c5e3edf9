/*-------------------------------------------------------------------------
 *
 * version_compat.h
 *	  The one place for differences between PostgreSQL major versions.
 *
 *	  pg_mig is built and tested against PostgreSQL 15, 17, 18 and 19
 *	  (scripts/test.sh --pg 15|17|18|19|all). 16 compiles through the same
 *	  code paths as 17 where the APIs changed in 16, but no test runs on
 *	  it. Older releases are refused below: the code relies on 15's
 *	  shmem_request_hook, InitMaterializedSRF, pg_prng and
 *	  MarkGUCPrefixReserved.
 *
 *	  Every version-dependent spot of extension/src goes through a macro
 *	  here; the .c files do not test PG_VERSION_NUM themselves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_VERSION_COMPAT_H
#define PG_MIG_VERSION_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "pg_mig needs PostgreSQL 15 or later"
#endif

/*
 * The library's magic block (pg_mig.c): from 18 on it also carries pg_mig's
 * name and version, which pg_get_loaded_modules() shows.  Needs pg_mig.h.
 */
#if PG_VERSION_NUM >= 180000
#define MIG_MODULE_MAGIC \
	PG_MODULE_MAGIC_EXT(.name = PG_MIG_EXTENSION_NAME, .version = PG_MIG_VERSION)
#else
#define MIG_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/*
 * PostgreSQL 17 lets a background worker connect as a NOLOGIN role.  pg_mig
 * refuses such an owner itself (guard.c), on every version; the flag only
 * lets the worker connect and record that in the job instead of dying.
 */
#if PG_VERSION_NUM >= 170000
#define MIG_BGWORKER_CONNECT_FLAGS BGWORKER_BYPASS_ROLELOGINCHECK
#else
#define MIG_BGWORKER_CONNECT_FLAGS 0
#endif

/*
 * Is this process a background worker?  PostgreSQL 17 asks
 * AmBackgroundWorkerProcess() (and 18 has no IsBackgroundWorker any more);
 * before 17, the flag IsBackgroundWorker.
 */
#if PG_VERSION_NUM < 170000
#define AmBackgroundWorkerProcess() (IsBackgroundWorker)
#endif

/*
 * May member SET ROLE to role?  PostgreSQL 16 made that a property of the
 * grant (GRANT ... WITH SET FALSE); before, every member may.
 */
#if PG_VERSION_NUM >= 160000
#define MigCanSetRole(member, role) member_can_set_role((member), (role))
#else
#define MigCanSetRole(member, role) is_member_of_role((member), (role))
#endif

/* parse analysis of a raw statement without parameters (15's name) */
#define MigParseAnalyze(raw, sql) parse_analyze_fixedparams((raw), (sql), NULL, 0, NULL)

/* 16 gave stringToQualifiedNameList an escontext argument (NULL: throw) */
#if PG_VERSION_NUM >= 160000
#define MigStringToQualifiedNameList(string) \
	stringToQualifiedNameList((string), NULL)
#else
#define MigStringToQualifiedNameList(string) \
	stringToQualifiedNameList(string)
#endif

/*
 * 16 renamed pgstat_fetch_stat_local_beentry (by index into the local
 * snapshot, 1 .. pgstat_fetch_stat_numbackends()) to
 * pgstat_get_local_beentry_by_index.
 */
#if PG_VERSION_NUM >= 160000
#define MigLocalBackendStatus(index) pgstat_get_local_beentry_by_index(index)
#else
#define MigLocalBackendStatus(index) pgstat_fetch_stat_local_beentry(index)
#endif

/* 16 renamed the transaction counts of a database's statistics entry */
#if PG_VERSION_NUM >= 160000
#define MigDatabaseXacts(db) ((db)->xact_commit + (db)->xact_rollback)
#else
#define MigDatabaseXacts(db) ((db)->n_xact_commit + (db)->n_xact_rollback)
#endif

/* 18 replaced returningList by a ReturningClause (Insert/Update/Delete/MergeStmt) */
#if PG_VERSION_NUM >= 180000
#define MigHasReturning(stmt) ((stmt)->returningClause != NULL)
#else
#define MigHasReturning(stmt) ((stmt)->returningList != NIL)
#endif

/* parse analysis and rewrite of a raw statement without parameters (steps.c; 15's name) */
#define MigAnalyzeAndRewrite(parsetree, sql) \
	pg_analyze_and_rewrite_fixedparams((parsetree), (sql), NULL, 0, NULL)

/* PortalRun of a top-level statement; 18 dropped the run_once argument */
#if PG_VERSION_NUM >= 180000
#define MigPortalRun(portal, dest, qc) \
	PortalRun((portal), FETCH_ALL, true, (dest), (dest), (qc))
#else
#define MigPortalRun(portal, dest, qc) \
	PortalRun((portal), FETCH_ALL, true, true, (dest), (dest), (qc))
#endif

/*
 * ALTER TABLE ... ENABLE/DISABLE TRIGGER on a table and the clones of the
 * trigger on its partitions: 15 (since 15.2) names it
 * EnableDisableTriggerNew2, 16 EnableDisableTrigger
 */
#if PG_VERSION_NUM >= 160000
#define MigEnableDisableTrigger EnableDisableTrigger
#else
#define MigEnableDisableTrigger EnableDisableTriggerNew2
#endif

/* ExecutorRun of a whole statement; 18 dropped the execute_once argument */
#if PG_VERSION_NUM >= 180000
#define MigExecutorRun(qd) ExecutorRun((qd), ForwardScanDirection, 0)
#else
#define MigExecutorRun(qd) ExecutorRun((qd), ForwardScanDirection, 0, true)
#endif

/* ownership of a table: object_ownercheck from 16 on */
#if PG_VERSION_NUM >= 160000
#define MigOwnsTable(relid, roleid) object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define MigOwnsTable(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

/* pg_database_aclcheck became object_aclcheck in 16 */
#if PG_VERSION_NUM >= 160000
#define MigDatabaseAclCheck(db, role, mode) \
	object_aclcheck(DatabaseRelationId, (db), (role), (mode))
#else
#define MigDatabaseAclCheck(db, role, mode) pg_database_aclcheck((db), (role), (mode))
#endif

/* pg_namespace_aclcheck became object_aclcheck in 16 */
#if PG_VERSION_NUM >= 160000
#define MigNamespaceAclCheck(nsp, role, mode) \
	object_aclcheck(NamespaceRelationId, (nsp), (role), (mode))
#else
#define MigNamespaceAclCheck(nsp, role, mode) pg_namespace_aclcheck((nsp), (role), (mode))
#endif

/* pg_type_aclcheck became object_aclcheck in 16 (mig_change_type's type) */
#if PG_VERSION_NUM >= 160000
#define MigTypeAclCheck(type, role, mode) \
	object_aclcheck(TypeRelationId, (type), (role), (mode))
#else
#define MigTypeAclCheck(type, role, mode) pg_type_aclcheck((type), (role), (mode))
#endif

/* typeStringToTypeName takes an escontext from 16 on (errors are thrown here) */
#if PG_VERSION_NUM >= 160000
#define MigTypeStringToTypeName(str) typeStringToTypeName((str), NULL)
#else
#define MigTypeStringToTypeName(str) typeStringToTypeName(str)
#endif

/*
 * 18 gave RelationGetPrimaryKeyIndex a deferrable_ok argument; false keeps
 * the earlier behaviour (a DEFERRABLE primary key is not reported)
 */
#if PG_VERSION_NUM >= 180000
#define MigRelationGetPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex((rel), false)
#else
#define MigRelationGetPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex(rel)
#endif

/*
 * 18 keeps a column's NOT NULL as a pg_constraint row of its own, with a
 * name (kind_not_null.c gives it PostgreSQL's usual one); the tuple (a copy,
 * NULL if none) of the column colname of relid.  Before 18 there is none.
 */
#if PG_VERSION_NUM >= 180000
#define MigNotNullConstraintTuple(relid, colname) findNotNullConstraint((relid), (colname))
#else
#define MigNotNullConstraintTuple(relid, colname) ((HeapTuple) NULL)
#endif

/*
 * 18 can add a column's NOT NULL constraint NOT VALID and validate it later
 * under SHARE UPDATE EXCLUSIVE (kind_not_null.c takes that path: two
 * statements); before, a NOT VALID check stands in for it (four).
 */
#define MIG_HAVE_NOT_NULL_NOT_VALID (PG_VERSION_NUM >= 180000)

/*
 * 18 can add a foreign key NOT VALID to a partitioned table (and validate
 * it later); kind_change_type.c carries the foreign keys of partitioned
 * tables that reference the column over that way, and refuses them before.
 */
#define MIG_HAVE_PARTITIONED_NOT_VALID_FK (PG_VERSION_NUM >= 180000)

/*
 * 19 has REPACK (CONCURRENTLY) (kind_repack.c); before, mig_repack refuses
 * to start (kind_repack.c)
 */
#define MIG_HAVE_REPACK (PG_VERSION_NUM >= 190000)

/*
 * Is a replication slot in use by a process?  19 records the process
 * number (active_proc) where earlier versions record its pid (throttle.c).
 */
#if PG_VERSION_NUM >= 190000
#define MigSlotIsActive(slot) ((slot)->active_proc != INVALID_PROC_NUMBER)
#else
#define MigSlotIsActive(slot) ((slot)->active_pid != 0)
#endif

/*
 * 19's REPACK (CONCURRENTLY) decodes the table's changes through a logical
 * slot of its own, pg_repack_<pid>, which it consumes itself: not a replica,
 * so the lag throttle leaves it out (throttle.c).  No such slot before 19.
 */
#if PG_VERSION_NUM >= 190000
#define MigIsRepackSlot(name) (strncmp((name), "pg_repack_", 10) == 0)
#else
#define MigIsRepackSlot(name) false
#endif

/*
 * May role VACUUM the table (vacuum.c)?  As VACUUM itself decides: its
 * owner or the database's owner (the table not shared), and from 17 on
 * whoever holds MAINTAIN on it (pg_maintain included).
 */
#if PG_VERSION_NUM >= 170000
#define MigMayVacuum(relid, roleid) \
	(object_ownercheck(DatabaseRelationId, MyDatabaseId, (roleid)) || \
	 pg_class_aclcheck((relid), (roleid), ACL_MAINTAIN) == ACLCHECK_OK)
#elif PG_VERSION_NUM >= 160000
#define MigMayVacuum(relid, roleid) \
	(object_ownercheck(DatabaseRelationId, MyDatabaseId, (roleid)) || \
	 object_ownercheck(RelationRelationId, (relid), (roleid)))
#else
#define MigMayVacuum(relid, roleid) \
	(pg_database_ownercheck(MyDatabaseId, (roleid)) || \
	 pg_class_ownercheck((relid), (roleid)))
#endif

/*
 * VACUUM options beyond 15's: from 16 on, SKIP_DATABASE_STATS spares each
 * of the worker's VACUUMs the scan of pg_class that updates datfrozenxid
 * (the next VACUUM without it, autovacuum's, does that).
 */
#if PG_VERSION_NUM >= 160000
#define MIG_VACUUM_EXTRA_OPTIONS ", SKIP_DATABASE_STATS"
#else
#define MIG_VACUUM_EXTRA_OPTIONS ""
#endif

/*
 * A wait with a name of its own in pg_stat_activity.wait_event (17's
 * WaitEventExtensionNew, wait_events.c); before 17 every wait of an
 * extension is PG_WAIT_EXTENSION ("Extension").
 */
#if PG_VERSION_NUM >= 170000
#include "utils/wait_event.h"
#define MigWaitEventNew(name) WaitEventExtensionNew(name)
#else
#define MigWaitEventNew(name) ((void) (name), (uint32) PG_WAIT_EXTENSION)
#endif

#endif							/* PG_MIG_VERSION_COMPAT_H */

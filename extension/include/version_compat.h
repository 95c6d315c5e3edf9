/*-------------------------------------------------------------------------
 *
 * version_compat.h
 *	  The one place for differences between PostgreSQL major versions.
 *	  pg_mig is built and tested against PostgreSQL 15; the shims below
 *	  cover 13 to 17 where the code allows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_VERSION_COMPAT_H
#define PG_MIG_VERSION_COMPAT_H

#if PG_VERSION_NUM < 130000
#error "pg_mig needs PostgreSQL 13 or later"
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
 * May member SET ROLE to role?  PostgreSQL 16 made that a property of the
 * grant (GRANT ... WITH SET FALSE); before, every member may.
 */
#if PG_VERSION_NUM >= 160000
#define MigCanSetRole(member, role) member_can_set_role((member), (role))
#else
#define MigCanSetRole(member, role) is_member_of_role((member), (role))
#endif

/* parse analysis of a raw statement without parameters */
#if PG_VERSION_NUM >= 150000
#define MigParseAnalyze(raw, sql) parse_analyze_fixedparams((raw), (sql), NULL, 0, NULL)
#else
#define MigParseAnalyze(raw, sql) parse_analyze((raw), (sql), NULL, 0, NULL)
#endif

/* MarkGUCPrefixReserved appeared in 15; EmitWarningsOnPlaceholders before */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* parse analysis of a raw statement without parameters (steps.c) */
#if PG_VERSION_NUM >= 150000
#define MigAnalyzeAndRewrite(parsetree, sql) \
	pg_analyze_and_rewrite_fixedparams((parsetree), (sql), NULL, 0, NULL)
#else
#define MigAnalyzeAndRewrite(parsetree, sql) \
	pg_analyze_and_rewrite((parsetree), (sql), NULL, 0, NULL)
#endif

/* PortalRun of a top-level statement; 18 dropped the run_once argument */
#if PG_VERSION_NUM >= 180000
#define MigPortalRun(portal, dest, qc) \
	PortalRun((portal), FETCH_ALL, true, (dest), (dest), (qc))
#else
#define MigPortalRun(portal, dest, qc) \
	PortalRun((portal), FETCH_ALL, true, true, (dest), (dest), (qc))
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

#endif							/* PG_MIG_VERSION_COMPAT_H */

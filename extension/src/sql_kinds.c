/*-------------------------------------------------------------------------
 *
 * sql_kinds.c
 *	  The SQL-callable start functions of the job kinds after the backfill:
 *	  mig_start_delete, mig_set_not_null, mig_validate_constraint,
 *	  mig_create_index, mig_add_foreign_key and mig_repack.
 *
 * Like mig_start_backfill (sql_api.c) each checks everything in the
 * caller's transaction, with the caller's rights, before a job is made: a
 * bad argument, a missing table, column or constraint, or a caller who
 * could not run the job's statements is an ERROR and no job is made.  A
 * kind of schema steps needs the caller to own the table (ALTER TABLE and
 * CREATE INDEX do); its worker runs as the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "access/amapi.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "parser/parse_utilcmd.h"
#include "utils/array.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/guc.h"
#include "utils/ruleutils.h"
#include "catalog/namespace.h"
#include "utils/relcache.h"
#include "catalog/pg_index.h"
#include "access/table.h"
#include "catalog/pg_namespace.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"

#include "pg_mig.h"
#include "steps.h"
#include "version_compat.h"

PG_FUNCTION_INFO_V1(mig_start_delete);
PG_FUNCTION_INFO_V1(mig_set_not_null);
PG_FUNCTION_INFO_V1(mig_validate_constraint);
PG_FUNCTION_INFO_V1(mig_create_index);
PG_FUNCTION_INFO_V1(mig_add_foreign_key);
PG_FUNCTION_INFO_V1(mig_repack);
PG_FUNCTION_INFO_V1(mig_change_type);

#define MAX_TEXT_ARG	65536
#define COLUMNS_ARG_HINT "Pass the column list of CREATE INDEX, e.g. 'created_at', 'lower(email)' or 'customer_id, created_at DESC'."

/* RequireArg: argument argno must not be NULL */
static void
RequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

/* TextArgument: a text argument that must be neither NULL nor blank */
static char *
TextArgument(FunctionCallInfo fcinfo, int argno, const char *name, const char *hint)
{
	char	   *s;

	RequireArg(fcinfo, argno, name);
	s = TextDatumGetCString(PG_GETARG_DATUM(argno));
	if (s[strspn(s, " \t\r\n\f")] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 hint ? errhint("%s", hint) : 0));
	if (strlen(s) > MAX_TEXT_ARG)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too long", name),
				 errdetail("It has %zu bytes; at most %d are allowed.", strlen(s), MAX_TEXT_ARG)));
	return s;
}

/*
 * BeginStart: the checks every start function makes first; opens the
 * table (AccessShareLock, kept until commit) and fills in the job's
 * identity, owner and settings.
 */
static Relation
BeginStart(FunctionCallInfo fcinfo, MigJob *job, const char *what)
{
	Oid			relid;
	Relation	rel;

	MigRequireShared();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot start %s during recovery", what),
				 errhint("Connect to the primary server.")));
	RequireArg(fcinfo, 0, "relation");
	relid = PG_GETARG_OID(0);
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));

	job->owner = GetUserId();
	MigCheckOwnerCanLogin(job->owner);
	job->owner_name = GetUserNameFromId(job->owner, false);
	job->relid = relid;
	job->relation_name =
		quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
								   RelationGetRelationName(rel));
	job->search_path = pstrdup(namespace_search_path);
	job->settings = MigKeySettings();
	return rel;
}

/*
 * CheckDDLTable: a kind of schema steps runs ALTER TABLE or CREATE INDEX
 * on a table, which only its owner (or a member of the owning role) may.
 */
static void
CheckDDLTable(Relation rel, const char *what)
{
	char		relkind = rel->rd_rel->relkind;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel))));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot %s on temporary table \"%s\"", what,
						RelationGetRelationName(rel)),
				 errdetail("The background worker runs in a session of its own and cannot see this session's temporary tables.")));
	if (!MigOwnsTable(RelationGetRelid(rel), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s on table \"%s\"", what,
						RelationGetRelationName(rel)),
				 errdetail("The job runs ALTER TABLE or CREATE INDEX as the role that starts it, and only the table's owner may run them."),
				 errhint("Start the job as the owner of the table, or as a member of the owning role.")));
}

/*
 * FinishStart records the job (with its targets, if it walks rows) and
 * asks the launcher, at commit, to start its worker.
 */
static int64
FinishStart(Relation rel, MigJob *job, List *targets, const char *queued_detail)
{
	List	   *relids = list_make1_oid(job->relid);
	ListCell   *lc;
	int64		active;
	int64		job_id;

	foreach(lc, targets)
		relids = lappend_oid(relids, ((MigTarget *) lfirst(lc))->relid);
	(void) MigLockTreeForStart(job->relid);
	job_id = MigRetryFailedTwin(job);
	if (job_id != 0)
	{
		relation_close(rel, NoLock);
		return job_id;
	}
	active = MigFindActiveJobOn(relids);
	if (active != 0)
		MigRefuseBusyTable(RelationGetRelationName(rel), active);

	job_id = MigInsertJob(job, targets);
	MigSetJobKind(job_id, job->kind, job->kind_args);
	MigKeepJobKey(job_id, job);
	if (job->parallel > 1)
		MigCreateLanes(job_id, linitial(targets), job->parallel);
	MigRecordEvent(job_id, "queued", queued_detail);
	MigNotify(job_id, "queued");
	MigRequestJobWorkers(job, job_id);
	relation_close(rel, NoLock);
	return job_id;
}

/*
 * StartAgain reads the job_key and the start arguments of a start function
 * (job_key.c) and returns the id of the job that holds the key, or 0.
 */
static int64
StartAgain(FunctionCallInfo fcinfo, Relation rel, MigJob *job, MigJobKind kind,
		   const char *const *identity, int nidentity)
{
	int64		job_id;

	job->kind = kind;
	MigReadJobKey(fcinfo, identity, nidentity, job);
	job_id = MigStartAgain(job);
	if (job_id != 0)
		relation_close(rel, NoLock);
	return job_id;
}

/* START_AGAIN(fcinfo, rel, job, kind, start argument names...) */
#define START_AGAIN(fcinfo, rel, job, kind, ...) \
	do { \
		static const char *const identity_[] = {__VA_ARGS__}; \
		int64		again_ = StartAgain((fcinfo), (rel), (job), (kind), \
										identity_, lengthof(identity_)); \
		if (again_ != 0) \
			PG_RETURN_INT64(again_); \
	} while (0)

/*
 * mig_start_delete(relation, where_clause, <knobs of mig_start_backfill>)
 * starts a chunked DELETE of the rows matching where_clause: the walk of a
 * backfill with a DELETE as each chunk's statement.
 */
Datum
mig_start_delete(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	List	   *targets;
	ListCell   *lc;
	int64		rows_total;

	MigRequireSchemaVersion();
	memset(&job, 0, sizeof(job));
	rel = BeginStart(fcinfo, &job, "a delete");
	START_AGAIN(fcinfo, rel, &job, MIG_KIND_DELETE, "where_clause");
	job.kind = MIG_KIND_DELETE;
	job.set_clause = NULL;
	job.where_clause = TextArgument(fcinfo, 1, "where_clause",
									"A delete needs the condition of the rows to delete, e.g. 'created_at < now() - interval ''1 year'''.");
	MigReadKnobArgs(fcinfo, &job);
	/* monitoring: verify => false keeps the walk from being verified */
	if (!MigArgBool(fcinfo, "verify", true))
		job.kind_args = lappend(job.kind_args, pstrdup(MIG_VERIFY_OFF));
	if (pg_class_aclcheck(job.relid, GetUserId(), ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to delete from table \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("A delete runs with the rights of the role that starts it; that role needs DELETE on the table.")));

	targets = MigBuildTargets(rel, NULL, job.where_clause, &rows_total, NULL);
	job.parallel = MigReadParallelArg(fcinfo, targets);
	job.rows_total = rows_total;
	foreach(lc, targets)
		job.keys_total += Max(((MigTarget *) lfirst(lc))->keys_estimate, 0);

	PG_RETURN_INT64(FinishStart(rel, &job, targets,
								psprintf("%d target%s, about " INT64_FORMAT " rows to delete, batch_size %d%s",
										 list_length(targets), list_length(targets) == 1 ? "" : "s",
										 Max(rows_total, 0), job.batch_size,
										 job.parallel > 1 ? psprintf(", %d lanes", job.parallel) : "")));
}

/*
 * StepJobDefaults: the knobs of a job of schema steps are the defaults,
 * then its lock_timeout and max_retries arguments.
 */
static void
StepJobDefaults(FunctionCallInfo fcinfo, MigJob *job)
{
	MigDefaultKnobs(job);
	MigReadKnobArg(fcinfo, "lock_timeout", job);
	MigReadKnobArg(fcinfo, "max_retries", job);
	job->rows_total = -1;
	job->keys_total = -1;
}

/*
 * mig_set_not_null(relation, column_name, lock_timeout, max_retries)
 * starts a not_null job (kind_not_null.c).
 */
Datum
mig_set_not_null(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *column;
	AttrNumber	attnum;
	char	   *check;

	MigRequireSchemaVersion();
	memset(&job, 0, sizeof(job));
	rel = BeginStart(fcinfo, &job, "a not_null job");
	START_AGAIN(fcinfo, rel, &job, MIG_KIND_NOT_NULL, "column_name");
	CheckDDLTable(rel, "set a column NOT NULL");
	RequireArg(fcinfo, 1, "column_name");
	column = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	attnum = get_attnum(job.relid, column);
	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						column, RelationGetRelationName(rel))));
	StepJobDefaults(fcinfo, &job);

	job.kind = MIG_KIND_NOT_NULL;
	check = ChooseConstraintName(RelationGetRelationName(rel), column, "not_null",
								 RelationGetNamespace(rel), NIL);
	job.kind_args = list_make2(psprintf("column=%s", column),
							   psprintf("constraint=%s", check));
	PG_RETURN_INT64(FinishStart(rel, &job, NIL,
								psprintf("set column %s NOT NULL through constraint %s",
										 quote_identifier(column), quote_identifier(check))));
}

/*
 * mig_validate_constraint(relation, constraint_name, lock_timeout,
 * max_retries) starts a validate job (kind_validate.c).
 */
Datum
mig_validate_constraint(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *name;
	Oid			conoid;
	HeapTuple	tuple;
	char		contype;

	MigRequireSchemaVersion();
	memset(&job, 0, sizeof(job));
	rel = BeginStart(fcinfo, &job, "a validate job");
	START_AGAIN(fcinfo, rel, &job, MIG_KIND_VALIDATE, "constraint_name");
	CheckDDLTable(rel, "validate a constraint");
	RequireArg(fcinfo, 1, "constraint_name");
	name = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	conoid = get_relation_constraint_oid(job.relid, name, true);
	if (!OidIsValid(conoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("constraint \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel)),
				 errhint("Add it first with ALTER TABLE ... ADD CONSTRAINT ... NOT VALID.")));
	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", conoid);
	contype = ((Form_pg_constraint) GETSTRUCT(tuple))->contype;
	ReleaseSysCache(tuple);
	if (contype != CONSTRAINT_CHECK && contype != CONSTRAINT_FOREIGN)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("constraint \"%s\" of relation \"%s\" is not a check or foreign key constraint",
						name, RelationGetRelationName(rel)),
				 errdetail("Only check and foreign key constraints can be NOT VALID.")));
	StepJobDefaults(fcinfo, &job);

	job.kind = MIG_KIND_VALIDATE;
	job.kind_args = list_make1(psprintf("constraint=%s", name));
	PG_RETURN_INT64(FinishStart(rel, &job, NIL,
								psprintf("validate constraint %s", quote_identifier(name))));
}

/*
 * ResolveIndexParts rewrites the column list and the predicate of an index
 * job from their parse analysis (transformIndexStmt), deparsed with the
 * search_path pinned: every name in them is then qualified, resolved once
 * as the caller sees it now, and the worker (whose search_path is pinned
 * too) builds exactly that index.
 */
static void
ResolveIndexParts(Relation rel, IndexStmt *stmt, char **columns, char **where_clause)
{
	List	   *context = deparse_context_for(RelationGetRelationName(rel), RelationGetRelid(rel));
	StringInfoData buf;
	ListCell   *lc;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	initStringInfo(&buf);
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *elem = lfirst_node(IndexElem, lc);

		if (buf.len)
			appendStringInfoString(&buf, ", ");
		if (elem->name)
			appendStringInfoString(&buf, quote_identifier(elem->name));
		else
			appendStringInfo(&buf, "(%s)",
							 deparse_expression(elem->expr, context, false, false));
		if (elem->collation)
			appendStringInfo(&buf, " COLLATE %s", NameListToQuotedString(elem->collation));
		if (elem->opclass)
		{
			if (elem->opclassopts)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("invalid columns: operator class options are not supported")));
			appendStringInfo(&buf, " %s", NameListToQuotedString(elem->opclass));
		}
		if (elem->ordering == SORTBY_DESC)
			appendStringInfoString(&buf, " DESC");
		if (elem->nulls_ordering == SORTBY_NULLS_FIRST)
			appendStringInfoString(&buf, " NULLS FIRST");
		else if (elem->nulls_ordering == SORTBY_NULLS_LAST)
			appendStringInfoString(&buf, " NULLS LAST");
	}
	*columns = buf.data;
	if (stmt->whereClause)
		*where_clause = deparse_expression(stmt->whereClause, context, false, false);
	AtEOXact_GUC(true, nest);
}

/*
 * mig_create_index(relation, columns, index_name, unique, method,
 * where_clause, include, max_lag, max_lag_bytes, lock_timeout,
 * max_retries) starts an index job (kind_index.c).
 */
Datum
mig_create_index(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *columns;
	char	   *index_name = NULL;
	bool		unique;
	char	   *method;
	char	   *where_clause = NULL;
	List	   *include = NIL;
	StringInfoData include_arg;
	Oid			amoid;
	IndexStmt  *stmt;
	ListCell   *lc;
	Oid			existing;

	MigRequireSchemaVersion();
	memset(&job, 0, sizeof(job));
	rel = BeginStart(fcinfo, &job, "an index job");
	START_AGAIN(fcinfo, rel, &job, MIG_KIND_INDEX, "columns", "index_name", "unique", "method",
				"where_clause", "include");
	CheckDDLTable(rel, "create an index");
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create an index concurrently on partitioned table \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("Create the index on each partition with mig_create_index(), then attach them to an index created ON ONLY the partitioned table.")));
	columns = TextArgument(fcinfo, 1, "columns", COLUMNS_ARG_HINT);
	unique = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);
	method = PG_ARGISNULL(4) ? pstrdup("btree") : TextArgument(fcinfo, 4, "method", NULL);
	if (!PG_ARGISNULL(5))
		where_clause = TextArgument(fcinfo, 5, "where_clause",
									"Pass NULL for an index of every row.");

	/* the method: an index access method in pg_am */
	amoid = get_index_am_oid(method, true);
	if (!OidIsValid(amoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("index access method \"%s\" does not exist", method),
				 errhint("See the index access methods in pg_am, e.g. btree, hash, gin, gist, brin.")));
	if (unique && !GetIndexAmRoutineByAmId(amoid, false)->amcanunique)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("access method \"%s\" does not support unique indexes", method)));

	/* include: columns of the table */
	initStringInfo(&include_arg);
	if (!PG_ARGISNULL(6))
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(6), NAMEOID, NAMEDATALEN, false,
						  TYPALIGN_CHAR, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			char	   *name;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("include must not contain NULL")));
			name = pstrdup(NameStr(*DatumGetName(elems[i])));
			if (get_attnum(job.relid, name) <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								name, RelationGetRelationName(rel)),
						 errhint("include names columns to store in the index.")));
			include = lappend(include, name);
			appendStringInfo(&include_arg, "%s%s", i ? "," : "", quote_identifier(name));
		}
	}

	/* the name: given, or PostgreSQL's usual one */
	if (!PG_ARGISNULL(2))
		index_name = pstrdup(NameStr(*PG_GETARG_NAME(2)));
	(void) MigIndexSql(job.relation_name, index_name ? index_name : "pg_mig_index_name",
					   columns, unique, method, where_clause, include, &stmt);
	if (index_name == NULL)
	{
		StringInfoData name2;

		initStringInfo(&name2);
		foreach(lc, stmt->indexParams)
		{
			IndexElem  *elem = lfirst_node(IndexElem, lc);

			appendStringInfo(&name2, "%s%s", name2.len ? "_" : "",
							 elem->name ? elem->name : "expr");
		}
		index_name = ChooseRelationName(RelationGetRelationName(rel), name2.data,
										unique ? "key" : "idx",
										RelationGetNamespace(rel), false);
	}
	existing = get_relname_relid(index_name, RelationGetNamespace(rel));
	if (OidIsValid(existing) && get_rel_relkind(existing) != RELKIND_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists", index_name)));
	/* a valid index of that name is someone's index, not a build to finish */
	if (OidIsValid(existing))
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(existing));
		bool		valid = HeapTupleIsValid(tuple) &&
			((Form_pg_index) GETSTRUCT(tuple))->indisvalid;

		if (HeapTupleIsValid(tuple))
			ReleaseSysCache(tuple);
		if (valid)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("index \"%s\" already exists", index_name),
					 errdetail("It is a valid index; mig_create_index builds a new one."),
					 errhint("Pass another index_name, or drop the index first.")));
	}
	/* CREATE INDEX makes the index in the table's schema: CREATE on it */
	if (MigNamespaceAclCheck(RelationGetNamespace(rel), GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s",
						get_namespace_name(RelationGetNamespace(rel))),
				 errdetail("The index is created in the schema of its table, as role \"%s\".",
						   GetUserNameFromId(GetUserId(), false)),
				 errhint("Grant that role CREATE on the schema, or have a role that has it start the job.")));

	/* the meaning of the parts: columns, expressions and predicate resolve */
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *elem = lfirst_node(IndexElem, lc);

		if (elem->name && get_attnum(job.relid, elem->name) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("invalid columns: column \"%s\" of relation \"%s\" does not exist",
							elem->name, RelationGetRelationName(rel)),
					 errhint("%s", COLUMNS_ARG_HINT)));
	}
	stmt = transformIndexStmt(job.relid, stmt, "mig_create_index");
	ResolveIndexParts(rel, stmt, &columns, &where_clause);
	(void) MigIndexSql(job.relation_name, index_name, columns, unique, method,
					   where_clause, include, NULL);

	StepJobDefaults(fcinfo, &job);
	MigReadKnobArg(fcinfo, "max_lag", &job);
	MigReadKnobArg(fcinfo, "max_lag_bytes", &job);

	job.kind = MIG_KIND_INDEX;
	job.kind_args = list_make5(psprintf("index=%s", index_name),
							   psprintf("columns=%s", columns),
							   psprintf("unique=%s", unique ? "true" : "false"),
							   psprintf("method=%s", method),
							   psprintf("include=%s", include_arg.data));
	if (where_clause)
		job.kind_args = lappend(job.kind_args, psprintf("where=%s", where_clause));
	PG_RETURN_INT64(FinishStart(rel, &job, NIL,
								psprintf("create %sindex %s concurrently", unique ? "unique " : "",
										 quote_identifier(index_name))));
}

/* NameArray: the names of a name[] argument (NULL: NIL) */
static List *
NameArray(FunctionCallInfo fcinfo, int argno, const char *what)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	if (PG_ARGISNULL(argno))
		return NIL;
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(argno), NAMEOID, NAMEDATALEN, false,
					  TYPALIGN_CHAR, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", what)));
		result = lappend(result, pstrdup(NameStr(*DatumGetName(elems[i]))));
	}
	return result;
}

/* CheckColumnsExist: every name is a column of rel; returns them quoted, comma-separated */
static char *
CheckColumnsExist(Relation rel, List *names, const char *what)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		if (get_attnum(RelationGetRelid(rel), lfirst(lc)) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("invalid %s: column \"%s\" of relation \"%s\" does not exist",
							what, (char *) lfirst(lc), RelationGetRelationName(rel))));
		appendStringInfo(&buf, "%s%s", buf.len ? "," : "", quote_identifier(lfirst(lc)));
	}
	return buf.data;
}

/*
 * mig_add_foreign_key(relation, columns, ref_relation, ref_columns,
 * constraint_name, on_delete, orphans, <knobs of mig_start_backfill>)
 * starts a foreign_key job (kind_foreign_key.c).
 */
Datum
mig_add_foreign_key(PG_FUNCTION_ARGS)
{
	static const char *const on_delete_actions[] = {
		"no action", "restrict", "cascade", "set null", "set default"
	};
	MigJob		job;
	Relation	rel;
	Relation	ref;
	List	   *columns;
	List	   *ref_columns;
	char	   *constraint;
	const char *on_delete = NULL;
	char	   *orphans;
	StringInfoData cond;
	StringInfoData set;
	List	   *targets;
	ListCell   *lc;
	ListCell   *rc;
	int64		rows_total;
	char	   *columns_arg;
	char	   *ref_columns_arg;

	MigRequireSchemaVersion();
	memset(&job, 0, sizeof(job));
	rel = BeginStart(fcinfo, &job, "a foreign_key job");
	START_AGAIN(fcinfo, rel, &job, MIG_KIND_FOREIGN_KEY, "columns", "ref_relation",
				"ref_columns", "constraint_name", "on_delete", "orphans");
	CheckDDLTable(rel, "add a foreign key");
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add a NOT VALID foreign key to partitioned table \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("Add it to each partition with mig_add_foreign_key().")));

	columns = NameArray(fcinfo, 1, "columns");
	if (columns == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("columns must name at least one column")));
	columns_arg = CheckColumnsExist(rel, columns, "columns");

	RequireArg(fcinfo, 2, "ref_relation");
	ref = try_relation_open(PG_GETARG_OID(2), AccessShareLock);
	if (ref == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", PG_GETARG_OID(2))));
	if (ref->rd_rel->relkind != RELKIND_RELATION &&
		ref->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("referenced relation \"%s\" is not a table",
						RelationGetRelationName(ref))));
	ref_columns = NameArray(fcinfo, 3, "ref_columns");
	if (ref_columns == NIL)
	{
		Oid			pk = MigRelationGetPrimaryKeyIndex(ref);
		HeapTuple	tuple;
		Form_pg_index form;

		if (!OidIsValid(pk))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_FOREIGN_KEY),
					 errmsg("there is no primary key for referenced table \"%s\"",
							RelationGetRelationName(ref)),
					 errhint("Name the referenced columns with ref_columns.")));
		tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pk));
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for index %u", pk);
		form = (Form_pg_index) GETSTRUCT(tuple);
		for (int i = 0; i < form->indnkeyatts; i++)
			ref_columns = lappend(ref_columns,
								  get_attname(RelationGetRelid(ref), form->indkey.values[i], false));
		ReleaseSysCache(tuple);
	}
	if (list_length(ref_columns) != list_length(columns))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FOREIGN_KEY),
				 errmsg("number of referencing and referenced columns for foreign key disagree"),
				 errdetail("columns has %d, the referenced key %d.", list_length(columns),
						   list_length(ref_columns))));
	ref_columns_arg = CheckColumnsExist(ref, ref_columns, "ref_columns");
	foreach(lc, ref_columns)
	{
		AttrNumber	attnum = get_attnum(RelationGetRelid(ref), lfirst(lc));

		if (pg_attribute_aclcheck(RelationGetRelid(ref), attnum, GetUserId(), ACL_REFERENCES) != ACLCHECK_OK &&
			pg_class_aclcheck(RelationGetRelid(ref), GetUserId(), ACL_REFERENCES) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to reference column \"%s\" of table \"%s\"",
							(char *) lfirst(lc), RelationGetRelationName(ref)),
					 errhint("The job adds the foreign key as the role that starts it; that role needs REFERENCES on the referenced columns.")));
	}

	if (PG_ARGISNULL(5))
		on_delete = "no action";
	else
	{
		char	   *given = TextDatumGetCString(PG_GETARG_DATUM(5));

		for (int i = 0; i < lengthof(on_delete_actions); i++)
			if (pg_strcasecmp(given, on_delete_actions[i]) == 0)
				on_delete = on_delete_actions[i];
		if (on_delete == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid on_delete \"%s\"", given),
					 errhint("Pass one of 'no action', 'restrict', 'cascade', 'set null', 'set default'.")));
	}
	orphans = PG_ARGISNULL(6) ? "fail" : TextDatumGetCString(PG_GETARG_DATUM(6));
	if (strcmp(orphans, "fail") != 0 && strcmp(orphans, "delete") != 0 &&
		strcmp(orphans, "set_null") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid orphans \"%s\"", orphans),
				 errhint("Pass 'fail' (the job fails if there are any), 'delete' or 'set_null'.")));

	if (!PG_ARGISNULL(4))
		constraint = pstrdup(NameStr(*PG_GETARG_NAME(4)));
	else
	{
		StringInfoData name2;

		initStringInfo(&name2);
		foreach(lc, columns)
			appendStringInfo(&name2, "%s%s", name2.len ? "_" : "", (char *) lfirst(lc));
		constraint = ChooseConstraintName(RelationGetRelationName(rel), name2.data, "fkey",
										  RelationGetNamespace(rel), NIL);
	}
	if (OidIsValid(get_relation_constraint_oid(job.relid, constraint, true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("constraint \"%s\" of relation \"%s\" already exists",
						constraint, RelationGetRelationName(rel)),
				 errhint("Validate a NOT VALID one with mig_validate_constraint(), or pass another constraint_name.")));

	/*
	 * The orphan condition: every key column non-NULL and no referenced
	 * row.  The table's columns are qualified with its name (the chunk
	 * statement names it without an alias), the referenced table's with
	 * an alias of its own.
	 */
	initStringInfo(&cond);
	initStringInfo(&set);
	foreach(lc, columns)
	{
		appendStringInfo(&cond, "%s.%s IS NOT NULL AND ", job.relation_name,
						 quote_identifier(lfirst(lc)));
		appendStringInfo(&set, "%s%s = NULL", set.len ? ", " : "", quote_identifier(lfirst(lc)));
	}
	{
		/* the foreign key's own equality operators must exist: refused now, not later */
		AttrNumber	ref_attnums[INDEX_MAX_KEYS];
		Oid			fk_types[INDEX_MAX_KEYS];
		Oid			eqops[INDEX_MAX_KEYS];
		Oid			casts[INDEX_MAX_KEYS];

		if (list_length(columns) > INDEX_MAX_KEYS)
			ereport(ERROR,
					(errcode(ERRCODE_TOO_MANY_COLUMNS),
					 errmsg("cannot use more than %d foreign keys in a foreign key constraint",
							INDEX_MAX_KEYS)));
		forboth(lc, columns, rc, ref_columns)
		{
			int			i = foreach_current_index(lc);

			ref_attnums[i] = get_attnum(RelationGetRelid(ref), lfirst(rc));
			fk_types[i] = get_atttype(job.relid, get_attnum(job.relid, lfirst(lc)));
		}
		MigForeignKeyEqualityOps(ref, list_length(columns), ref_attnums, fk_types, eqops, casts);
	}
	/* the referenced row, as the foreign key sees it (kind_foreign_key.c) */
	appendStringInfo(&cond, "NOT %s(%u::pg_catalog.oid, ARRAY[",
					 MigQualifiedTable("mig_ref_exists"), RelationGetRelid(ref));
	foreach(rc, ref_columns)
		appendStringInfo(&cond, "%s%s", foreach_current_index(rc) ? ", " : "",
						 quote_literal_cstr(lfirst(rc)));
	appendStringInfoString(&cond, "]::pg_catalog.text[]");
	foreach(lc, columns)
		appendStringInfo(&cond, ", %s.%s", job.relation_name, quote_identifier(lfirst(lc)));
	appendStringInfoChar(&cond, ')');

	MigReadKnobArgs(fcinfo, &job);
	job.kind = MIG_KIND_FOREIGN_KEY;
	job.where_clause = cond.data;
	job.set_clause = strcmp(orphans, "set_null") == 0 ? set.data : NULL;
	targets = MigBuildOrphanTargets(rel, job.set_clause, job.where_clause, &rows_total);
	job.rows_total = rows_total;
	foreach(lc, targets)
		job.keys_total += Max(((MigTarget *) lfirst(lc))->keys_estimate, 0);

	job.kind_args = list_make5(psprintf("constraint=%s", constraint),
							   psprintf("columns=%s", columns_arg),
							   psprintf("ref_relid=%u", RelationGetRelid(ref)),
							   psprintf("ref_columns=%s", ref_columns_arg),
							   psprintf("on_delete=%s", on_delete));
	job.kind_args = lappend(job.kind_args, psprintf("orphans=%s", orphans));
	relation_close(ref, NoLock);
	PG_RETURN_INT64(FinishStart(rel, &job, targets,
								psprintf("add foreign key %s NOT VALID, walk about " INT64_FORMAT " rows for orphans (%s), validate",
										 quote_identifier(constraint), Max(rows_total, 0), orphans)));
}

/*
 * mig_repack(relation, lock_timeout, max_retries, max_lag, max_lag_bytes,
 * job_key) starts a repack job (kind_repack.c): REPACK (CONCURRENTLY) of
 * the table, on PostgreSQL 19 and later; refused before.
 */
Datum
mig_repack(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;

	if (!MIG_HAVE_REPACK)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mig_repack needs PostgreSQL 19 or later"),
				 errdetail("REPACK (CONCURRENTLY) is new in PostgreSQL 19."),
				 errhint("Use pg_repack, or VACUUM FULL in a maintenance window (it holds an ACCESS EXCLUSIVE lock while it rewrites the table).")));

	memset(&job, 0, sizeof(job));
	rel = BeginStart(fcinfo, &job, "a repack job");
	START_AGAIN(fcinfo, rel, &job, MIG_KIND_REPACK, "relation");
	CheckDDLTable(rel, "repack");
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot repack partitioned table \"%s\" concurrently",
						RelationGetRelationName(rel)),
				 errhint("Repack each partition with mig_repack().")));

	StepJobDefaults(fcinfo, &job);
	MigReadKnobArg(fcinfo, "max_lag", &job);
	MigReadKnobArg(fcinfo, "max_lag_bytes", &job);

	job.kind = MIG_KIND_REPACK;
	job.kind_args = list_make1(psprintf("relfilenode=%u", rel->rd_rel->relfilenode));
	PG_RETURN_INT64(FinishStart(rel, &job, NIL,
								psprintf("repack table %s concurrently", job.relation_name)));
}

/*
 * mig_change_type(relation, column_name, new_type, using_expr, cleanup,
 * convert_referencing, <walk knobs of mig_start_delete, parallel
 * included>, max_app_latency, job_key) starts a change_type job
 * (kind_change_type.c).  Unless the change is catalog-only, the new column
 * and its trigger are added here, in the caller's transaction, and the
 * walk's targets are fixed after them.
 */
Datum
mig_change_type(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *column;
	char	   *new_type;
	char	   *using_expr = NULL;
	char	   *detail;
	List	   *targets = NIL;
	List	   *set_columns = NIL;
	int64		rows_total = 0;
	int64		job_id;
	ListCell   *lc;

	MigRequireSchemaVersion();
	memset(&job, 0, sizeof(job));
	rel = BeginStart(fcinfo, &job, "a change_type job");
	START_AGAIN(fcinfo, rel, &job, MIG_KIND_CHANGE_TYPE, "column_name", "new_type", "using_expr",
				"cleanup", "convert_referencing");
	CheckDDLTable(rel, "change the type of a column");
	RequireArg(fcinfo, 1, "column_name");
	column = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	new_type = TextArgument(fcinfo, 2, "new_type", "Pass the new type as ALTER COLUMN TYPE takes it, e.g. 'bigint' or 'varchar(100)'.");
	if (!PG_ARGISNULL(3))
		using_expr = TextArgument(fcinfo, 3, "using_expr", NULL);
	MigReadKnobArgs(fcinfo, &job);
	{
		int			argno = MigArgNo(fcinfo, "parallel");

		if (argno >= 0 && !PG_ARGISNULL(argno) && PG_GETARG_INT32(argno) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("mig_change_type walks with one worker"),
					 errhint("Pass parallel => 1; lanes for the walk of a type change are not built yet.")));
	}

	if (MigChangeTypeStart(&rel, &job, column, new_type, using_expr,
						   MigArgBool(fcinfo, "cleanup", false),
						   MigArgBool(fcinfo, "convert_referencing", false), &detail))
	{
		/*
		 * the upper key as it is now, under the lock: the statement's
		 * snapshot is older than the lock, and a row committed between the
		 * two would be neither walked nor written through the trigger
		 */
		PushActiveSnapshot(GetLatestSnapshot());
		targets = MigBuildTargets(rel, job.set_clause, NULL, &rows_total, &set_columns);
		PopActiveSnapshot();
		if (list_length(set_columns) != 1 ||
			strcmp(linitial(set_columns), MigKindArg(&job, "new_column")) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("invalid using_expr: it is not one expression")));
		if (list_length(targets) != 1)
			elog(ERROR, "a change_type job has one target");
		MigChangeTypeAddTrigger(rel, &job, linitial(targets));
		job.rows_total = rows_total;
		foreach(lc, targets)
			job.keys_total += Max(((MigTarget *) lfirst(lc))->keys_estimate, 0);
	}
	else
	{
		/* catalog-only: the steps alone (the walk is marked done below) */
		job.set_clause = NULL;
		job.rows_total = -1;
		job.keys_total = -1;
	}
	job.parallel = 1;
	job_id = FinishStart(rel, &job, targets, detail);
	if (targets == NIL)
		MigMarkStepDone(job_id, "walk");
	PG_RETURN_INT64(job_id);
}

/*-------------------------------------------------------------------------
 *
 * kept.c
 *	  The kept values of a backfill started with keep_old_values: one table
 *	  per job in the extension's schema, its creation at start, its guard,
 *	  and its drop (mig_forget).
 *
 * The *kept table* of job J is mig_kept.mig_kept_J: the key
 * columns of the job's table (their names, types and collations), then
 * mig_old_I and mig_new_I for the I-th column the set clause assigns (of
 * the column's own type), with the key as primary key.  Each chunk of the
 * backfill inserts one row per row it changes, in the chunk's statement
 * (kind_revert.c), so the kept rows commit or roll back with the chunk and
 * its checkpoint: exactly once.  A partitioned table has one kept table
 * too, since its key is unique over all its partitions.
 *
 * The schema mig_kept is pg_mig's: created with the extension (a member
 * of it), owned by the role that installed it, with USAGE and nothing else
 * for PUBLIC, so no other role can create, drop or swap an object in it.
 * A kept table is identified by its OID, stored with the job (kind_args
 * "kept_relid=OID"), never looked up by name at run time; before every use
 * its OID is checked to be a plain table of the bootstrap superuser in
 * mig_kept (MigKeptTableOid), and its name for the SQL text is the name of
 * that OID.  The kept table is read for a revert (MigKeptUpperKey) as the
 * job's owner, never with more rights than hers; only its creation and
 * drop, DDL that runs no user code, run as the bootstrap superuser.
 *
 * The kept table belongs to the bootstrap superuser, like the job tables.
 * The job's owner, as whom the worker runs, holds SELECT and INSERT on it
 * and nothing else; no other role holds anything.  INSERT is needed by the
 * chunk statement, but the trigger mig_kept_guard refuses every write
 * unless this backend is the worker of the job (MigAllowKeptWrites) or the
 * current user is a superuser (pg_restore): the owner cannot add rows from
 * a session of its own, and no role can touch the kept rows of another
 * role's job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg_mig.h"

PG_FUNCTION_INFO_V1(mig_kept_guard);

/* the kept table this backend (a worker) may write; InvalidOid: none */
static Oid	kept_writable = InvalidOid;

/*
 * KeptEnter switches to the bootstrap superuser, the owner of the kept
 * tables (KeptEnterAs: to role), in a security-restricted operation with a pinned search_path, and
 * connects SPI.  KeptLeave undoes it.  An error in between is cleaned up by
 * transaction abort.
 */
typedef struct KeptContext
{
	Oid			save_userid;
	int			save_sec;
	int			nest;
} KeptContext;

static void
KeptEnterAs(KeptContext *kc, Oid role)
{
	GetUserIdAndSecContext(&kc->save_userid, &kc->save_sec);
	SetUserIdAndSecContext(role,
						   kc->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	kc->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
KeptEnter(KeptContext *kc)
{
	KeptEnterAs(kc, BOOTSTRAP_SUPERUSERID);
}

static void
KeptLeave(KeptContext *kc)
{
	SPI_finish();
	AtEOXact_GUC(true, kc->nest);
	SetUserIdAndSecContext(kc->save_userid, kc->save_sec);
}

/*
 * KeptSchemaOid returns the OID of pg_mig's schema of kept tables, after
 * checking that it is a member of the extension (so it was made by the
 * extension's script, not by whoever could create a schema of that name).
 */
static Oid
KeptSchemaOid(void)
{
	Oid			nsp = get_namespace_oid(MIG_KEPT_SCHEMA, true);

	if (!OidIsValid(nsp) ||
		getExtensionOfObject(NamespaceRelationId, nsp) !=
		get_extension_oid(PG_MIG_EXTENSION_NAME, false))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("schema \"%s\" of pg_mig's kept values is missing", MIG_KEPT_SCHEMA),
				 errdetail("pg_mig 0.4 keeps old values in a schema of its own, made by its install script."),
				 errhint("Run ALTER EXTENSION pg_mig UPDATE.")));
	return nsp;
}

/*
 * MigKeptTableOid returns the OID of the job's kept table (stored with the
 * job), or InvalidOid if it has none (no keep_old_values, forgotten, or
 * gone).  An OID that is not a plain table of the bootstrap superuser in
 * pg_mig's schema of kept tables, named for this job, is an error: it is
 * not this job's.
 */
Oid
MigKeptTableOid(const MigJob *job)
{
	const char *arg = MigKindArg(job, "kept_relid");
	Oid			relid;
	HeapTuple	tuple;
	Form_pg_class form;
	bool		ours;

	if (arg == NULL)
		return InvalidOid;
	relid = (Oid) strtoul(arg, NULL, 10);
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	form = (Form_pg_class) GETSTRUCT(tuple);
	/* and of this job's name: an OID of another cluster (a restored dump) is not */
	ours = form->relkind == RELKIND_RELATION &&
		form->relowner == BOOTSTRAP_SUPERUSERID &&
		form->relnamespace == KeptSchemaOid() &&
		strcmp(NameStr(form->relname),
			   psprintf(MIG_KEPT_PREFIX INT64_FORMAT, job->job_id)) == 0;
	ReleaseSysCache(tuple);
	if (!ours)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the kept table of job " INT64_FORMAT " is not pg_mig's", job->job_id),
				 errdetail("Relation with OID %u is not table %s" INT64_FORMAT " of the bootstrap superuser in schema \"%s\".",
						   relid, MIG_KEPT_PREFIX, job->job_id, MIG_KEPT_SCHEMA),
				 errhint("Cancel the job; its kept values cannot be used.")));
	return relid;
}

/*
 * MigKeptTableName returns the quoted, qualified name of the job's kept
 * table, the name of its stored OID (MigKeptTableOid); an error if it has
 * none.
 */
char *
MigKeptTableName(const MigJob *job)
{
	Oid			relid = MigKeptTableOid(job);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the kept table of job " INT64_FORMAT " is gone", job->job_id),
				 errdetail("The job keeps the old values of every row it changes."),
				 errhint("Cancel the job, or restore the table.")));
	return (char *) quote_qualified_identifier(MIG_KEPT_SCHEMA, get_rel_name(relid));
}

/*
 * CheckKeptTableCap refuses a new kept table for role owner when it has
 * pg_mig.max_kept_tables_per_role of them in this database already: the
 * kept tables of its jobs that were not forgotten.  Caller is in
 * KeptEnter, the job row of the new one not yet counted.
 */
static void
CheckKeptTableCap(Oid owner)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(owner)};
	bool		isnull;
	int64		n;
	char	   *sql;

	sql = psprintf("SELECT pg_catalog.count(*) FROM %s j"
				   " WHERE j.owner OPERATOR(pg_catalog.=) $1"
				   " AND EXISTS (SELECT FROM pg_catalog.unnest(j.kind_args) a"
				   "             WHERE pg_catalog.starts_with(a, 'kept_relid='))"
				   " AND NOT EXISTS (SELECT FROM pg_catalog.unnest(j.kind_args) a"
				   "                 WHERE pg_catalog.starts_with(a, 'forgotten='))",
				   MigQualifiedTable(MIG_JOB_TABLE));
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the kept tables of role %u", owner);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (n >= mig_max_kept_tables_per_role)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("role \"%s\" already has " INT64_FORMAT " tables of kept values",
						GetUserNameFromId(owner, false), n),
				 errdetail("pg_mig.max_kept_tables_per_role is %d; a backfill's kept values stay until mig_forget drops them.",
						   mig_max_kept_tables_per_role),
				 errhint("Drop the kept values of finished backfills with mig_forget(job_id), or start this backfill without keep_old_values.")));
}

/*
 * MigAllowKeptWrites lets this backend write the kept table kept_relid
 * (the worker of a backfill with keep_old_values), for the rest of the
 * process.
 */
void
MigAllowKeptWrites(Oid kept_relid)
{
	kept_writable = kept_relid;
}

/*
 * mig_kept_guard is the statement-level trigger on every kept table: see
 * the file header.
 */
Datum
mig_kept_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("mig_kept_guard() must be called as a trigger")));
	if (!superuser() &&
		(!OidIsValid(kept_writable) ||
		 RelationGetRelid(trigdata->tg_relation) != kept_writable ||
		 !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change table \"%s\"",
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("Only the worker of its backfill writes a table of kept values."),
				 errhint("Use mig_revert to write the kept values back and mig_forget to drop them.")));
	return PointerGetDatum(NULL);
}

/* AppendColumnDef: "name type [COLLATE c]" of attribute attnum of relid */
static void
AppendColumnDef(StringInfo buf, Oid relid, AttrNumber attnum, const char *name,
				bool not_null)
{
	Oid			type;
	int32		typmod;
	Oid			collation;

	get_atttypetypmodcoll(relid, attnum, &type, &typmod, &collation);
	appendStringInfo(buf, "%s %s", quote_identifier(name),
					 format_type_extended(type, typmod,
										  FORMAT_TYPE_TYPEMOD_GIVEN |
										  FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(collation))
	{
		HeapTuple	tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));

		if (HeapTupleIsValid(tuple))
		{
			Form_pg_collation coll = (Form_pg_collation) GETSTRUCT(tuple);

			appendStringInfo(buf, " COLLATE %s",
							 quote_qualified_identifier(get_namespace_name(coll->collnamespace),
														NameStr(coll->collname)));
			ReleaseSysCache(tuple);
		}
	}
	if (not_null)
		appendStringInfoString(buf, " NOT NULL");
}

/*
 * RootHasKeyIndex: a partitioned table has a unique index on exactly the
 * key columns, so the key is unique over all its partitions.
 */
static bool
RootHasKeyIndex(Relation rel, const MigTarget *first)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index form;
		bool		same;

		if (!HeapTupleIsValid(tuple))
			continue;
		form = (Form_pg_index) GETSTRUCT(tuple);
		same = form->indisunique && form->indnkeyatts == first->nkeys;
		for (int i = 0; same && i < first->nkeys; i++)
			same = form->indkey.values[i] ==
				get_attnum(RelationGetRelid(rel), first->key_columns[i]);
		ReleaseSysCache(tuple);
		if (same)
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * MigCreateKeptTable checks that the job can keep its old values and
 * creates its kept table (see the file header), in the caller's
 * transaction (mig_start_backfill, after the job row is inserted).
 * set_columns are the names of the columns the set clause assigns.
 * Records keep_old_values and the kept columns in the job's kind_args.
 */
void
MigCreateKeptTable(const MigJob *job, Relation rel, List *targets,
				   List *set_columns)
{
	Oid			relid = RelationGetRelid(rel);
	const MigTarget *first;
	StringInfoData sql;
	ListCell   *lc;
	List	   *kind_args = NIL;
	char	   *kept;
	int			i;
	KeptContext kc;

	if (targets == NIL)
		elog(ERROR, "pg_mig job " INT64_FORMAT " has no targets", job->job_id);
	first = linitial(targets);

	/* the kept rows are found again by the key: it must stay as it is */
	for (i = 0; i < first->nkeys; i++)
		foreach(lc, set_columns)
			if (strcmp((char *) lfirst(lc), first->key_columns[i]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("keep_old_values cannot keep the values of key column \"%s\"",
								first->key_columns[i]),
						 errdetail("A revert finds each changed row again by its key."),
						 errhint("Assign the key columns in a backfill without keep_old_values.")));
	foreach(lc, targets)
	{
		const MigTarget *t = lfirst(lc);
		bool		same = (t->nkeys == first->nkeys);

		for (i = 0; same && i < t->nkeys; i++)
			same = strcmp(t->key_columns[i], first->key_columns[i]) == 0;
		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("keep_old_values needs the same key in every partition of table %s",
							job->relation_name),
					 errdetail("Partition %s is walked by another key than %s.",
							   t->relation_name, first->relation_name)));
	}
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE && !RootHasKeyIndex(rel, first))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("keep_old_values needs a primary key or unique index on partitioned table %s",
						job->relation_name),
				 errdetail("The kept values are found again by a key that is unique over all partitions."),
				 errhint("Add a primary key to the partitioned table.")));

	/* the chunk statement reads the old values as the owner: SELECT on them */
	foreach(lc, set_columns)
	{
		AttrNumber	attnum = get_attnum(relid, (char *) lfirst(lc));

		if (attnum != InvalidAttrNumber &&
			pg_class_aclcheck(relid, job->owner, ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck(relid, attnum, job->owner, ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to keep the old values of column \"%s\" of table %s",
							(char *) lfirst(lc), job->relation_name),
					 errdetail("A backfill with keep_old_values reads the old value of every column it assigns, as role \"%s\".",
							   GetUserNameFromId(job->owner, false)),
					 errhint("Grant that role SELECT on the column, or start the backfill without keep_old_values.")));
	}

	kept = (char *) quote_qualified_identifier(MIG_KEPT_SCHEMA,
											   psprintf(MIG_KEPT_PREFIX INT64_FORMAT, job->job_id));
	(void) KeptSchemaOid();
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", kept);
	for (i = 0; i < first->nkeys; i++)
	{
		if (strncmp(first->key_columns[i], "mig_old_", 8) == 0 ||
			strncmp(first->key_columns[i], "mig_new_", 8) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("keep_old_values cannot keep the values of a table whose key column is named \"%s\"",
							first->key_columns[i]),
					 errdetail("Names that begin with mig_old_ and mig_new_ are the kept table's own.")));
		AppendColumnDef(&sql, relid, get_attnum(relid, first->key_columns[i]),
						first->key_columns[i], true);
		appendStringInfoString(&sql, ", ");
	}
	for (int pass = 0; pass < 2; pass++)
	{
		i = 0;
		foreach(lc, set_columns)
		{
			const char *col = lfirst(lc);
			AttrNumber	attnum = get_attnum(relid, col);

			if (attnum == InvalidAttrNumber)
				elog(ERROR, "column \"%s\" of %s not found", col, job->relation_name);
			AppendColumnDef(&sql, relid, attnum,
							psprintf("mig_%s_%d", pass == 0 ? "old" : "new", ++i), false);
			appendStringInfoString(&sql, ", ");
		}
	}
	appendStringInfoString(&sql, "PRIMARY KEY (");
	for (i = 0; i < first->nkeys; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(first->key_columns[i]));
	appendStringInfoString(&sql, "));\n");
	appendStringInfo(&sql, "REVOKE ALL ON %s FROM PUBLIC;\n", kept);
	appendStringInfo(&sql, "GRANT SELECT, INSERT ON %s TO %s;\n", kept,
					 quote_identifier(GetUserNameFromId(job->owner, false)));
	appendStringInfo(&sql,
					 "CREATE TRIGGER mig_kept_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE"
					 " ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s();\n",
					 kept, MigQualifiedTable("mig_kept_guard"));
	appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s;\n", kept,
					 quote_literal_cstr(psprintf("the old and new values of the rows pg_mig job "
												 INT64_FORMAT " changed (see mig_revert, mig_forget)",
												 job->job_id)));

	/* as the owner of pg_mig's tables, with no user object on the path */
	KeptEnter(&kc);
	CheckKeptTableCap(job->owner);
	if (SPI_execute(sql.data, false, 0) < 0)
		elog(ERROR, "could not create the kept table of pg_mig job " INT64_FORMAT,
			 job->job_id);
	KeptLeave(&kc);

	kind_args = lappend(kind_args, pstrdup("keep_old_values=true"));
	/* the OID, from the schema nobody else writes: it names the table from now on */
	kind_args = lappend(kind_args,
						psprintf("kept_relid=%u",
								 get_relname_relid(psprintf(MIG_KEPT_PREFIX INT64_FORMAT, job->job_id),
												   KeptSchemaOid())));
	foreach(lc, set_columns)
		kind_args = lappend(kind_args, psprintf("kept_column=%s", (char *) lfirst(lc)));
	MigSetJobKind(job->job_id, MIG_KIND_BACKFILL, kind_args);
}

/*
 * MigDropKeptTable drops the job's kept table, if it has one, in the
 * caller's transaction.
 */
void
MigDropKeptTable(const MigJob *job)
{
	KeptContext kc;
	Oid			relid = MigKeptTableOid(job);

	if (!OidIsValid(relid))
		return;
	KeptEnter(&kc);
	if (SPI_execute(psprintf("DROP TABLE %s", MigKeptTableName(job)),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not drop the kept table of pg_mig job " INT64_FORMAT, job->job_id);
	KeptLeave(&kc);
}

/*
 * MigKeptUpperKey returns the last key of the job's kept table in text form
 * (NULL if it is empty), and sets *rows to its count of rows.  The caller
 * (mig_revert) may not be able to read the table: this reads it as the
 * job's owner (who holds SELECT on it), never with more rights than hers.
 * Caller is in a transaction.
 */
char **
MigKeptUpperKey(const MigJob *job, int nkeys, char **key_columns, int64 *rows)
{
	StringInfoData sql;
	char	  **upper = NULL;
	KeptContext kc;
	int			keynest;
	MemoryContext callerctx = CurrentMemoryContext;
	const char *kept = MigKeptTableName(job);
	int64		job_id = job->job_id;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%s, ", quote_identifier(key_columns[i]));
	appendStringInfo(&sql, "pg_catalog.count(*) OVER () FROM ONLY %s ORDER BY ", kept);
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%s%s DESC", i ? ", " : "", quote_identifier(key_columns[i]));
	appendStringInfoString(&sql, " LIMIT 1");

	KeptEnterAs(&kc, job->owner);
	keynest = MigEnterKeyFormat();
	if (SPI_execute(sql.data, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the kept table of pg_mig job " INT64_FORMAT, job_id);
	*rows = 0;
	if (SPI_processed == 1)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(callerctx);

		upper = palloc(sizeof(char *) * nkeys);
		for (int i = 0; i < nkeys; i++)
			upper[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
		*rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											nkeys + 1, &isnull));
		MemoryContextSwitchTo(old);
	}
	MigLeaveKeyFormat(keynest);
	KeptLeave(&kc);
	return upper;
}

PG_FUNCTION_INFO_V1(mig_kept_check);

/*
 * mig_kept_check(kept, read) ends a chunk of a backfill that keeps its old
 * values (kind_revert.c): it returns kept, the count of rows the chunk
 * changed and kept, if that is the count of rows it read; otherwise a row
 * was changed by another transaction between the chunk's read and its
 * UPDATE, and the chunk fails with a serialization failure, so that it is
 * rolled back and retried (with a new snapshot) like any transient error.
 */
Datum
mig_kept_check(PG_FUNCTION_ARGS)
{
	int64		kept = PG_GETARG_INT64(0);
	int64		read = PG_GETARG_INT64(1);

	if (kept != read)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not keep the old values of a chunk: " INT64_FORMAT " of its "
						INT64_FORMAT " rows changed while it ran",
						read - kept, read),
				 errdetail("Another transaction changed them after the chunk read them."),
				 errhint("The chunk is retried.")));
	PG_RETURN_INT64(kept);
}

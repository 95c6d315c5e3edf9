/*-------------------------------------------------------------------------
 *
 * job_store.c
 *	  All SPI on pg_mig's own tables (mig_job, mig_job_target,
 *	  mig_job_event).
 *
 * Ordinary roles have no privilege on these tables: the rules of who may
 * do what are enforced by the C functions that call this file.  Every
 * function here therefore runs its statements as the bootstrap superuser,
 * inside a security-restricted operation, with search_path pinned to
 * "pg_catalog, pg_temp" so that no object a user created can take part
 * (the same protection a SECURITY DEFINER function with SET search_path
 * gets), and with the guard on the tables open (guard.c): no other code
 * path may write them.  Callers must be in a transaction with an active snapshot; SPI
 * may or may not be connected (these functions connect their own level).
 * Results are allocated in the caller's memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "version_compat.h"


/* the memory context of the caller of the current store function */
static MemoryContext store_callerctx = NULL;

/*
 * The columns LoadJob reads, and their numbers in its result (as pg_cron's
 * Anum_cron_job_*): the job's identity, its knobs in knobs.def's order,
 * then its checkpoint and run-time figures.  No column is read by a bare
 * number.
 */
static const char job_columns[] =
	"job_id, relid, relation_name, set_clause, where_clause, search_path, owner, state, "
#define MIG_KNOB(name, kind, ctype, field, sqltype, unit, max, flags, setting, setting_var, sql_default, option, help) \
	#name ", "
#include "knobs.def"
#undef MIG_KNOB
	"target_ord, last_key, rows_done, keys_done, chunks_done, wal_bytes, retries, "
	"current_batch, throttled, settings, started_at, rows_per_sec, keys_per_sec, "
	"owner_name::pg_catalog.text, parallel";

enum
{
	Anum_mig_job_job_id = 1,
	Anum_mig_job_relid,
	Anum_mig_job_relation_name,
	Anum_mig_job_set_clause,
	Anum_mig_job_where_clause,
	Anum_mig_job_search_path,
	Anum_mig_job_owner,
	Anum_mig_job_state,
	Anum_mig_job_first_knob,	/* KNOB_COUNT knobs from here on */
	Anum_mig_job_target_ord = Anum_mig_job_first_knob + KNOB_COUNT,
	Anum_mig_job_last_key,
	Anum_mig_job_rows_done,
	Anum_mig_job_keys_done,
	Anum_mig_job_chunks_done,
	Anum_mig_job_wal_bytes,
	Anum_mig_job_retries,
	Anum_mig_job_current_batch,
	Anum_mig_job_throttled,
	Anum_mig_job_settings,
	Anum_mig_job_started_at,
	Anum_mig_job_rows_per_sec,
	Anum_mig_job_keys_per_sec,
	Anum_mig_job_owner_name,
	Anum_mig_job_parallel
};

/* the columns MigLoadTargets reads (of mig_job_target), and their numbers */
#define TARGET_COLUMNS \
	"ord, relid, relation_name, key_columns, upper_key, keys_estimate, " \
	"resolved_set_clause, resolved_where_clause"
enum
{
	Anum_mig_target_ord = 1,
	Anum_mig_target_relid,
	Anum_mig_target_relation_name,
	Anum_mig_target_key_columns,
	Anum_mig_target_upper_key,
	Anum_mig_target_keys_estimate,
	Anum_mig_target_resolved_set_clause,
	Anum_mig_target_resolved_where_clause
};

/* the columns MigInsertJob writes before the knobs ($1 to $11) */
#define INSERT_JOB_COLUMNS \
	"relid, relation_name, set_clause, where_clause, search_path, settings, owner, " \
	"keys_total, rows_total, owner_name, parallel"
#define INSERT_JOB_NARGS_BEFORE_KNOBS 11

/*
 * The statements the store runs on every chunk or job change, prepared
 * once per backend (SPI_prepare, SPI_keepplan) rather than planned again
 * each time; they are made again when the extension's schema is another
 * one (or renamed), since their text names it.
 */
typedef enum StoreStatement
{
	STMT_LOAD_JOB,
	STMT_LOAD_JOB_FOR_UPDATE,
	STMT_LOAD_JOB_FOR_SHARE,
	STMT_LOAD_TARGETS,
	STMT_INSERT_JOB,
	STMT_INSERT_TARGET,
	STMT_SAVE_CHECKPOINT,
	STMT_INSERT_EVENT,
	STMT_TRIM_EVENTS,
	STMT_SET_STATE,
	STMT_GET_STATE,
	STMT_CREATED_HERE,
	STMT_NOTIFY,
	STMT_LOAD_KIND,
	STMT_MARK_STEP_DONE,
	STMT_SET_TARGET_CLAUSES,
	STMT_LOAD_KEY,
	STMT_COUNT
} StoreStatement;

static SPIPlanPtr store_plans[STMT_COUNT];
static Oid	store_plans_schema = InvalidOid;
static char store_plans_schema_name[NAMEDATALEN];

/* StatementSql: the text of a store statement, the tables named as given */
static char *
StatementSql(StoreStatement which, const char *job, const char *target,
			 const char *event, int *nargs, Oid *types)
{
#define ARGS(...) \
	do { \
		Oid			t_[] = {__VA_ARGS__}; \
		*nargs = lengthof(t_); \
		memcpy(types, t_, sizeof(t_)); \
	} while (0)

	switch (which)
	{
		case STMT_LOAD_JOB:
		case STMT_LOAD_JOB_FOR_UPDATE:
		case STMT_LOAD_JOB_FOR_SHARE:
			ARGS(INT8OID);
			return psprintf("SELECT %s FROM %s WHERE job_id = $1%s", job_columns, job,
							which == STMT_LOAD_JOB_FOR_UPDATE ? " FOR UPDATE" :
							which == STMT_LOAD_JOB_FOR_SHARE ? " FOR SHARE" : "");
		case STMT_LOAD_TARGETS:
			ARGS(INT8OID);
			return psprintf("SELECT " TARGET_COLUMNS " FROM %s WHERE job_id = $1 ORDER BY ord",
							target);
		case STMT_INSERT_JOB:
			{
				StringInfoData sql;
				StringInfoData params;

				ARGS(OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, OIDOID,
					 INT8OID, INT8OID, TEXTOID, INT4OID);
				Assert(*nargs == INSERT_JOB_NARGS_BEFORE_KNOBS);
				initStringInfo(&sql);
				initStringInfo(&params);
				appendStringInfo(&sql, "INSERT INTO %s (" INSERT_JOB_COLUMNS, job);
				for (int i = 1; i <= *nargs; i++)
					appendStringInfo(&params, "%s$%d", i > 1 ? ", " : "", i);
				for (int k = 0; k < KNOB_COUNT; k++)
				{
					appendStringInfo(&sql, ", %s", MigKnobs[k].name);
					types[*nargs] = MigKnobs[k].type;
					appendStringInfo(&params, ", $%d", ++(*nargs));
				}
				appendStringInfo(&sql, ") VALUES (%s) RETURNING job_id", params.data);
				return sql.data;
			}
		case STMT_INSERT_TARGET:
			ARGS(INT8OID, INT4OID, OIDOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, INT8OID,
				 TEXTOID, TEXTOID);
			return psprintf("INSERT INTO %s (job_id, " TARGET_COLUMNS ")"
							" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", target);
		case STMT_SAVE_CHECKPOINT:
			ARGS(INT8OID, INT4OID, TEXTARRAYOID, INT8OID, INT8OID, INT8OID, INT4OID,
				 FLOAT8OID, FLOAT8OID);
			return psprintf("UPDATE %s SET target_ord = $2, last_key = $3,"
							" rows_done = rows_done + $4, keys_done = keys_done + $5,"
							" chunks_done = chunks_done + 1, wal_bytes = wal_bytes + $6,"
			/* refine the estimate from what the walk has found so far */
							" rows_total = CASE WHEN keys_total > 0 AND keys_done + $5 > 0 THEN"
							"  greatest(rows_done + $4, round((rows_done + $4)::numeric * keys_total"
							"  / greatest(keys_done + $5, 1))::bigint) ELSE rows_total END,"
							" current_batch = $7, rows_per_sec = $8, keys_per_sec = $9,"
							MIG_RATE_ANCHOR_SET
							" retries = 0, updated_at = now()"
							" WHERE job_id = $1", job);
		case STMT_INSERT_EVENT:
			ARGS(INT8OID, TEXTOID, TEXTOID);
			return psprintf("INSERT INTO %s (job_id, event, detail) VALUES ($1, $2, $3)",
							event);
		case STMT_TRIM_EVENTS:
			/* the index on (job_id, event_id) serves it */
			ARGS(INT8OID, INT4OID);
			return psprintf("DELETE FROM %1$s WHERE event_id OPERATOR(pg_catalog.=) ANY (ARRAY("
							" SELECT e.event_id FROM %1$s e"
							"  WHERE e.job_id OPERATOR(pg_catalog.=) $1"
							"    AND e.event_id OPERATOR(pg_catalog.<) (SELECT pg_catalog.max(m.event_id) FROM %1$s m"
							"                          WHERE m.job_id OPERATOR(pg_catalog.=) $1)"
							"  ORDER BY e.event OPERATOR(pg_catalog.=) ANY ('{throttled,unthrottled,changed,paced}'::pg_catalog.text[]) DESC,"
							"           e.event_id"
							"  LIMIT pg_catalog.int8larger((SELECT pg_catalog.count(*) FROM %1$s c"
							"                               WHERE c.job_id OPERATOR(pg_catalog.=) $1)"
							"                              OPERATOR(pg_catalog.-) $2, 0)))",
							event);
		case STMT_SET_STATE:
			/* $4: the state is final */
			ARGS(INT8OID, TEXTOID, TEXTOID, BOOLOID);
			return psprintf("UPDATE %s SET state = $2,"
							" last_error = COALESCE($3, last_error),"
							" started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, now())"
							"  ELSE started_at END,"
							" finished_at = CASE WHEN $4 THEN now() END,"
							" rows_total = CASE WHEN $2 = 'succeeded' THEN rows_done ELSE rows_total END,"
							" throttled = NULL, " MIG_STALL_END_SET ", updated_at = now()"
							" WHERE job_id = $1", job);
		case STMT_GET_STATE:
			ARGS(INT8OID);
			return psprintf("SELECT state FROM %s WHERE job_id = $1", job);
		case STMT_CREATED_HERE:
			ARGS(INT8OID);
			return psprintf("SELECT xmin::text FROM %s WHERE job_id = $1", job);
		case STMT_NOTIFY:
			ARGS(TEXTOID, TEXTOID);
			return pstrdup("SELECT pg_notify($1, $2)");
		case STMT_LOAD_KIND:
			ARGS(INT8OID);
			return psprintf("SELECT kind, kind_args, steps_done, step FROM %s WHERE job_id = $1",
							job);
		case STMT_MARK_STEP_DONE:
			ARGS(INT8OID, TEXTOID);
			return psprintf("UPDATE %s SET steps_done = steps_done || $2, retries = 0,"
							" updated_at = now() WHERE job_id = $1", job);
		case STMT_SET_TARGET_CLAUSES:
			ARGS(INT8OID, INT4OID, TEXTOID, TEXTOID);
			return psprintf("UPDATE %s SET resolved_set_clause = $3, resolved_where_clause = $4"
							" WHERE job_id = $1 AND ord = $2", target);
		case STMT_LOAD_KEY:
			ARGS(INT8OID);
			return psprintf("SELECT job_key, start_args FROM %s WHERE job_id = $1", job);
		case STMT_COUNT:
			break;
	}
#undef ARGS
	elog(ERROR, "unknown pg_mig store statement %d", (int) which);
	return NULL;
}

/*
 * StorePlan returns the prepared statement, preparing and keeping it the
 * first time.  Caller is between MigStoreEnter and MigStoreLeave.
 */
static SPIPlanPtr
StorePlan(StoreStatement which)
{
	Oid			schema = MigExtensionSchema();
	char	   *schema_name = get_namespace_name(schema);

	if (schema != store_plans_schema || schema_name == NULL ||
		strcmp(schema_name, store_plans_schema_name) != 0)
	{
		/* another schema, or renamed: every plan names the old one */
		for (int i = 0; i < STMT_COUNT; i++)
		{
			if (store_plans[i] != NULL)
				SPI_freeplan(store_plans[i]);
			store_plans[i] = NULL;
		}
		store_plans_schema = schema;
		strlcpy(store_plans_schema_name, schema_name ? schema_name : "",
				sizeof(store_plans_schema_name));
	}
	if (store_plans[which] == NULL)
	{
		Oid			types[INSERT_JOB_NARGS_BEFORE_KNOBS + KNOB_COUNT];
		int			nargs = 0;
		char	   *sql;
		SPIPlanPtr	plan;

		sql = StatementSql(which,
						   quote_qualified_identifier(schema_name, MIG_JOB_TABLE),
						   quote_qualified_identifier(schema_name, MIG_TARGET_TABLE),
						   quote_qualified_identifier(schema_name, MIG_EVENT_TABLE),
						   &nargs, types);
		plan = SPI_prepare(sql, nargs, types);
		if (plan == NULL)
			elog(ERROR, "could not prepare a pg_mig statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep a pg_mig statement");
		store_plans[which] = plan;
	}
	return store_plans[which];
}

static Oid	ExtensionSchema(Oid extoid);

/*
 * MigExtensionSchema returns the OID of the schema pg_mig is installed in,
 * or raises an error if it is not installed in this database.
 */
Oid
MigExtensionSchema(void)
{
	Oid			extoid = get_extension_oid(PG_MIG_EXTENSION_NAME, true);

	if (!OidIsValid(extoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"%s\" is not installed in this database",
						PG_MIG_EXTENSION_NAME),
				 errhint("Run CREATE EXTENSION pg_mig.")));
	return ExtensionSchema(extoid);
}

/*
 * MigRequireSchemaVersion raises an error unless the SQL objects of pg_mig
 * in this database are of the library's version: a library newer than its
 * tables (the package was upgraded and the server restarted, ALTER
 * EXTENSION UPDATE not yet run) must not read or write them, nor read the
 * arguments of an older SQL signature.  Every SQL-callable function that
 * reads the job tables or version-dependent arguments calls it first.
 * Caller is in a transaction.
 */
void
MigRequireSchemaVersion(void)
{
	char	   *version;

	(void) MigExtensionSchema();	/* the error for a missing extension */
	version = MigInstalledVersion();
	if (version == NULL || strcmp(version, PG_MIG_VERSION) != 0)
	{
		bool		older = version != NULL && MigVersionOlder(version, PG_MIG_VERSION);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is at version %s in this database, but its library is version %s",
						PG_MIG_EXTENSION_NAME, version ? version : "?", PG_MIG_VERSION),
				 older ?
				 errdetail("The jobs of this database wait until the extension is updated.") : 0,
				 older ?
				 errhint("Run ALTER EXTENSION pg_mig UPDATE.") :
				 errhint("Install the pg_mig %s library on the server and restart it.",
						 version ? version : "?")));
	}
}

/*
 * MigVersionOlder: version a ("0.3") is older than version b ("0.4"),
 * comparing the dot-separated numbers one by one.
 */
bool
MigVersionOlder(const char *a, const char *b)
{
	while (*a || *b)
	{
		long		x = strtol(a, (char **) &a, 10);
		long		y = strtol(b, (char **) &b, 10);

		if (x != y)
			return x < y;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
		if ((*a && !isdigit((unsigned char) *a)) || (*b && !isdigit((unsigned char) *b)))
			return strcmp(a, b) < 0;
	}
	return false;
}

/* ExtensionSchema: pg_extension.extnamespace of an extension */
static Oid
ExtensionSchema(Oid extoid)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			result = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		result = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * MigInstalledVersion returns the version of pg_mig's SQL objects in this
 * database (pg_extension.extversion), or NULL if it is not installed.
 */
char *
MigInstalledVersion(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *result = NULL;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(PG_MIG_EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			result = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * MigNoteUnfinishedJobs gives every queued or running job of this database
 * the note (MigSetNote) that mig_jobs shows while no worker runs it.  It
 * reads only columns that every version of mig_job has (job_id, state).
 * Caller is in a transaction, with a snapshot, search_path pinned.
 */
void
MigNoteUnfinishedJobs(const char *note)
{
	char	   *sql = psprintf("SELECT job_id FROM %s"
							   " WHERE state OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])",
							   MigQualifiedTable(MIG_JOB_TABLE));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list pg_mig jobs");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 1, &isnull));

		MigSetNote(MyDatabaseId, job_id, note);
	}
	SPI_finish();
}

/*
 * MigQualifiedTable returns the quoted, schema-qualified name of one of the
 * extension's tables.
 */
const char *
MigQualifiedTable(const char *table)
{
	char	   *schema = get_namespace_name(MigExtensionSchema());

	return quote_qualified_identifier(schema, table);
}

/*
 * MigStoreEnter switches to the bootstrap superuser in a security-restricted
 * operation with a pinned search_path, and connects SPI.  MigStoreLeave undoes
 * it.  An error in between is cleaned up by transaction abort.
 */
void
MigStoreEnter(MigStoreContext *sc)
{
	MigRequireSchemaVersion();
	store_callerctx = CurrentMemoryContext;
	GetUserIdAndSecContext(&sc->save_userid, &sc->save_sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   sc->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sc->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MigGuardOpen();
}

void
MigStoreLeave(MigStoreContext *sc)
{
	MigGuardClose();
	SPI_finish();
	AtEOXact_GUC(true, sc->save_nestlevel);
	SetUserIdAndSecContext(sc->save_userid, sc->save_sec_context);
}

/* MigTextColumn: column col (1-based) as a C string in the upper context, or NULL */
char *
MigTextColumn(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);
	char	   *s;
	MemoryContext old;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(store_callerctx);
	s = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return s;
}

/* MigTextArrayColumn: a text[] column as a List of C strings in the upper context */
List *
MigTextArrayColumn(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;
	MemoryContext old;

	if (isnull)
		return NIL;
	old = MemoryContextSwitchTo(store_callerctx);
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		result = lappend(result, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
	MemoryContextSwitchTo(old);
	return result;
}

Datum
MigCStringArrayDatum(int n, char **items)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

int64
MigInt64Column(HeapTuple tuple, TupleDesc desc, int col, Oid type)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	if (isnull)
		return 0;
	if (type == INT4OID)
		return DatumGetInt32(d);
	return DatumGetInt64(d);
}

/*
 * KnobColumnValue returns the value of knob k of the job for its column
 * of mig_job; *isnull says it is NULL, which an optional knob that is off
 * is (vacuum_every must be resolved first, see MigResolveVacuumEvery).
 */
static Datum
KnobColumnValue(const MigJob *job, MigKnob k, bool *isnull)
{
	bool		optional = (MigKnobs[k].flags & MIG_KNOB_OPTIONAL) != 0;

	*isnull = false;
	switch (MigKnobs[k].kind)
	{
		case MIG_KNOB_KIND_INT:
			{
				int			v = *MIG_KNOB_MEMBER(job, k, int);

				*isnull = optional && v <= 0;
				return Int32GetDatum(v);
			}
		case MIG_KNOB_KIND_BIGINT:
			{
				int64		v = *MIG_KNOB_MEMBER(job, k, int64);

				*isnull = optional && v <= 0;
				return Int64GetDatum(v);
			}
		case MIG_KNOB_KIND_INTERVAL:
			{
				int64		ms = *MIG_KNOB_MEMBER(job, k, int64);

				*isnull = optional && ms <= 0;
				return *isnull ? (Datum) 0 : MigMsToInterval(ms);
			}
		case MIG_KNOB_KIND_FLOAT:
			{
				double		v = *MIG_KNOB_MEMBER(job, k, double);

				*isnull = optional && v <= 0;
				return Float8GetDatum(v);
			}
		case MIG_KNOB_KIND_TEXT:
			{
				char	   *s = *MIG_KNOB_MEMBER(job, k, char *);

				*isnull = (s == NULL);
				return s ? CStringGetTextDatum(s) : (Datum) 0;
			}
		case MIG_KNOB_KIND_TEXT_ARRAY:
			{
				List	   *list = *MIG_KNOB_MEMBER(job, k, List *);
				char	  **items;
				int			n = 0;
				ListCell   *lc;

				*isnull = (list == NIL);
				if (list == NIL)
					return (Datum) 0;
				items = palloc(sizeof(char *) * list_length(list));
				foreach(lc, list)
					items[n++] = lfirst(lc);
				return MigCStringArrayDatum(n, items);
			}
		case MIG_KNOB_KIND_BOOL:
			return BoolGetDatum(*MIG_KNOB_MEMBER(job, k, bool));
	}
	return (Datum) 0;
}

/*
 * KnobFromColumn sets knob k of the job from its column of mig_job
 * (NULL: off, 0), allocating in cxt.
 */
static void
KnobFromColumn(MigJob *job, MigKnob k, Datum value, bool isnull, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	switch (MigKnobs[k].kind)
	{
		case MIG_KNOB_KIND_INT:
			*MIG_KNOB_MEMBER(job, k, int) = isnull ? 0 : DatumGetInt32(value);
			break;
		case MIG_KNOB_KIND_BIGINT:
			*MIG_KNOB_MEMBER(job, k, int64) = isnull ? 0 : DatumGetInt64(value);
			break;
		case MIG_KNOB_KIND_INTERVAL:
			*MIG_KNOB_MEMBER(job, k, int64) = isnull ? 0 : MigIntervalToMs(value);
			break;
		case MIG_KNOB_KIND_FLOAT:
			*MIG_KNOB_MEMBER(job, k, double) = isnull ? 0 : DatumGetFloat8(value);
			break;
		case MIG_KNOB_KIND_TEXT:
			*MIG_KNOB_MEMBER(job, k, char *) = isnull ? NULL : TextDatumGetCString(value);
			break;
		case MIG_KNOB_KIND_TEXT_ARRAY:
			{
				List	   *list = NIL;

				if (!isnull)
				{
					Datum	   *elems;
					bool	   *nulls;
					int			n;

					deconstruct_array(DatumGetArrayTypeP(value), TEXTOID, -1, false,
									  TYPALIGN_INT, &elems, &nulls, &n);
					for (int i = 0; i < n; i++)
						list = lappend(list, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
				}
				*MIG_KNOB_MEMBER(job, k, List *) = list;
			}
			break;
		case MIG_KNOB_KIND_BOOL:
			*MIG_KNOB_MEMBER(job, k, bool) = !isnull && DatumGetBool(value);
			break;
	}
	MemoryContextSwitchTo(old);
}

/*
 * MigLoadJob reads one job; with for_update, it also locks the job row
 * (the worker does so at the start of every chunk, which orders chunks and
 * job control: a pause committed before the lock is seen, one after it
 * waits for the chunk).  Returns NULL if there is no such job.
 */
static MigJob *LoadJob(int64 job_id, StoreStatement which);
static int64 LatestJobId(const char *sql, int nargs, Oid *argtypes, Datum *args,
						 const char *what);

MigJob *
MigLoadJob(int64 job_id, bool for_update)
{
	MigJob	   *job;

	if (!for_update)
		return LoadJob(job_id, STMT_LOAD_JOB);

	/*
	 * In a session: who asks for a job that does not exist, or may not even
	 * pause it, gets it unlocked and unannounced (the caller's control check
	 * refuses it): no role can hold the lanes of another role's job back.
	 */
	if (!AmBackgroundWorkerProcess())
	{
		job = LoadJob(job_id, STMT_LOAD_JOB);
		if (job == NULL || !MigCanControlJob(job->owner, job->relid, MIG_CONTROL_STOP))
			return job;
	}
	/* the lanes of a parallel job let it through (see MigAnnounceJobLock) */
	MigAnnounceJobLock(MyDatabaseId, job_id);
	job = LoadJob(job_id, STMT_LOAD_JOB_FOR_UPDATE);
	MigJobLockTaken();
	return job;
}

/*
 * MigLoadJobShared reads one job and locks its row FOR SHARE: what each
 * chunk of a lane of a parallel job does, so that the lanes run side by
 * side, while job control (which updates the row) still waits for the
 * chunks in progress, and the chunks after it see it.
 */
MigJob *
MigLoadJobShared(int64 job_id)
{
	return LoadJob(job_id, STMT_LOAD_JOB_FOR_SHARE);
}

static MigJob *
LoadJob(int64 job_id, StoreStatement which)
{
	MigStoreContext sc;
	Datum		args[1] = {Int64GetDatum(job_id)};
	MigJob	   *job = NULL;
	MemoryContext callerctx = CurrentMemoryContext;

	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(which), args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_mig job " INT64_FORMAT, job_id);
	if (SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		List	   *lastkey;

		job = MemoryContextAllocZero(callerctx, sizeof(MigJob));
		job->job_id = job_id;
		job->relid = DatumGetObjectId(SPI_getbinval(t, d, Anum_mig_job_relid, &isnull));
		job->relation_name = MigTextColumn(t, d, Anum_mig_job_relation_name);
		job->set_clause = MigTextColumn(t, d, Anum_mig_job_set_clause);
		job->where_clause = MigTextColumn(t, d, Anum_mig_job_where_clause);
		job->search_path = MigTextColumn(t, d, Anum_mig_job_search_path);
		job->owner = DatumGetObjectId(SPI_getbinval(t, d, Anum_mig_job_owner, &isnull));
		job->state = MigStateFromName(MigTextColumn(t, d, Anum_mig_job_state));
		for (int k = 0; k < KNOB_COUNT; k++)
		{
			Datum		v = SPI_getbinval(t, d, Anum_mig_job_first_knob + k, &isnull);

			KnobFromColumn(job, k, v, isnull, callerctx);
		}
		job->target_ord = (int) MigInt64Column(t, d, Anum_mig_job_target_ord, INT4OID);
		lastkey = MigTextArrayColumn(t, d, Anum_mig_job_last_key);
		job->nlast_key = list_length(lastkey);
		if (job->nlast_key > 0)
		{
			ListCell   *lc;
			int			i = 0;

			job->last_key = MemoryContextAlloc(callerctx,
											   sizeof(char *) * job->nlast_key);
			foreach(lc, lastkey)
				job->last_key[i++] = lfirst(lc);
		}
		job->rows_done = MigInt64Column(t, d, Anum_mig_job_rows_done, INT8OID);
		job->keys_done = MigInt64Column(t, d, Anum_mig_job_keys_done, INT8OID);
		job->chunks_done = MigInt64Column(t, d, Anum_mig_job_chunks_done, INT8OID);
		job->wal_bytes = MigInt64Column(t, d, Anum_mig_job_wal_bytes, INT8OID);
		job->retries = (int) MigInt64Column(t, d, Anum_mig_job_retries, INT4OID);
		job->current_batch = (int) MigInt64Column(t, d, Anum_mig_job_current_batch, INT4OID);
		job->throttled = MigTextColumn(t, d, Anum_mig_job_throttled);
		job->settings = MigTextArrayColumn(t, d, Anum_mig_job_settings);
		(void) SPI_getbinval(t, d, Anum_mig_job_started_at, &isnull);
		job->ever_started = !isnull;
		{
			Datum		v = SPI_getbinval(t, d, Anum_mig_job_rows_per_sec, &isnull);

			job->rows_per_sec = isnull ? 0 : DatumGetFloat8(v);
			v = SPI_getbinval(t, d, Anum_mig_job_keys_per_sec, &isnull);
			job->keys_per_sec = isnull ? 0 : DatumGetFloat8(v);
		}
		job->owner_name = MigTextColumn(t, d, Anum_mig_job_owner_name);
		job->parallel = Max((int) MigInt64Column(t, d, Anum_mig_job_parallel, INT4OID), 1);
	}
	MigStoreLeave(&sc);
	return job;
}

/*
 * MigLoadTargets returns the job's targets (List of MigTarget *) in order.
 */
List *
MigLoadTargets(int64 job_id)
{
	MigStoreContext sc;
	Datum		args[1] = {Int64GetDatum(job_id)};
	List	   *result = NIL;
	MemoryContext callerctx = CurrentMemoryContext;

	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_LOAD_TARGETS), args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the targets of pg_mig job " INT64_FORMAT, job_id);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		MigTarget  *target = MemoryContextAllocZero(callerctx, sizeof(MigTarget));
		List	   *keys;
		List	   *upper;
		MemoryContext old;

		target->ord = (int) MigInt64Column(t, d, Anum_mig_target_ord, INT4OID);
		target->relid = DatumGetObjectId(SPI_getbinval(t, d, Anum_mig_target_relid, &isnull));
		target->relation_name = MigTextColumn(t, d, Anum_mig_target_relation_name);
		keys = MigTextArrayColumn(t, d, Anum_mig_target_key_columns);
		upper = MigTextArrayColumn(t, d, Anum_mig_target_upper_key);
		target->keys_estimate = MigInt64Column(t, d, Anum_mig_target_keys_estimate, INT8OID);
		target->set_clause = MigTextColumn(t, d, Anum_mig_target_resolved_set_clause);
		target->where_clause = MigTextColumn(t, d, Anum_mig_target_resolved_where_clause);
		target->nkeys = list_length(keys);
		old = MemoryContextSwitchTo(callerctx);
		target->key_columns = palloc(sizeof(char *) * target->nkeys);
		for (int i = 0; i < target->nkeys; i++)
			target->key_columns[i] = list_nth(keys, i);
		if (upper != NIL)
		{
			target->upper_key = palloc(sizeof(char *) * target->nkeys);
			for (int i = 0; i < target->nkeys; i++)
				target->upper_key[i] = list_nth(upper, i);
		}
		result = lappend(result, target);
		MemoryContextSwitchTo(old);
	}
	MigStoreLeave(&sc);
	return result;
}

/*
 * MigFindActiveJobOn returns the id of a job that blocks a new one on one
 * of the given relations (as its table or a target), or 0: a queued,
 * running or paused job, and a failed one that could not be exactly once
 * beside another walk of the same rows (contract 0.4).  A failed job does
 * not block once it was forgotten (mig_forget), nor when it is a schema
 * step that left nothing behind: a not_null, validate or index job (its
 * undo step dropped what it made), or a foreign_key job whose orphan walk
 * only counts (orphans => 'fail').
 */
int64
MigFindActiveJobOn(List *relids)
{
	return MigFindOtherActiveJobOn(relids, 0);
}

/*
 * MigFindChangeTypeJobOf: the newest change_type job, not forgotten, that
 * added column name (its new column, or its old one kept after the swap)
 * for column column of table relid: the job's own column (new_column= or
 * old_column= name among its kind_args) or a referencing column it
 * converts (a ref<i>= of table relid and column column); 0 if none.
 */
int64
MigFindChangeTypeJobOf(Oid relid, const char *column, const char *name)
{
	Oid			argtypes[4] = {OIDOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[4] = {ObjectIdGetDatum(relid),
		CStringGetTextDatum(psprintf("new_column=%s", name)),
		CStringGetTextDatum(psprintf("old_column=%s", name)),
	CStringGetTextDatum(column)};
	char	   *sql;

	sql = psprintf("SELECT j.job_id FROM %s j"
				   " WHERE j.kind = 'change_type'"
				   " AND NOT EXISTS (SELECT FROM unnest(j.kind_args) a WHERE a LIKE 'forgotten=%%')"
				   " AND ((j.relid = $1 AND ($2 = ANY (j.kind_args) OR $3 = ANY (j.kind_args)))"
				   "      OR EXISTS (SELECT FROM unnest(j.kind_args) a"
				   "                 WHERE a ~ '^ref[0-9]+='"
				   "                 AND split_part(substr(a, strpos(a, '=') + 1), ':', 1) = $1::text"
				   "                 AND right(a, length($4) + 1) = ':' || $4))"
				   " ORDER BY j.job_id DESC LIMIT 1",
				   MigQualifiedTable(MIG_JOB_TABLE));
	return LatestJobId(sql, 4, argtypes, args, "a change_type job");
}

/* MigFindOtherActiveJobOn: MigFindActiveJobOn, job except left out */
int64
MigFindOtherActiveJobOn(List *relids, int64 except)
{
	char	   *sql;
	Datum	   *elems;
	ListCell   *lc;
	int			n = 0;
	Oid			argtypes[2] = {OIDARRAYOID, INT8OID};
	Datum		args[2];

	args[1] = Int64GetDatum(except);
	elems = palloc(sizeof(Datum) * Max(list_length(relids), 1));
	foreach(lc, relids)
		elems[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	args[0] = PointerGetDatum(construct_array(elems, n, OIDOID, sizeof(Oid),
											  true, TYPALIGN_INT));
	/* a job of schema steps has no targets: LEFT JOIN */
	sql = psprintf("SELECT j.job_id FROM %s j LEFT JOIN %s t USING (job_id)"
				   " WHERE (j.state IN ('queued', 'running', 'paused')"
				   "  OR (j.state = 'failed'"
				   "   AND NOT EXISTS (SELECT FROM unnest(j.kind_args) a"
				   "                   WHERE a LIKE 'forgotten=%%')"
				   "   AND NOT (j.kind IN ('not_null', 'validate', 'index', 'repack')"
				   "            OR (j.kind = 'foreign_key'"
				   "                AND 'orphans=fail' = ANY (j.kind_args)))))"
				   " AND (t.relid = ANY ($1) OR j.relid = ANY ($1))"
				   " AND j.job_id <> $2"
				   " ORDER BY j.job_id LIMIT 1",
				   MigQualifiedTable(MIG_JOB_TABLE),
				   MigQualifiedTable(MIG_TARGET_TABLE));
	return LatestJobId(sql, 2, argtypes, args, "active pg_mig jobs");
}

/*
 * MigInsertJob records a new job, in state queued, with its targets, and
 * returns its id.  Its knobs are stored as knobs.def says (an optional
 * limit that is off as NULL), vacuum_every resolved (MigResolveVacuumEvery).
 */
int64
MigInsertJob(const MigJob *job, List *targets)
{
	MigStoreContext sc;
	MigJob		stored = *job;
	Datum		values[INSERT_JOB_NARGS_BEFORE_KNOBS + KNOB_COUNT];
	char		nulls[INSERT_JOB_NARGS_BEFORE_KNOBS + KNOB_COUNT];
	int			n = 0;
	int64		job_id;
	ListCell   *lc;
	bool		isnull;
	char	  **settings;
	int			nsettings = 0;

#define ARG(value, null) \
	do { values[n] = (value); nulls[n] = (null) ? 'n' : ' '; n++; } while (0)

	settings = palloc(sizeof(char *) * Max(list_length(job->settings), 1));
	foreach(lc, job->settings)
		settings[nsettings++] = lfirst(lc);

	/* INSERT_JOB_COLUMNS */
	ARG(ObjectIdGetDatum(job->relid), false);
	ARG(CStringGetTextDatum(job->relation_name), false);
	ARG(job->set_clause ? CStringGetTextDatum(job->set_clause) : 0,
		job->set_clause == NULL);	/* NULL: a delete or schema-step job */
	ARG(job->where_clause ? CStringGetTextDatum(job->where_clause) : 0,
		job->where_clause == NULL);
	ARG(CStringGetTextDatum(job->search_path), false);
	ARG(MigCStringArrayDatum(nsettings, settings), false);
	ARG(ObjectIdGetDatum(job->owner), false);
	ARG(Int64GetDatum(job->keys_total), job->keys_total < 0);
	ARG(Int64GetDatum(job->rows_total), job->rows_total < 0);
	ARG(CStringGetTextDatum(job->owner_name), false);
	ARG(Int32GetDatum(Max(job->parallel, 1)), false);
	Assert(n == INSERT_JOB_NARGS_BEFORE_KNOBS);
	/* then the knobs */
	stored.vacuum_every = MigResolveVacuumEvery(job, targets);
	for (int k = 0; k < KNOB_COUNT; k++)
	{
		Datum		v = KnobColumnValue(&stored, k, &isnull);

		ARG(v, isnull);
	}
#undef ARG
	Assert(n == lengthof(values));

	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_INSERT_JOB), values, nulls, false, 1)
		!= SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not record the pg_mig job");
	job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));

	foreach(lc, targets)
	{
		MigTarget  *target = lfirst(lc);
		Datum		tvalues[9];
		char		tnulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		tvalues[0] = Int64GetDatum(job_id);
		tvalues[Anum_mig_target_ord] = Int32GetDatum(target->ord);
		tvalues[Anum_mig_target_relid] = ObjectIdGetDatum(target->relid);
		tvalues[Anum_mig_target_relation_name] = CStringGetTextDatum(target->relation_name);
		tvalues[Anum_mig_target_key_columns] =
			MigCStringArrayDatum(target->nkeys, target->key_columns);
		if (target->upper_key)
			tvalues[Anum_mig_target_upper_key] =
				MigCStringArrayDatum(target->nkeys, target->upper_key);
		else
			tnulls[Anum_mig_target_upper_key] = 'n';
		tvalues[Anum_mig_target_keys_estimate] = Int64GetDatum(target->keys_estimate);
		if (target->set_clause == NULL && job->set_clause != NULL)
			elog(ERROR, "the clauses of target %d were not resolved", target->ord);
		if (target->set_clause)
			tvalues[Anum_mig_target_resolved_set_clause] =
				CStringGetTextDatum(target->set_clause);
		else
			tnulls[Anum_mig_target_resolved_set_clause] = 'n';
		if (target->where_clause)
			tvalues[Anum_mig_target_resolved_where_clause] =
				CStringGetTextDatum(target->where_clause);
		else
			tnulls[Anum_mig_target_resolved_where_clause] = 'n';
		if (SPI_execute_plan(StorePlan(STMT_INSERT_TARGET), tvalues, tnulls, false, 0)
			!= SPI_OK_INSERT)
			elog(ERROR, "could not record a target of the pg_mig job");
	}
	MigStoreLeave(&sc);
	return job_id;
}

/*
 * MigCheckpointArgs fills arguments $3 to $9 of a checkpoint's UPDATE (of
 * the job row, or of a lane's row in lanes.c): the last key, the chunk's
 * rows, keys and WAL, the batch size and the rates.
 */
void
MigCheckpointArgs(const MigCheckpoint *cp, Datum *values, char *nulls)
{
	if (cp->nlast_key > 0)
		values[2] = MigCStringArrayDatum(cp->nlast_key, cp->last_key);
	else
		nulls[2] = 'n';
	values[3] = Int64GetDatum(cp->rows);
	values[4] = Int64GetDatum(cp->keys);
	values[5] = Int64GetDatum(cp->wal_bytes);
	values[6] = Int32GetDatum(cp->current_batch);
	values[7] = Float8GetDatum(cp->rows_per_sec);
	values[8] = Float8GetDatum(cp->keys_per_sec);
}

/*
 * MigSaveCheckpoint records one chunk: the new position, the counters and
 * the run-time figures.  It must run in the chunk's own transaction: that
 * is what makes each chunk happen exactly once.
 */
void
MigSaveCheckpoint(int64 job_id, const MigCheckpoint *cp)
{
	MigStoreContext sc;
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(cp->target_ord);
	MigCheckpointArgs(cp, values, nulls);

	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_SAVE_CHECKPOINT), values, nulls, false, 0)
		!= SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "could not record the checkpoint of pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);
}

/*
 * MigRecordEvent appends one row to the job's history.  A job keeps at most
 * pg_mig.max_events_per_job events: over that, the oldest events of the
 * kinds that repeat (throttled, unthrottled, changed) are deleted first,
 * then the oldest of any kind; the new event always stays.
 */
void
MigRecordEvent(int64 job_id, const char *event, const char *detail)
{
	MigStoreContext sc;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Datum		rvalues[2] = {Int64GetDatum(job_id), Int32GetDatum(mig_max_events_per_job)};

	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum(event);
	if (detail)
		values[2] = CStringGetTextDatum(detail);
	else
		nulls[2] = 'n';
	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_INSERT_EVENT), values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record an event of pg_mig job " INT64_FORMAT, job_id);
	/* retention */
	if (SPI_execute_plan(StorePlan(STMT_TRIM_EVENTS), rvalues, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not trim the events of pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);
}

/*
 * MigSetState moves a job to a new state and sends a notification on the
 * pg_mig channel ("<job_id> <state>") that is delivered at commit.
 * last_error, if not NULL, replaces the job's last error.  Entering running
 * sets started_at the first time; entering a final state sets finished_at;
 * leaving it (mig_resume of a failed job) clears it.
 */
void
MigSetState(int64 job_id, MigJobState state, const char *last_error)
{
	MigStoreContext sc;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		finished = (state == MIG_STATE_SUCCEEDED ||
							state == MIG_STATE_FAILED ||
							state == MIG_STATE_CANCELLED);

	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum(MigStateName(state));
	if (last_error)
		values[2] = CStringGetTextDatum(last_error);
	else
		nulls[2] = 'n';
	values[3] = BoolGetDatum(finished);
	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_SET_STATE), values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not change the state of pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);
	MigNotify(job_id, MigStateName(state));
}

/*
 * MigSetRetries records how many times the current chunk was retried and
 * why (last_error NULL: keep the last error).
 */
void
MigSetRetries(int64 job_id, int retries, const char *last_error)
{
	const char *cols[2] = {"retries", "last_error"};
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2] = {Int32GetDatum(retries), 0};
	bool		nulls[2] = {false, false};

	if (last_error)
		values[1] = CStringGetTextDatum(last_error);
	MigSetJobColumns(job_id, last_error ? 2 : 1, cols, types, values, nulls);
}

/*
 * MigSetThrottled records why the job waits (NULL: it runs freely).
 */
void
MigSetThrottled(int64 job_id, const char *reason)
{
	const char *cols[1] = {"throttled"};
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {reason ? CStringGetTextDatum(reason) : (Datum) 0};
	bool		nulls[1] = {reason == NULL};

	MigSetJobColumns(job_id, 1, cols, types, values, nulls);
}

/*
 * MigSetJobColumns sets some columns of the job row (mig_set, mig_resume).
 * The column names come from the caller's code, never from the user.
 */
void
MigSetJobColumns(int64 job_id, int ncols, const char **columns,
				 const Oid *types, const Datum *values, const bool *isnull)
{
	MigStoreContext sc;
	StringInfoData sql;
	Oid		   *argtypes = palloc(sizeof(Oid) * (ncols + 1));
	Datum	   *args = palloc(sizeof(Datum) * (ncols + 1));
	char	   *nulls = palloc(sizeof(char) * (ncols + 1));

	if (ncols == 0)
		return;
	initStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s SET updated_at = now()",
					 MigQualifiedTable(MIG_JOB_TABLE));
	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(job_id);
	nulls[0] = ' ';
	for (int i = 0; i < ncols; i++)
	{
		appendStringInfo(&sql, ", %s = $%d", quote_identifier(columns[i]), i + 2);
		argtypes[i + 1] = types[i];
		args[i + 1] = values[i];
		nulls[i + 1] = isnull[i] ? 'n' : ' ';
	}
	appendStringInfoString(&sql, " WHERE job_id = $1");
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql.data, ncols + 1, argtypes, args, nulls, false, 0)
		!= SPI_OK_UPDATE)
		elog(ERROR, "could not change pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);
}

/*
 * MigGetState returns the job's state name with a fresh snapshot of its
 * own, or NULL if there is no such job.  mig_wait calls it in a loop.
 */
char *
MigGetState(int64 job_id)
{
	MigStoreContext sc;
	Datum		args[1] = {Int64GetDatum(job_id)};
	char	   *result = NULL;

	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_GET_STATE), args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_mig job " INT64_FORMAT, job_id);
	if (SPI_processed == 1)
		result = MigTextColumn(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	MigStoreLeave(&sc);
	return result;
}

/*
 * MigJobCreatedHere: the job row was inserted by the current transaction
 * (so no worker can see it before commit).
 */
bool
MigJobCreatedHere(int64 job_id)
{
	MigStoreContext sc;
	Datum		args[1] = {Int64GetDatum(job_id)};
	bool		result = false;

	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_CREATED_HERE), args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_mig job " INT64_FORMAT, job_id);
	if (SPI_processed == 1)
	{
		char	   *xmin = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		result = TransactionIdIsCurrentTransactionId((TransactionId) strtoul(xmin, NULL, 10));
	}
	MigStoreLeave(&sc);
	return result;
}

/*
 * MigNotify sends "<job_id> <state>" on the pg_mig channel at commit, so a
 * controller can follow jobs without polling hard.
 */
void
MigNotify(int64 job_id, const char *state)
{
	MigStoreContext sc;
	Datum		values[2];

	values[0] = CStringGetTextDatum(PG_MIG_NOTIFY_CHANNEL);
	values[1] = CStringGetTextDatum(psprintf(INT64_FORMAT " %s", job_id, state));
	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_NOTIFY), values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not notify about pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);
}

/* ---------------------------------------------------------------------
 * Job kinds (0.3): the kind, its arguments and the schema steps done.
 * ---------------------------------------------------------------------
 */

/*
 * JobTableHasColumn: whether the job table has the column (an older
 * version's SQL objects may not, while an update is in flight).  Caller is
 * in a transaction.
 */
static bool
JobTableHasColumn(const char *attname)
{
	Oid			jobrel = get_relname_relid(MIG_JOB_TABLE, MigExtensionSchema());

	return OidIsValid(jobrel) && get_attnum(jobrel, attname) != InvalidAttrNumber;
}

/*
 * MigLoadJobKind fills in the kind fields of a job read by MigLoadJob.
 */
void
MigLoadJobKind(MigJob *job)
{
	MigStoreContext sc;
	Datum		args[1] = {Int64GetDatum(job->job_id)};

	/* under the SQL of 0.1 or 0.2 (an update in flight) every job is a backfill */
	job->kind = MIG_KIND_BACKFILL;
	if (!JobTableHasColumn("kind"))
		return;
	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_LOAD_KIND), args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_mig job " INT64_FORMAT, job->job_id);
	if (SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;

		job->kind = MigKindFromName(MigTextColumn(t, d, 1));
		job->kind_args = MigTextArrayColumn(t, d, 2);
		job->steps_done = MigTextArrayColumn(t, d, 3);
		job->step = MigTextColumn(t, d, 4);
	}
	MigStoreLeave(&sc);
}

/*
 * MigSetJobKind records the kind of a job just inserted, and its
 * arguments (List of char * "name=value").
 */
void
MigSetJobKind(int64 job_id, MigJobKind kind, List *kind_args)
{
	const char *cols[2] = {"kind", "kind_args"};
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	bool		nulls[2] = {false, false};
	char	  **items = palloc(sizeof(char *) * Max(list_length(kind_args), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, kind_args)
		items[n++] = lfirst(lc);
	values[0] = CStringGetTextDatum(MigKindName(kind));
	values[1] = MigCStringArrayDatum(n, items);
	MigSetJobColumns(job_id, 2, cols, types, values, nulls);
}

/*
 * MigSetStep records what the job does now, in words (NULL: nothing).
 */
void
MigSetStep(int64 job_id, const char *step)
{
	const char *cols[1] = {"step"};
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {step ? CStringGetTextDatum(step) : (Datum) 0};
	bool		nulls[1] = {step == NULL};

	MigSetJobColumns(job_id, 1, cols, types, values, nulls);
}

/*
 * MigMarkStepDone appends a step's name to the job's steps_done.  It runs
 * in the step's own transaction, so a step is recorded exactly when its
 * effect commits.
 */
void
MigMarkStepDone(int64 job_id, const char *step_name)
{
	MigStoreContext sc;
	Datum		values[2];

	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum(step_name);
	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_MARK_STEP_DONE), values, NULL, false, 0) != SPI_OK_UPDATE
		|| SPI_processed != 1)
		elog(ERROR, "could not record a step of pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);
}

/*
 * MigSetTargetClauses records the resolved clauses of one target (for a
 * job started by 0.2, which the worker resolves when it first starts).
 */
void
MigSetTargetClauses(int64 job_id, const MigTarget *target)
{
	MigStoreContext sc;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(target->ord);
	if (target->set_clause)
		values[2] = CStringGetTextDatum(target->set_clause);
	else
		nulls[2] = 'n';
	if (target->where_clause)
		values[3] = CStringGetTextDatum(target->where_clause);
	else
		nulls[3] = 'n';
	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_SET_TARGET_CLAUSES), values, nulls, false, 0)
		!= SPI_OK_UPDATE)
		elog(ERROR, "could not record the clauses of pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);
}

/*
 * LatestJobId runs sql (one job_id column; nargs parameters) against the
 * latest committed state, whatever the caller's isolation level (a job
 * committed while the caller waited for a start lock must be seen), and
 * returns the job_id of its first row, or 0.  what names the look in an
 * error.
 */
static int64
LatestJobId(const char *sql, int nargs, Oid *argtypes, Datum *args, const char *what)
{
	MigStoreContext sc;
	SPIPlanPtr	plan;
	int64		result = 0;

	MigStoreEnter(&sc);
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare the look for %s", what);
	if (SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(),
							 InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look for %s", what);
	if (SPI_processed == 1)
	{
		bool		isnull;

		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	}
	MigStoreLeave(&sc);
	return result;
}

/*
 * MigFindJobByKey returns the id of the job that holds job_key, or 0.  It
 * reads the latest committed state (like MigFindActiveJobOn): the caller
 * holds the key's lock (MigLockJobKey), so a job that got the key while it
 * waited is seen.
 */
int64
MigFindJobByKey(const char *job_key)
{
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(job_key)};

	sql = psprintf("SELECT job_id FROM %s WHERE job_key = $1",
				   MigQualifiedTable(MIG_JOB_TABLE));
	return LatestJobId(sql, 1, argtypes, args, "a pg_mig job key");
}

/*
 * MigFindFailedTwin returns the id of a failed job of the same kind, on the
 * same table, started with the same start_args, that holds no key and was
 * not forgotten (the newest, if several), or 0.
 */
int64
MigFindFailedTwin(MigJobKind kind, Oid relid, List *start_args)
{
	char	   *sql;
	Oid			argtypes[3] = {TEXTOID, OIDOID, TEXTARRAYOID};
	Datum		args[3];
	char	  **items = palloc(sizeof(char *) * Max(list_length(start_args), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, start_args)
		items[n++] = lfirst(lc);
	args[0] = CStringGetTextDatum(MigKindName(kind));
	args[1] = ObjectIdGetDatum(relid);
	args[2] = MigCStringArrayDatum(n, items);
	sql = psprintf("SELECT job_id FROM %s j WHERE state = 'failed' AND kind = $1"
				   " AND relid = $2 AND start_args = $3 AND job_key IS NULL"
				   " AND NOT EXISTS (SELECT FROM unnest(j.kind_args) a"
				   " WHERE a LIKE 'forgotten=%%')"
				   " ORDER BY job_id DESC LIMIT 1",
				   MigQualifiedTable(MIG_JOB_TABLE));
	return LatestJobId(sql, 3, argtypes, args, "a failed pg_mig job");
}

/* MigLoadJobKey fills in the job's job_key and start_args */
void
MigLoadJobKey(MigJob *job)
{
	MigStoreContext sc;
	Datum		args[1] = {Int64GetDatum(job->job_id)};

	/* under the SQL of 0.3 (an update in flight) no job has a key */
	job->job_key = NULL;
	job->start_args = NIL;
	if (!JobTableHasColumn("job_key"))
		return;
	MigStoreEnter(&sc);
	if (SPI_execute_plan(StorePlan(STMT_LOAD_KEY), args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_mig job " INT64_FORMAT, job->job_id);
	if (SPI_processed == 1)
	{
		job->job_key = MigTextColumn(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		job->start_args = MigTextArrayColumn(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	MigStoreLeave(&sc);
}

/*
 * MigSetJobKey records a job's key (NULL: none, or released) and, unless
 * NIL, the arguments it was started with.
 */
void
MigSetJobKey(int64 job_id, const char *job_key, List *start_args)
{
	const char *cols[2] = {"job_key", "start_args"};
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	bool		nulls[2];
	char	  **items = palloc(sizeof(char *) * Max(list_length(start_args), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, start_args)
		items[n++] = lfirst(lc);
	values[0] = job_key ? CStringGetTextDatum(job_key) : (Datum) 0;
	nulls[0] = (job_key == NULL);
	values[1] = MigCStringArrayDatum(n, items);
	nulls[1] = false;
	MigSetJobColumns(job_id, start_args != NIL ? 2 : 1, cols, types, values, nulls);
}

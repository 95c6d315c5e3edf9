/*-------------------------------------------------------------------------
 *
 * kind_change_type.c
 *	  The change_type kind (mig_change_type): the type of a column changed
 *	  without the rewrite under ACCESS EXCLUSIVE that ALTER COLUMN TYPE
 *	  does (issue 25, contract 0.4 "Online column type change").
 *
 * The recipe:
 *
 *	  at start		 (the caller's transaction, the table's ACCESS EXCLUSIVE
 *					 lock taken under lock_timeout, retried) add the new
 *					 column mig_new_<col> (nullable, no default) and a
 *					 BEFORE INSERT OR UPDATE trigger that keeps it
 *					 equal to using_expr; the walk's targets are fixed after
 *					 the trigger is there, so every row is either walked or
 *					 written through the trigger
 *	  walk			 the rows already there, by the engine of a backfill
 *					 (chunked, throttled, exactly once, resumable): the set
 *					 clause is mig_new_<col> = (using_expr)
 *	  check_not_null the old column is NOT NULL: ADD CONSTRAINT ... CHECK
 *					 (new IS NOT NULL) NOT VALID (done at start, under the
 *					 lock that adds the column; the step is there for a job
 *					 whose check was dropped since)
 *	  validate_not_null	 VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE)
 *	  copy_indexes	 every index that contains the column (key, expression,
 *					 predicate; the primary key's and unique constraints'
 *					 too) built again on the new column CONCURRENTLY, as
 *					 mig_ct_<oid of the index>; an INVALID leftover of an
 *					 interrupted build is dropped first
 *	  add_constraints the foreign keys that reference the column (from
 *					 other tables, or from another column of the table) and
 *					 the column's own checks and foreign keys added again
 *					 on the new column NOT VALID, as mig_ct_con_<oid>
 *	  validate_constraints  each twin validated, in a transaction of its own
 *	  swap			 one transaction under lock_timeout, the table and then
 *					 the referencing tables locked: the original
 *					 constraints dropped and their twins given their
 *					 names, SET NOT NULL (the
 *					 valid check proves it, no scan), the default, the
 *					 sequence's ownership (an integer sequence made AS the
 *					 new type) or the identity with its sequence (made AS
 *					 the new type, continuing where it was: MoveIdentity),
 *					 the primary key and unique constraints
 *					 (USING INDEX, under their names), the indexes' names,
 *					 the columns' names, and the trigger turned around: the
 *					 old column (now mig_old_<col>) follows the new one, and
 *					 gets NULL where its type cannot hold the value
 *	  cleanup		 with cleanup => true: drop the trigger, its function and
 *					 the old column (with its indexes)
 *
 * A change that is only a catalog change in PostgreSQL (varchar(50) to
 * varchar(100), varchar to text, ...) is the plain ALTER COLUMN TYPE as
 * the one step alter, under lock_timeout with retries.
 *
 * Revert (mig_revert, sql_undo.c; contract 0.4): after the swap, until the
 * old column is dropped, a job is swapped back by a new change_type job,
 * owned by the job's owner, whose arguments are the job's turned around:
 * the column is the one of the new type, the "new" column is the old one
 * (mig_old_<col>, at the column's original number, so the column's place
 * in the table comes back too), the new type the old one.  It runs the
 * same steps: no walk (the job's turned-around trigger keeps the old
 * column equal, NULL where a value does not fit, which is why the revert
 * refuses at start with the count of those rows), NOT NULL through a
 * validated check, the indexes copied CONCURRENTLY (a plain index the
 * job's swap kept on the old column, renamed mig_ct_old_<oid>, is renamed
 * back instead where it is valid and builds the same copy), the foreign
 * keys of other tables twinned NOT VALID and validated, the same swap
 * (SwapColumn and RunSwap, with the trigger the job made: its name is in
 * the argument trigger_attnum), and the cleanup drops the column of the
 * new type, records 'reverted' on the job and releases its job_key.  A new
 * job rather than steps appended to the job: the job stays as it ended
 * (succeeded), the revert has its own knobs, state, events and control,
 * and one engine resumes it after a kill, a crash or a failover.  The
 * sequence stays AS the new type (bigint), which is harmless; an
 * identity's goes back with the identity, AS the old type (MoveIdentity;
 * refused at start while its last value does not fit: CheckIdentityFits).
 *
 * The start function, mig_change_type, is at the end of the file.
 *
 * Everything the job names is resolved at start: the column by its number,
 * the types by their OIDs (stored as their qualified names), the
 * expression through the walk's resolved set clause (every name
 * qualified); the trigger function runs with search_path pg_catalog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "common/pg_prng.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/partition.h"
#include "catalog/pg_am.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "commands/tablespace.h"
#include "rewrite/rewriteHandler.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "parser/parse_type.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "parse_check.h"
#include "pg_mig.h"
#include "start.h"
#include "steps.h"
#include "version_compat.h"

#define START_RETRY_BASE_MS	100
#define START_RETRY_MAX_MS	5000

static const char *
Arg(const MigJob *job, const char *name)
{
	const char *value = MigKindArg(job, name);

	if (value == NULL)
		elog(ERROR, "pg_mig change_type job " INT64_FORMAT " has no argument %s",
			 job->job_id, name);
	return value;
}

/* ArgOr: the argument, or otherwise (a catalog-only job has fewer) */
static const char *
ArgOr(const MigJob *job, const char *name, const char *otherwise)
{
	const char *value = MigKindArg(job, name);

	return value ? value : otherwise;
}

static bool
ArgIsTrue(const MigJob *job, const char *name)
{
	const char *value = MigKindArg(job, name);

	return value != NULL && strcmp(value, "true") == 0;
}

static AttrNumber
AttArg(const MigJob *job, const char *name)
{
	return (AttrNumber) atoi(Arg(job, name));
}

/* ColumnNameOf: the current name of column attnum of table relid, quoted */
static const char *
ColumnNameOf(Oid relid, AttrNumber attnum)
{
	char	   *name = get_attname(relid, attnum, true);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column %d of table %s was dropped while the job ran",
						attnum, get_rel_name(relid))));
	return quote_identifier(name);
}

/* ColumnName: the current name of column attnum of the job's table, quoted */
static const char *
ColumnName(const MigJob *job, AttrNumber attnum)
{
	return ColumnNameOf(job->relid, attnum);
}

/* TruncatedName: prefix || name, cut to fit NAMEDATALEN */
static char *
TruncatedName(const char *prefix, const char *name)
{
	char	   *result = psprintf("%s%s", prefix, name);

	if (strlen(result) >= NAMEDATALEN)
		result[pg_mbcliplen(result, strlen(result), NAMEDATALEN - 1)] = '\0';
	return result;
}

static char *
CopyIndexName(Oid indexoid)
{
	return psprintf("mig_ct_%u", indexoid);
}

static char *
OldIndexName(Oid indexoid)
{
	return psprintf("mig_ct_old_%u", indexoid);
}

/*
 * ExprUsesAttnum: expression node (of an index, varno 1) reads column
 * attnum.
 */
static bool
ExprUsesAttnumWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varattno == *(AttrNumber *) context ||
			((Var *) node)->varattno == 0;
	return expression_tree_walker(node, ExprUsesAttnumWalker, context);
}

static bool
ExprUsesAttnum(Node *node, AttrNumber attnum)
{
	return ExprUsesAttnumWalker(node, &attnum);
}

typedef struct SwapVarContext
{
	AttrNumber	from;
	AttrNumber	to;
} SwapVarContext;

static Node *
SwapVarMutator(Node *node, void *context)
{
	SwapVarContext *ctx = context;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) copyObject(node);

		/* ruleutils prints the syntactic referent: both change */
		if (var->varattno == ctx->from)
			var->varattno = ctx->to;
		if (var->varattnosyn == ctx->from)
			var->varattnosyn = ctx->to;
		return (Node *) var;
	}
	return expression_tree_mutator(node, SwapVarMutator, context);
}

/*
 * IndexUsesColumn: index indexoid contains column attnum, as a key or
 * included column, in an expression or in its predicate.
 */
static bool
IndexUsesColumn(Oid indexoid, AttrNumber attnum)
{
	HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	Form_pg_index form;
	bool		uses = false;
	bool		isnull;
	Datum		d;

	if (!HeapTupleIsValid(tuple))
		return false;
	form = (Form_pg_index) GETSTRUCT(tuple);
	for (int i = 0; i < form->indnatts; i++)
		if (form->indkey.values[i] == attnum)
			uses = true;
	d = SysCacheGetAttr(INDEXRELID, tuple, Anum_pg_index_indexprs, &isnull);
	if (!uses && !isnull)
		uses = ExprUsesAttnum(stringToNode(TextDatumGetCString(d)), attnum);
	d = SysCacheGetAttr(INDEXRELID, tuple, Anum_pg_index_indpred, &isnull);
	if (!uses && !isnull)
		uses = ExprUsesAttnum(stringToNode(TextDatumGetCString(d)), attnum);
	ReleaseSysCache(tuple);
	return uses;
}

/*
 * ColumnIndexes: the indexes of the job's table that contain column
 * attnum and not column new_attnum (the copies do), as a List of Oid in
 * OID order.
 */
static List *
ColumnIndexes(Oid relid, AttrNumber attnum, AttrNumber new_attnum)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, indexes)
		if (IndexUsesColumn(lfirst_oid(lc), attnum) &&
			(new_attnum == InvalidAttrNumber || !IndexUsesColumn(lfirst_oid(lc), new_attnum)))
			result = lappend_oid(result, lfirst_oid(lc));
	table_close(rel, AccessShareLock);
	list_sort(result, list_oid_cmp);
	return result;
}

/*
 * CopyIndexSql: the CREATE INDEX CONCURRENTLY statement of index indexoid
 * built again with column from replaced by column to, named name.  Built
 * from the catalog (pg_index, the expressions and predicate as trees with
 * their columns swapped, deparsed with every name qualified), so the
 * statement is pg_mig's own text.  Caller is in a transaction.
 */
static char *
CopyIndexSql(Oid relid, Oid indexoid, AttrNumber from, AttrNumber to, const char *name)
{
	Relation	index = index_open(indexoid, AccessShareLock);
	HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	Form_pg_index form;
	Datum		d;
	bool		isnull;
	oidvector  *indclass;
	oidvector  *indcoll;
	int2vector *indoption;
	List	   *exprs = NIL;
	ListCell   *expr_cell;
	Node	   *pred = NULL;
	List	   *context;
	StringInfoData buf;
	SwapVarContext swap = {from, to};
	char	   *relname = get_rel_name(relid);
	Oid			amoid = index->rd_rel->relam;
	int			nest;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for index %u", indexoid);
	form = (Form_pg_index) GETSTRUCT(tuple);
	indclass = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tuple,
															 Anum_pg_index_indclass, &isnull));
	indcoll = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tuple,
															Anum_pg_index_indcollation, &isnull));
	indoption = (int2vector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tuple,
															   Anum_pg_index_indoption, &isnull));
	d = SysCacheGetAttr(INDEXRELID, tuple, Anum_pg_index_indexprs, &isnull);
	if (!isnull)
		exprs = (List *) stringToNode(TextDatumGetCString(d));
	d = SysCacheGetAttr(INDEXRELID, tuple, Anum_pg_index_indpred, &isnull);
	if (!isnull)
		pred = stringToNode(TextDatumGetCString(d));
	expr_cell = list_head(exprs);
	context = deparse_context_for(relname, relid);

	/* every name qualified: the statement runs under any search_path */
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE %sINDEX CONCURRENTLY %s ON %s USING %s (",
					 form->indisunique ? "UNIQUE " : "", quote_identifier(name),
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												relname),
					 quote_identifier(get_am_name(amoid)));
	for (int i = 0; i < form->indnkeyatts; i++)
	{
		AttrNumber	attnum = form->indkey.values[i];
		Oid			keytype;
		Oid			keycoll;
		bool		changed;
		int16		opt = indoption->values[i];

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (attnum != 0)
		{
			changed = (attnum == from);
			appendStringInfoString(&buf, quote_identifier(get_attname(relid, changed ? to : attnum,
																	  false)));
			{
				int32		typmod;

				get_atttypetypmodcoll(relid, attnum, &keytype, &typmod, &keycoll);
			}
		}
		else
		{
			Node	   *expr = (Node *) lfirst(expr_cell);

			expr_cell = lnext(exprs, expr_cell);
			changed = ExprUsesAttnum(expr, from);
			appendStringInfo(&buf, "(%s)",
							 deparse_expression(SwapVarMutator(expr, &swap), context, false, false));
			keytype = exprType(expr);
			keycoll = exprCollation(expr);
		}
		if (OidIsValid(indcoll->values[i]) && indcoll->values[i] != keycoll)
			appendStringInfo(&buf, " COLLATE %s",
							 generate_collation_name(indcoll->values[i]));
		/* the opclass of an unchanged key, unless it is the default */
		if (!changed && indclass->values[i] != GetDefaultOpClass(keytype, amoid))
		{
			HeapTuple	ct = SearchSysCache1(CLAOID, ObjectIdGetDatum(indclass->values[i]));

			if (HeapTupleIsValid(ct))
			{
				Form_pg_opclass cf = (Form_pg_opclass) GETSTRUCT(ct);

				appendStringInfo(&buf, " %s",
								 quote_qualified_identifier(get_namespace_name(cf->opcnamespace),
															NameStr(cf->opcname)));
				ReleaseSysCache(ct);
			}
		}
		if (opt & INDOPTION_DESC)
		{
			appendStringInfoString(&buf, " DESC");
			if (!(opt & INDOPTION_NULLS_FIRST))
				appendStringInfoString(&buf, " NULLS LAST");
		}
		else if (opt & INDOPTION_NULLS_FIRST)
			appendStringInfoString(&buf, " NULLS FIRST");
	}
	appendStringInfoChar(&buf, ')');
	if (form->indnatts > form->indnkeyatts)
	{
		appendStringInfoString(&buf, " INCLUDE (");
		for (int i = form->indnkeyatts; i < form->indnatts; i++)
		{
			AttrNumber	attnum = form->indkey.values[i];

			appendStringInfo(&buf, "%s%s", i > form->indnkeyatts ? ", " : "",
							 quote_identifier(get_attname(relid, attnum == from ? to : attnum,
														  false)));
		}
		appendStringInfoChar(&buf, ')');
	}
	if (form->indnullsnotdistinct)
		appendStringInfoString(&buf, " NULLS NOT DISTINCT");
	{
		HeapTuple	ct = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));

		d = SysCacheGetAttr(RELOID, ct, Anum_pg_class_reloptions, &isnull);
		if (!isnull)
		{
			Datum	   *opts;
			int			nopts;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &opts, NULL, &nopts);
			appendStringInfoString(&buf, " WITH (");
			for (int i = 0; i < nopts; i++)
			{
				char	   *opt = TextDatumGetCString(opts[i]);
				char	   *eq = strchr(opt, '=');

				if (eq == NULL)
					continue;
				*eq = '\0';
				appendStringInfo(&buf, "%s%s = %s", i ? ", " : "", quote_identifier(opt),
								 quote_literal_cstr(eq + 1));
			}
			appendStringInfoChar(&buf, ')');
		}
		ReleaseSysCache(ct);
	}
	/*
	 * where the index is: in a named tablespace, or in the database's
	 * default (reltablespace 0), which the copy names too, or it would be
	 * built in the owner's default_tablespace (CREATE INDEX stores the
	 * database's default as 0 again)
	 */
	appendStringInfo(&buf, " TABLESPACE %s",
					 quote_identifier(get_tablespace_name(OidIsValid(index->rd_rel->reltablespace) ?
														  index->rd_rel->reltablespace :
														  MyDatabaseTableSpace)));
	if (pred)
		appendStringInfo(&buf, " WHERE (%s)",
						 deparse_expression(SwapVarMutator(pred, &swap), context, false, false));
	AtEOXact_GUC(true, nest);
	ReleaseSysCache(tuple);
	index_close(index, AccessShareLock);
	return buf.data;
}

/*
 * The trigger function's body.  forward: the new column = the resolved
 * expression over the row; else the old column follows the new one, NULL
 * where its type cannot hold the value.
 */
static char *
ForwardBody(const char *new_column, const char *expr, const char *relname)
{
	return psprintf("BEGIN\n"
					"  NEW.%s := (SELECT %s FROM (SELECT NEW.*) AS %s);\n"
					"  RETURN NEW;\n"
					"END", new_column, expr, quote_identifier(relname));
}

static char *
ReverseBody(Oid old_type, const char *old_name, Oid new_type, const char *old_column,
			const char *column)
{
	if ((old_type == INT4OID || old_type == INT2OID) &&
		(new_type == INT8OID || new_type == INT4OID || new_type == NUMERICOID))
	{
		const char *lo = old_type == INT4OID ? "-2147483648" : "-32768";
		const char *hi = old_type == INT4OID ? "2147483647" : "32767";

		return psprintf("BEGIN\n"
						"  NEW.%s := CASE WHEN NEW.%s OPERATOR(pg_catalog.>=) %s"
						" AND NEW.%s OPERATOR(pg_catalog.<=) %s THEN NEW.%s::%s END;\n"
						"  RETURN NEW;\n"
						"END", old_column, column, lo, column, hi, column, old_name);
	}
	return psprintf("BEGIN\n"
					"  BEGIN\n"
					"    NEW.%s := NEW.%s::%s;\n"
					"  EXCEPTION WHEN data_exception THEN\n"
					"    NEW.%s := NULL;\n"
					"  END;\n"
					"  RETURN NEW;\n"
					"END", old_column, column, old_name, old_column);
}

/* FunctionSql: CREATE OR REPLACE FUNCTION of the job's trigger function */
static char *
FunctionSql(const char *qualified_name, const char *body)
{
	return psprintf("CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql"
					" SET search_path = pg_catalog, pg_temp AS %s",
					qualified_name, quote_literal_cstr(body));
}

/*
 * TriggerName: the job's trigger, named to fire after the table's own
 * BEFORE triggers (they fire in name order), so it sees their changes
 */
static char *
TriggerName(AttrNumber attnum)
{
	return psprintf("zz_pg_mig_change_type_%d", attnum);
}

static char *QualifiedRelationName(Oid relid);

/*
 * AddJobTrigger creates the job's trigger on table relid.  It fires on
 * every insert and update, not only those of the column: the new version
 * of a row not walked yet must satisfy the NOT VALID check, and using_expr
 * may read other columns.  It fires ALWAYS, also in sessions with
 * session_replication_role = replica, where triggers of the default kind
 * do not: the apply worker of a logical replication subscription is one,
 * and its rows would have missed the new column (an insert failed the NOT
 * NULL check, an update was lost at the swap).  As ALTER TABLE ... ENABLE
 * ALWAYS TRIGGER does, the trigger's clones on the partitions too; not by
 * that statement, which the start's session may not run on a table it has
 * open.  Caller is connected to SPI and holds the table's lock.
 */
static void
AddJobTrigger(Oid relid, AttrNumber attnum, const char *function)
{
	char	   *trigger = TriggerName(attnum);
	Relation	rel;

	MigExecDDL(psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s"
						" FOR EACH ROW EXECUTE FUNCTION %s()", quote_identifier(trigger),
						QualifiedRelationName(relid), function));
	CommandCounterIncrement();
	rel = table_open(relid, NoLock);
	MigEnableDisableTrigger(rel, trigger, InvalidOid, TRIGGER_FIRES_ALWAYS, false, true,
							ShareRowExclusiveLock);
	table_close(rel, NoLock);
	CommandCounterIncrement();
}

/*
 * CtColumn: a column the job changes: the job's own, and with
 * convert_referencing each column of another table (or of the table) that
 * references it through a foreign key.  The job's column is in the job's
 * arguments (column, attnum, new_attnum, ...), each referencing column in
 * one argument ref<i> = relid:attnum:new_attnum:old_typid:old_typmod:
 * not_null:name, the names the job adds derived from it.
 */
typedef struct CtColumn
{
	Oid			relid;
	AttrNumber	attnum;
	AttrNumber	new_attnum;
	Oid			old_typid;
	int32		old_typmod;
	const char *old_type;		/* qualified, with its modifier */
	const char *new_column;		/* plain names */
	const char *old_column;
	const char *check;
	const char *function;		/* qualified, quoted */
	AttrNumber	trigger;		/* the number in the trigger's name */
	bool		not_null;
} CtColumn;

static char *
FunctionName(Oid relid, AttrNumber attnum)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  psprintf("pg_mig_change_type_%u_%d", relid, attnum));
}

/*
 * RefColumn: the CtColumn of a value of ref<i> of job.  A revert holds the
 * values of the job it reverts, turned around here: the column of the new
 * type is swapped out for the old one, which has the job's old_column's
 * name now (see "Revert" in the file header).
 */
static CtColumn *
RefColumn(const MigJob *job, const char *value)
{
	CtColumn   *c = palloc0(sizeof(CtColumn));
	unsigned int relid;
	int			attnum,
				new_attnum,
				typmod,
				not_null,
				consumed = 0;
	unsigned int typid;

	if (sscanf(value, "%u:%d:%d:%u:%d:%d:%n", &relid, &attnum, &new_attnum, &typid, &typmod,
			   &not_null, &consumed) < 6 || consumed == 0)
		elog(ERROR, "invalid referencing column of a change_type job: %s", value);
	c->relid = relid;
	c->not_null = not_null != 0;
	c->function = FunctionName(relid, attnum);
	c->trigger = attnum;
	if (MigKindArg(job, "reverts") != NULL)
	{
		c->attnum = new_attnum;
		c->new_attnum = attnum;
		c->old_typid = (Oid) strtoul(Arg(job, "old_typid"), NULL, 10);
		c->old_typmod = -1;
		c->old_type = Arg(job, "old_type");
		c->new_column = TruncatedName("mig_old_", value + consumed);
		c->old_column = TruncatedName("mig_rev_", value + consumed);
	}
	else
	{
		c->attnum = attnum;
		c->new_attnum = new_attnum;
		c->old_typid = typid;
		c->old_typmod = typmod;
		c->old_type = format_type_extended(typid, typmod,
										   FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
		c->new_column = TruncatedName("mig_new_", value + consumed);
		c->old_column = TruncatedName("mig_old_", value + consumed);
	}
	c->check = TruncatedName("mig_not_null_", c->new_column);
	return c;
}

/* JobColumns: the columns of a job that walks, its own first (List of CtColumn *) */
static List *
JobColumns(const MigJob *job)
{
	CtColumn   *c = palloc0(sizeof(CtColumn));
	List	   *result;
	int			nrefs = atoi(ArgOr(job, "refs", "0"));

	c->relid = job->relid;
	c->attnum = AttArg(job, "attnum");
	c->new_attnum = AttArg(job, "new_attnum");
	c->old_typid = (Oid) strtoul(Arg(job, "old_typid"), NULL, 10);
	c->old_type = Arg(job, "old_type");
	c->new_column = Arg(job, "new_column");
	c->old_column = Arg(job, "old_column");
	c->check = Arg(job, "check");
	c->function = Arg(job, "function");
	c->not_null = ArgIsTrue(job, "not_null");
	/* a revert's trigger is the reverted job's, named by its column */
	c->trigger = (AttrNumber) atoi(ArgOr(job, "trigger_attnum", Arg(job, "attnum")));
	result = list_make1(c);
	for (int i = 1; i <= nrefs; i++)
		result = lappend(result, RefColumn(job, Arg(job, psprintf("ref%d", i))));
	return result;
}


/* RuleOwner: the relation of rewrite rule ruleoid, or InvalidOid */
static Oid
RuleOwner(Oid ruleoid)
{
	Relation	rel = table_open(RewriteRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			result = InvalidOid;

	ScanKeyInit(&key, Anum_pg_rewrite_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ruleoid));
	scan = systable_beginscan(rel, RewriteOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		result = ((Form_pg_rewrite) GETSTRUCT(tup))->ev_class;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/* ConstraintType: the contype of constraint conoid, and its table in *relid */
static char
ConstraintType(Oid conoid, Oid *relid)
{
	HeapTuple	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	char		contype;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", conoid);
	contype = ((Form_pg_constraint) GETSTRUCT(tuple))->contype;
	if (relid)
		*relid = ((Form_pg_constraint) GETSTRUCT(tuple))->conrelid;
	ReleaseSysCache(tuple);
	return contype;
}

/* ReferencedTable: the table foreign key conoid references (else InvalidOid) */
static Oid
ReferencedTable(Oid conoid)
{
	HeapTuple	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	Oid			confrelid;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", conoid);
	confrelid = ((Form_pg_constraint) GETSTRUCT(tuple))->confrelid;
	ReleaseSysCache(tuple);
	return confrelid;
}

/*
 * NoteOtherTable: a step of job locks relid in lockmode; a table other
 * than the job's is noted for the wait after a lock timeout (worker.c)
 */
static void
NoteOtherTable(const MigJob *job, Oid relid, LOCKMODE lockmode)
{
	if (relid != job->relid)
		MigNoteStepLock(relid, lockmode);
}

/*
 * The constraints carried over: the foreign keys of other tables (or of
 * the table itself, on other columns) that reference the column, and the
 * column's own check constraints and foreign keys.  Each gets a twin on
 * the new column, mig_ct_con_<oid of the original>, added NOT VALID after
 * the index copies (the copy of a referenced unique index is there, and
 * every row has its new value), then validated; the swap drops the
 * original and gives the twin its name.
 */
static char *
TwinName(Oid conoid)
{
	return psprintf("mig_ct_con_%u", conoid);
}

/* ConstraintColumns: the int2[] column of constraint tuple tuple, as a List of int */
static List *
ConstraintColumns(HeapTuple tuple, AttrNumber column)
{
	bool		isnull;
	Datum		d = SysCacheGetAttr(CONSTROID, tuple, column, &isnull);
	Datum	   *elems;
	int			n;
	List	   *result = NIL;

	if (isnull)
		return NIL;
	deconstruct_array(DatumGetArrayTypeP(d), INT2OID, 2, true, TYPALIGN_SHORT, &elems, NULL, &n);
	for (int i = 0; i < n; i++)
		result = lappend_int(result, DatumGetInt16(elems[i]));
	return result;
}

/*
 * IsReferencingFk: constraint conoid is a foreign key (top_level: not the
 * clone of a partitioned table's) that references column attnum of table
 * relid from columns other than attnum of relid (a key of the table that
 * references itself, on another column, counts).
 */
static bool
IsReferencingFk(Oid conoid, Oid relid, AttrNumber attnum, bool top_level)
{
	HeapTuple	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	Form_pg_constraint form;
	bool		result;

	if (!HeapTupleIsValid(tuple))
		return false;
	form = (Form_pg_constraint) GETSTRUCT(tuple);
	result = form->contype == CONSTRAINT_FOREIGN && form->confrelid == relid &&
		(!top_level || !OidIsValid(form->conparentid)) &&
		list_member_int(ConstraintColumns(tuple, Anum_pg_constraint_confkey), attnum) &&
		!(form->conrelid == relid &&
		  list_member_int(ConstraintColumns(tuple, Anum_pg_constraint_conkey), attnum));
	ReleaseSysCache(tuple);
	return result;
}

/*
 * IsOwnConstraint: constraint conoid is a check constraint or foreign key
 * of table relid on column attnum (and, for a foreign key, not referencing
 * attnum itself).
 */
static bool
IsOwnConstraint(Oid conoid, Oid relid, AttrNumber attnum)
{
	HeapTuple	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	Form_pg_constraint form;
	bool		result;

	if (!HeapTupleIsValid(tuple))
		return false;
	form = (Form_pg_constraint) GETSTRUCT(tuple);
	result = form->conrelid == relid && !OidIsValid(form->conparentid) &&
		(form->contype == CONSTRAINT_CHECK ||
		 (form->contype == CONSTRAINT_FOREIGN &&
		  !(form->confrelid == relid &&
			list_member_int(ConstraintColumns(tuple, Anum_pg_constraint_confkey), attnum)))) &&
		list_member_int(ConstraintColumns(tuple, Anum_pg_constraint_conkey), attnum);
	ReleaseSysCache(tuple);
	return result;
}

/*
 * DependentConstraints: the constraints that depend on column attnum of
 * table relid (pg_depend), in OID order
 */
static List *
DependentConstraints(Oid relid, AttrNumber attnum)
{
	Relation	depRel = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum((int32) attnum));
	scan = systable_beginscan(depRel, DependReferenceIndexId, true, NULL, 3, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->classid == ConstraintRelationId)
			result = list_append_unique_oid(result, dep->objid);
	}
	systable_endscan(scan);
	table_close(depRel, AccessShareLock);
	list_sort(result, list_oid_cmp);
	return result;
}

/*
 * CarriedConstraints: the foreign keys that reference column attnum of
 * table relid and the column's own checks and foreign keys (through
 * pg_depend, as CheckDependents finds them), in OID order.
 */
static List *
CarriedConstraints(Oid relid, AttrNumber attnum)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, DependentConstraints(relid, attnum))
	{
		Oid			conoid = lfirst_oid(lc);

		if (IsReferencingFk(conoid, relid, attnum, true) || IsOwnConstraint(conoid, relid, attnum))
			result = lappend_oid(result, conoid);
	}
	return result;
}

/* ReferencingTables: the tables of the constraints cons other than relid, in OID order */
static List *
ReferencingTables(Oid relid, List *cons)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, cons)
	{
		Oid			conrelid;

		(void) ConstraintType(lfirst_oid(lc), &conrelid);
		if (conrelid != relid)
			result = list_append_unique_oid(result, conrelid);
	}
	list_sort(result, list_oid_cmp);
	return result;
}

static char *
QualifiedRelationName(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* NewAttnum: column attnum of table relid, or the new one of a job's column */
static AttrNumber
NewAttnum(List *columns, Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, columns)
	{
		CtColumn   *c = lfirst(lc);

		if (c->relid == relid && c->attnum == attnum)
			return c->new_attnum;
	}
	return attnum;
}

/* AppendColumns: "(a, b)", the columns attnums of table relid, the job's columns replaced */
static void
AppendColumns(StringInfo buf, Oid relid, List *attnums, List *columns)
{
	ListCell   *lc;

	appendStringInfoChar(buf, '(');
	foreach(lc, attnums)
		appendStringInfo(buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(get_attname(relid,
													  NewAttnum(columns, relid, lfirst_int(lc)),
													  false)));
	appendStringInfoChar(buf, ')');
}

static const char *
FkAction(char action)
{
	switch (action)
	{
		case FKCONSTR_ACTION_RESTRICT:
			return "RESTRICT";
		case FKCONSTR_ACTION_CASCADE:
			return "CASCADE";
		case FKCONSTR_ACTION_SETNULL:
			return "SET NULL";
		case FKCONSTR_ACTION_SETDEFAULT:
			return "SET DEFAULT";
		default:
			return "NO ACTION";
	}
}

/*
 * TwinSql: ALTER TABLE ... ADD CONSTRAINT name ... NOT VALID, constraint
 * conoid built again from the catalog with the job's columns replaced by
 * their new ones: a foreign key from its columns, a check from its
 * expression tree with the columns' Vars changed (deparsed with every name
 * qualified).
 */
static char *
TwinSql(Oid conoid, List *columns, const char *name)
{
	HeapTuple	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	Form_pg_constraint form;
	StringInfoData buf;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", conoid);
	form = (Form_pg_constraint) GETSTRUCT(tuple);
	initStringInfo(&buf);
	appendStringInfo(&buf, "ALTER TABLE %s ADD CONSTRAINT %s ",
					 QualifiedRelationName(form->conrelid), quote_identifier(name));
	if (form->contype == CONSTRAINT_CHECK)
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(CONSTROID, tuple, Anum_pg_constraint_conbin, &isnull);
		Node	   *expr;
		ListCell   *lc;
		int			nest;

		if (isnull)
			elog(ERROR, "null conbin for constraint %u", conoid);
		expr = stringToNode(TextDatumGetCString(d));
		foreach(lc, columns)
		{
			CtColumn   *c = lfirst(lc);
			SwapVarContext swap = {c->attnum, c->new_attnum};

			if (c->relid == form->conrelid)
				expr = SwapVarMutator(expr, &swap);
		}
		nest = NewGUCNestLevel();
		(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		appendStringInfo(&buf, "CHECK (%s)",
						 deparse_expression(expr, deparse_context_for(get_rel_name(form->conrelid),
																 form->conrelid),
											false, false));
		AtEOXact_GUC(true, nest);
		if (form->connoinherit)
			appendStringInfoString(&buf, " NO INHERIT");
	}
	else
	{
		appendStringInfoString(&buf, "FOREIGN KEY ");
		AppendColumns(&buf, form->conrelid, ConstraintColumns(tuple, Anum_pg_constraint_conkey),
					  columns);
		appendStringInfo(&buf, " REFERENCES %s ", QualifiedRelationName(form->confrelid));
		AppendColumns(&buf, form->confrelid, ConstraintColumns(tuple, Anum_pg_constraint_confkey),
					  columns);
		if (form->confmatchtype == FKCONSTR_MATCH_FULL)
			appendStringInfoString(&buf, " MATCH FULL");
		appendStringInfo(&buf, " ON UPDATE %s ON DELETE %s", FkAction(form->confupdtype),
						 FkAction(form->confdeltype));
		/* ON DELETE SET NULL (columns), 15 and later: every version pg_mig builds on */
		{
			List	   *setcols = ConstraintColumns(tuple, Anum_pg_constraint_confdelsetcols);

			if (setcols != NIL)
			{
				appendStringInfoChar(&buf, ' ');
				AppendColumns(&buf, form->conrelid, setcols, columns);
			}
		}
		if (form->condeferrable)
			appendStringInfoString(&buf, form->condeferred ?
								   " DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE");
	}
	appendStringInfoString(&buf, " NOT VALID");
	ReleaseSysCache(tuple);
	return buf.data;
}

/* ConstraintState: 0 = no constraint name on table relid, 1 = NOT VALID, 2 = valid */
static int
ConstraintState(Oid relid, const char *name)
{
	Oid			conoid = get_relation_constraint_oid(relid, name, true);
	HeapTuple	tuple;
	int			result;

	if (!OidIsValid(conoid))
		return 0;
	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tuple))
		return 0;
	result = ((Form_pg_constraint) GETSTRUCT(tuple))->convalidated ? 2 : 1;
	ReleaseSysCache(tuple);
	return result;
}

/* JobConstraints: the constraints carried over for the job's columns, in OID order */
static List *
JobConstraints(List *columns)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, columns)
	{
		CtColumn   *c = lfirst(lc);

		result = list_concat_unique_oid(result, CarriedConstraints(c->relid, c->attnum));
	}
	list_sort(result, list_oid_cmp);
	return result;
}

/* TwinsState: the least ConstraintState of the twins of the carried constraints */
static int
TwinsState(const MigJob *job)
{
	List	   *cons = JobConstraints(JobColumns(job));
	ListCell   *lc;
	int			state = 2;

	foreach(lc, cons)
	{
		Oid			conrelid;

		(void) ConstraintType(lfirst_oid(lc), &conrelid);
		state = Min(state, ConstraintState(conrelid, TwinName(lfirst_oid(lc))));
	}
	return state;
}

/*
 * CheckDependents refuses a column that other objects depend on in ways
 * the job does not carry over (views, rules, policies, generated columns,
 * functions, publications, triggers, statistics, constraints the job does
 * not copy yet), naming them all.
 */
static void
CheckDependents(Relation rel, AttrNumber attnum, const char *column)
{
	Relation	depRel = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;
	StringInfoData names;
	int			n = 0;
	Oid			relid = RelationGetRelid(rel);

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum((int32) attnum));
	scan = systable_beginscan(depRel, DependReferenceIndexId, true, NULL, 3, key);
	initStringInfo(&names);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		ObjectAddress obj;
		bool		carried = false;

		if (dep->deptype == DEPENDENCY_INTERNAL && dep->classid == TypeRelationId)
			continue;
		if (dep->classid == RelationRelationId)
		{
			char		relkind = get_rel_relkind(dep->objid);

			if (relkind == RELKIND_INDEX)
			{
				/* an index of the table: copied, unless it is an exclusion constraint's */
				Oid			con = get_index_constraint(dep->objid);

				carried = !OidIsValid(con) ||
					ConstraintType(con, NULL) == CONSTRAINT_PRIMARY ||
					ConstraintType(con, NULL) == CONSTRAINT_UNIQUE;
			}
			else if (relkind == RELKIND_SEQUENCE && dep->deptype == DEPENDENCY_AUTO)
				carried = true; /* OWNED BY: moved in the swap */
			else if (relkind == RELKIND_SEQUENCE && dep->deptype == DEPENDENCY_INTERNAL)
				carried = true; /* an identity's: moved in the swap (MoveIdentity) */
		}
		else if (dep->classid == ConstraintRelationId)
		{
			Oid			conrelid;
			char		contype = ConstraintType(dep->objid, &conrelid);

			carried = (contype == CONSTRAINT_PRIMARY || contype == CONSTRAINT_UNIQUE) &&
				conrelid == relid;
			/* a foreign key that references the column: its twin is added and switched */
			if (contype == CONSTRAINT_FOREIGN && IsReferencingFk(dep->objid, relid, attnum, false))
			{
				if (!MIG_HAVE_PARTITIONED_NOT_VALID_FK &&
					(get_rel_relkind(conrelid) == RELKIND_PARTITIONED_TABLE ||
					 get_rel_relispartition(conrelid)))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot change the type of column \"%s\" of table \"%s\" online: partitioned table \"%s\" references it",
									column, RelationGetRelationName(rel),
									get_rel_name(get_rel_relispartition(conrelid) ?
												 get_partition_parent(conrelid, true) : conrelid)),
							 errdetail("The job adds the foreign key again NOT VALID, which PostgreSQL 18 and later allow on partitioned tables."),
							 errhint("Drop that foreign key, run mig_change_type(), and after the swap add the key to each partition with mig_add_foreign_key(); or change the type with ALTER TABLE in a maintenance window.")));
				if (!MigOwnsTable(conrelid, GetUserId()))
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("permission denied to change the type of column \"%s\" of table \"%s\": table \"%s\" references it",
									column, RelationGetRelationName(rel), get_rel_name(conrelid)),
							 errdetail("The job adds the foreign key of table \"%s\" again on the new column, and only the table's owner may.",
									   get_rel_name(conrelid)),
							 errhint("Start the job as a role that owns both tables, or as a member of the owning roles.")));
				carried = true;
			}
			/* the column's own checks and foreign keys: the same */
			carried = carried || IsOwnConstraint(dep->objid, relid, attnum);
#ifdef CONSTRAINT_NOTNULL
			carried = carried || contype == CONSTRAINT_NOTNULL;
#endif
		}
		else if (dep->classid == AttrDefaultRelationId)
		{
			/* the column's own default is moved; a generated column's is not */
			HeapTuple	ad;
			Relation	adrel = table_open(AttrDefaultRelationId, AccessShareLock);
			ScanKeyData adkey;
			SysScanDesc adscan;

			ScanKeyInit(&adkey, Anum_pg_attrdef_oid, BTEqualStrategyNumber, F_OIDEQ,
						ObjectIdGetDatum(dep->objid));
			adscan = systable_beginscan(adrel, AttrDefaultOidIndexId, true, NULL, 1, &adkey);
			ad = systable_getnext(adscan);
			carried = HeapTupleIsValid(ad) &&
				((Form_pg_attrdef) GETSTRUCT(ad))->adnum == attnum;
			systable_endscan(adscan);
			table_close(adrel, AccessShareLock);
		}
		if (carried)
			continue;
		obj.classId = dep->classid;
		obj.objectId = dep->objid;
		obj.objectSubId = dep->objsubid;
		if (dep->classid == RewriteRelationId)
		{
			/* a view's or materialized view's rule: name the view */
			Oid			view = RuleOwner(dep->objid);

			if (OidIsValid(view) && get_rel_relkind(view) != RELKIND_RELATION)
			{
				obj.classId = RelationRelationId;
				obj.objectId = view;
				obj.objectSubId = 0;
			}
		}
		appendStringInfo(&names, "%s%s", n ? ", " : "", getObjectDescription(&obj, true));
		n++;
	}
	systable_endscan(scan);
	table_close(depRel, AccessShareLock);
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg_plural("cannot change the type of column \"%s\" of table \"%s\" online: %s depends on it",
							   "cannot change the type of column \"%s\" of table \"%s\" online: %s depend on it",
							   n, column, RelationGetRelationName(rel), names.data),
				 errhint("Drop them, run mig_change_type() and create them again after the swap; or change the type with ALTER TABLE in a maintenance window.")));
}

/*
 * IsCatalogOnly: ALTER COLUMN TYPE to new_type without a USING clause
 * would not rewrite the table: the types are binary coercible and the new
 * type modifier takes every old value (varchar(50) to varchar(100) or to
 * text, ...).
 */
static bool
IsCatalogOnly(Oid old_type, int32 old_typmod, Oid new_type, int32 new_typmod)
{
	if (!IsBinaryCoercible(old_type, new_type))
		return false;
	if (get_typtype(new_type) == TYPTYPE_DOMAIN)
		return false;
	if (new_typmod < 0)
		return true;
	return old_type == new_type &&
		(old_type == VARCHAROID || old_type == VARBITOID) &&
		old_typmod >= 0 && new_typmod >= old_typmod;
}

#define USING_HINT "Pass one expression over the table's columns that gives the new value, e.g. 'id::bigint' or 'round(price * 100)'."

/*
 * CheckUsingExpr: using_expr is one expression over the table's columns
 * that type-checks and casts to the new type (parsed and analyzed with the
 * caller's rights; nothing runs).
 */
static void
CheckUsingExpr(const MigJob *job, const char *using_expr, const char *type_name)
{
	char	   *sql = psprintf("SELECT (%s\n)::%s FROM ONLY %s", using_expr, type_name,
							   job->relation_name);
	SelectStmt *stmt = (SelectStmt *) MigParseOne("using_expr", sql, USING_HINT);
	MemoryContext ctx = CurrentMemoryContext;

	if (!IsA(stmt, SelectStmt) || stmt->op != SETOP_NONE ||
		list_length(stmt->targetList) != 1 || list_length(stmt->fromClause) != 1 ||
		stmt->whereClause || stmt->groupClause || stmt->havingClause || stmt->windowClause ||
		stmt->withClause || stmt->sortClause || stmt->limitCount || stmt->limitOffset ||
		stmt->distinctClause || stmt->intoClause || stmt->lockingClause || stmt->valuesLists)
		MigRejectPart("using_expr", "it is not one expression", USING_HINT);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		if (SPI_prepare(sql, 0, NULL) == NULL)
			elog(ERROR, "could not prepare the using_expr check: %s",
				 SPI_result_code_string(SPI_result));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("invalid using_expr: %s", edata->message),
				 errdetail("It was checked as: %s", sql),
				 errhint(USING_HINT)));
	}
	PG_END_TRY();
	SPI_finish();
}

/*
 * The locks of a job's tables (the start's, the swap's): the job's table
 * first, waited for up to lock_timeout, then every other table, each
 * waited for only LOCK_OTHERS_MS.  An application
 * transaction that holds a lock on another table and then wants the job's
 * table waits behind the job's lock: were the job to wait lock_timeout for
 * that other table, the two would wait for each other until then (or until
 * deadlock_timeout).  Instead the attempt gives up soon, lets go of every
 * lock it took and tries again, for up to lock_timeout in all.
 */
#define LOCK_OTHERS_MS		100
#define LOCK_AGAIN_MIN_MS	10
#define LOCK_AGAIN_MAX_MS	50

typedef struct LockAttempt
{
	List	   *relids;
	int64		lock_timeout_ms;	/* the first table's wait */
	int64		others_ms;		/* each other table's wait */
	int			reached;		/* the table being locked, from 0 */
} LockAttempt;

/*
 * LockOnce: one attempt, every table in turn (run by MigTrySubtransaction:
 * a failed attempt releases the locks it took); lock_timeout is the job's
 * again afterwards.
 */
static void
LockOnce(void *arg)
{
	LockAttempt *attempt = (LockAttempt *) arg;
	ListCell   *lc;

	attempt->reached = 0;
	foreach(lc, attempt->relids)
	{
		MigSetLockTimeout(attempt->reached == 0 ? attempt->lock_timeout_ms : attempt->others_ms,
						  GUC_ACTION_LOCAL);
		LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);
		attempt->reached++;
	}
	MigSetLockTimeout(attempt->lock_timeout_ms, GUC_ACTION_LOCAL);
}

/*
 * LockTables takes the ACCESS EXCLUSIVE locks of relids (the job's table
 * first) in the caller's transaction, and returns NULL, or the error of
 * the last attempt with every lock let go: a wait for the job's table that
 * timed out, an error that is not a lock timeout, or other tables still
 * busy after lock_timeout in all.
 */
static ErrorData *
LockTables(List *relids, const MigJob *job)
{
	LockAttempt attempt = {relids, job->lock_timeout_ms,
	Min(job->lock_timeout_ms, LOCK_OTHERS_MS), 0};
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		ErrorData  *edata = MigTrySubtransaction(LockOnce, &attempt);

		if (edata == NULL)
			return NULL;
		if (attempt.reached == 0 || edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), (int) job->lock_timeout_ms))
			return edata;
		FreeErrorData(edata);
		pg_usleep((LOCK_AGAIN_MIN_MS +
				   pg_prng_uint64_range(&pg_global_prng_state, 0,
										LOCK_AGAIN_MAX_MS - LOCK_AGAIN_MIN_MS)) * 1000L);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * LockForStart takes the locks of LockTables, retried with backoff up to
 * max_retries times, so the application never waits behind the request
 * longer than lock_timeout.  what says what the lock is for, call the
 * function to call again.
 */
static void
LockForStart(List *relids, const MigJob *job, const char *what, const char *call)
{
	for (int attempt = 0;; attempt++)
	{
		ErrorData  *edata = LockTables(relids, job);

		if (edata == NULL)
			return;
		if (!MigErrorIsTransient(edata->sqlerrcode) || attempt >= job->max_retries)
			ereport(ERROR,
					(errcode(edata->sqlerrcode),
					 errmsg("could not lock table %s to add %s: %s",
							job->relation_name, what, edata->message),
					 errdetail("%d attempts waited lock_timeout each.", attempt + 1),
					 errhint("Run %s again when the sessions that hold locks on the table are done, or with a larger lock_timeout or max_retries.",
							 call)));
		pg_usleep(Min(START_RETRY_BASE_MS << Min(attempt, 10), START_RETRY_MAX_MS) * 1000L);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * CheckTableAndColumn refuses a table or column whose type the job cannot
 * change: partitioned, with inheritance, an inherited or generated column.
 */
static void
CheckTableAndColumn(Relation rel, AttrNumber attnum, const char *column)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *relname = RelationGetRelationName(rel);
	HeapTuple	atttup;
	Form_pg_attribute att;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the type of a column of partitioned table \"%s\" online", relname),
				 errhint("Change it with ALTER TABLE in a maintenance window; online changes of partitioned tables are not built yet.")));
	if (rel->rd_rel->relhassubclass || rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the type of a column of table \"%s\" online: it has inheritance children or is a partition", relname),
				 errhint("Change it with ALTER TABLE on the parent in a maintenance window.")));
	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", column, relname)));
	atttup = SearchSysCacheAttNum(relid, attnum);
	if (!HeapTupleIsValid(atttup))
		elog(ERROR, "cache lookup failed for column %d of relation %u", attnum, relid);
	att = (Form_pg_attribute) GETSTRUCT(atttup);
	if (att->attinhcount > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the type of inherited column \"%s\"", column)));
	if (att->attgenerated)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the type of generated column \"%s\" online", column),
				 errhint("Use ALTER TABLE in a maintenance window.")));
	ReleaseSysCache(atttup);
}

/*
 * CheckIdentityType: an identity column (its identity moves to the new
 * column in the swap) can only become another integer type, as ALTER
 * COLUMN TYPE's ALTER SEQUENCE ... AS would say later.
 */
static void
CheckIdentityType(Oid relid, AttrNumber attnum, const char *column, Oid new_type)
{
	HeapTuple	atttup = SearchSysCacheAttNum(relid, attnum);
	char		identity;

	if (!HeapTupleIsValid(atttup))
		elog(ERROR, "cache lookup failed for column %d of relation %u", attnum, relid);
	identity = ((Form_pg_attribute) GETSTRUCT(atttup))->attidentity;
	ReleaseSysCache(atttup);
	if (identity != '\0' && new_type != INT2OID && new_type != INT4OID && new_type != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot change identity column \"%s\" of table \"%s\" to type %s",
						column, get_rel_name(relid), format_type_be(new_type)),
				 errdetail("The sequence of an identity column is of type smallint, integer or bigint."),
				 errhint("Drop the identity first (ALTER TABLE ... ALTER COLUMN ... DROP IDENTITY), or change the column to smallint, integer or bigint.")));
}

/*
 * RefuseTakenName: column name (a new column if is_new, else an old one)
 * for column column of table rel is there already; the error names the
 * job that left it.  A job still on the table (a type change of another
 * column that converts this one too, say) refuses the start as any busy
 * table does.
 */
static void
RefuseTakenName(Relation rel, const char *column, const char *name, bool is_new)
{
	Oid			relid = RelationGetRelid(rel);
	int64		busy = MigFindActiveJobOn(list_make1_oid(relid));
	int64		left_by;

	if (busy != 0)
		MigRefuseBusyTable(RelationGetRelationName(rel), busy);
	left_by = MigFindChangeTypeJobOf(relid, column, name);
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_COLUMN),
			 errmsg("column \"%s\" of table \"%s\" already exists", name,
					RelationGetRelationName(rel)),
			 left_by == 0 ?
			 errhint("A type change adds the columns mig_new_<column> and mig_old_<column>: rename this one first.") :
			 is_new ?
			 errhint("Job " INT64_FORMAT " left it: mig_forget(" INT64_FORMAT ") drops what that job built.",
					 left_by, left_by) :
			 errhint("Job " INT64_FORMAT " kept it: mig_forget(" INT64_FORMAT ") drops it, or mig_revert(" INT64_FORMAT ") swaps the columns back.",
					 left_by, left_by, left_by)));
}

/*
 * CheckNamesFree: the columns new_column and old_column that a job of
 * column column adds to table rel (and names at its swap) are not there,
 * and the caller may create the job's trigger function in the table's
 * schema
 */
static void
CheckNamesFree(Relation rel, const char *column, const char *new_column, const char *old_column)
{
	Oid			relid = RelationGetRelid(rel);

	if (get_attnum(relid, new_column) != InvalidAttrNumber)
		RefuseTakenName(rel, column, new_column, true);
	if (get_attnum(relid, old_column) != InvalidAttrNumber)
		RefuseTakenName(rel, column, old_column, false);
	if (MigNamespaceAclCheck(RelationGetNamespace(rel), GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create the trigger function of the job in schema %s",
						get_namespace_name(RelationGetNamespace(rel))),
				 errhint("The job keeps the new column up to date with a trigger function in the table's schema; grant CREATE on the schema to the role that starts it.")));
}

/*
 * CheckReferencingColumns: for convert_referencing, the columns that
 * reference column attnum of table relid through a foreign key (of other
 * tables, or of the table itself) and are not of the new type yet, each
 * checked as the job's own column is (List of CtColumn *, in the order of
 * their tables' OIDs; new_attnum not set yet).
 */
static List *
CheckReferencingColumns(Oid relid, AttrNumber attnum, Oid new_type, int32 new_typmod)
{
	List	   *pairs = NIL;	/* relid, attnum, relid, attnum, ... */
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, CarriedConstraints(relid, attnum))
	{
		Oid			conoid = lfirst_oid(lc);
		HeapTuple	tuple;
		Form_pg_constraint form;
		ListCell   *kc;
		ListCell   *fc;
		List	   *conkey;
		List	   *confkey;

		if (!IsReferencingFk(conoid, relid, attnum, true))
			continue;
		tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
		if (!HeapTupleIsValid(tuple))
			continue;
		form = (Form_pg_constraint) GETSTRUCT(tuple);
		conkey = ConstraintColumns(tuple, Anum_pg_constraint_conkey);
		confkey = ConstraintColumns(tuple, Anum_pg_constraint_confkey);
		forboth(kc, conkey, fc, confkey)
		{
			bool		seen = false;

			if (lfirst_int(fc) != attnum)
				continue;
			for (int i = 0; i + 1 < list_length(pairs); i += 2)
				if (list_nth_oid(pairs, i) == form->conrelid &&
					list_nth_oid(pairs, i + 1) == (Oid) lfirst_int(kc))
					seen = true;
			if (!seen)
				pairs = lappend_oid(lappend_oid(pairs, form->conrelid), (Oid) lfirst_int(kc));
		}
		ReleaseSysCache(tuple);
	}

	for (int i = 0; i + 1 < list_length(pairs); i += 2)
	{
		CtColumn   *c = palloc0(sizeof(CtColumn));
		Relation	rel = table_open(list_nth_oid(pairs, i), AccessShareLock);
		HeapTuple	atttup;
		Form_pg_attribute att;
		char	   *name;

		c->relid = RelationGetRelid(rel);
		c->attnum = (AttrNumber) list_nth_oid(pairs, i + 1);
		name = get_attname(c->relid, c->attnum, false);
		CheckTableAndColumn(rel, c->attnum, name);
		CheckIdentityType(c->relid, c->attnum, name, new_type);
		atttup = SearchSysCacheAttNum(c->relid, c->attnum);
		if (!HeapTupleIsValid(atttup))
			elog(ERROR, "cache lookup failed for column %d of relation %u", c->attnum, c->relid);
		att = (Form_pg_attribute) GETSTRUCT(atttup);
		c->old_typid = att->atttypid;
		c->old_typmod = att->atttypmod;
		c->not_null = att->attnotnull;
		ReleaseSysCache(atttup);
		if (c->old_typid == new_type && c->old_typmod == new_typmod)
		{
			table_close(rel, NoLock);
			continue;
		}
		if (!can_coerce_type(1, &c->old_typid, &new_type, COERCION_EXPLICIT))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot convert referencing column \"%s\" of table \"%s\" from %s to %s",
							name, RelationGetRelationName(rel), format_type_be(c->old_typid),
							format_type_be(new_type)),
					 errhint("Change it with its own mig_change_type() job and a using_expr, then this one without convert_referencing.")));
		CheckDependents(rel, c->attnum, name);
		c->old_type = format_type_extended(c->old_typid, c->old_typmod,
										   FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
		c->new_column = TruncatedName("mig_new_", name);
		c->old_column = TruncatedName("mig_old_", name);
		c->check = TruncatedName("mig_not_null_", c->new_column);
		c->function = FunctionName(c->relid, c->attnum);
		CheckNamesFree(rel, name, c->new_column, c->old_column);
		table_close(rel, NoLock);
		result = lappend(result, c);
	}
	return result;
}

/*
 * PrepareStart checks the arguments of mig_change_type and, unless
 * the change is catalog-only, adds the new column and its trigger; fills
 * in job's kind, kind_args and set clause.  Returns true if the job walks
 * (the caller builds its targets now, after the trigger is there).
 */
static bool
PrepareStart(Relation *relp, MigJob *job, const char *column, const char *new_type_text,
			 const char *using_expr, bool cleanup, bool convert_referencing, char **detail)
{
	Relation	rel = *relp;
	Oid			relid = RelationGetRelid(rel);
	AttrNumber	attnum = get_attnum(relid, column);
	HeapTuple	atttup;
	Form_pg_attribute att;
	Oid			new_type;
	int32		new_typmod;
	char	   *new_type_name;
	char	   *old_type_name;
	bool		not_null;
	char	   *new_column;
	char	   *old_column;
	char	   *function;
	char	   *relname = RelationGetRelationName(rel);
	Oid			old_typid;
	int32		old_typmod;
	List	   *refs = NIL;
	ListCell   *lc;

	CheckTableAndColumn(rel, attnum, column);
	atttup = SearchSysCacheAttNum(relid, attnum);
	if (!HeapTupleIsValid(atttup))
		elog(ERROR, "cache lookup failed for column %d of relation %u", attnum, relid);
	att = (Form_pg_attribute) GETSTRUCT(atttup);
	not_null = att->attnotnull;
	old_typid = att->atttypid;
	old_typmod = att->atttypmod;
	ReleaseSysCache(atttup);

	/* the type: resolved once, stored by OID and qualified name */
	typenameTypeIdAndMod(NULL, MigTypeStringToTypeName(new_type_text), &new_type, &new_typmod);
	new_type_name = format_type_extended(new_type, new_typmod,
										 FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	old_type_name = format_type_extended(old_typid, old_typmod,
										 FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	if (MigTypeAclCheck(new_type, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for type %s", new_type_name)));
	CheckIdentityType(relid, attnum, column, new_type);
	if (new_type == old_typid && new_typmod == old_typmod && using_expr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"%s\" of table \"%s\" is already of type %s", column, relname,
						new_type_name)));

	CheckDependents(rel, attnum, column);
	CheckUsingExpr(job, using_expr ? using_expr : quote_identifier(column), new_type_name);

	job->kind = MIG_KIND_CHANGE_TYPE;
	job->kind_args = list_make5(psprintf("column=%s", column),
								psprintf("attnum=%d", attnum),
								psprintf("new_type=%s", new_type_name),
								psprintf("old_type=%s", old_type_name),
								psprintf("cleanup=%s", cleanup ? "true" : "false"));
	job->kind_args = lappend(job->kind_args, psprintf("new_typid=%u", new_type));
	job->kind_args = lappend(job->kind_args, psprintf("new_typmod=%d", new_typmod));
	job->kind_args = lappend(job->kind_args, psprintf("old_typid=%u", old_typid));

	if (using_expr == NULL &&
		IsCatalogOnly(old_typid, old_typmod, new_type, new_typmod))
	{
		job->kind_args = lappend(job->kind_args, pstrdup("catalog_only=true"));
		*detail = psprintf("change column %s to %s: a catalog change, one ALTER TABLE",
						   quote_identifier(column), new_type_name);
		return false;
	}

	/* the names the job adds: free now */
	new_column = TruncatedName("mig_new_", column);
	old_column = TruncatedName("mig_old_", column);
	CheckNamesFree(rel, column, new_column, old_column);
	function = FunctionName(relid, attnum);
	if (convert_referencing)
		refs = CheckReferencingColumns(relid, attnum, new_type, new_typmod);

	/* the new columns and their triggers, under lock_timeout with retries: the job's table first */
	{
		List	   *relids = list_make1_oid(relid);

		foreach(lc, refs)
			relids = list_append_unique_oid(relids, ((CtColumn *) lfirst(lc))->relid);
		LockForStart(relids, job, "the new column", "mig_change_type()");
	}
	/* ALTER TABLE wants no other reference to the table open in this session */
	relation_close(rel, NoLock);
	*relp = rel = NULL;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MigExecDDL(psprintf("ALTER TABLE %s ADD COLUMN %s %s", job->relation_name,
						quote_identifier(new_column), new_type_name));
	/* and, under the same lock, the NOT VALID check of NOT NULL (no later lock for it) */
	if (not_null)
		MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
							job->relation_name,
							quote_identifier(TruncatedName("mig_not_null_", new_column)),
							quote_identifier(new_column)));
	/* the referencing columns' new columns and checks */
	foreach(lc, refs)
	{
		CtColumn   *c = lfirst(lc);

		MigExecDDL(psprintf("ALTER TABLE %s ADD COLUMN %s %s", QualifiedRelationName(c->relid),
							quote_identifier(c->new_column), new_type_name));
		if (c->not_null)
			MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
								QualifiedRelationName(c->relid), quote_identifier(c->check),
								quote_identifier(c->new_column)));
	}
	SPI_finish();
	CommandCounterIncrement();
	*relp = relation_open(relid, NoLock);
	job->kind_args = lappend(job->kind_args, psprintf("refs=%d", list_length(refs)));
	foreach(lc, refs)
	{
		CtColumn   *c = lfirst(lc);

		job->kind_args = lappend(job->kind_args,
								 psprintf("ref%d=%u:%d:%d:%u:%d:%d:%s", foreach_current_index(lc) + 1,
										  c->relid, c->attnum,
										  get_attnum(c->relid, c->new_column), c->old_typid,
										  c->old_typmod, c->not_null ? 1 : 0,
										  get_attname(c->relid, c->attnum, false)));
	}

	job->set_clause = psprintf("%s = (%s\n)", quote_identifier(new_column),
							   using_expr ? using_expr : psprintf("%s::%s", quote_identifier(column),
																  new_type_name));
	job->kind_args = lappend(job->kind_args, psprintf("new_attnum=%d", get_attnum(relid, new_column)));
	job->kind_args = lappend(job->kind_args, psprintf("new_column=%s", new_column));
	job->kind_args = lappend(job->kind_args, psprintf("old_column=%s", old_column));
	job->kind_args = lappend(job->kind_args, psprintf("function=%s", function));
	if (using_expr == NULL)
		job->kind_args = lappend(job->kind_args, pstrdup("plain_cast=true"));
	job->kind_args = lappend(job->kind_args, psprintf("not_null=%s", not_null ? "true" : "false"));
	job->kind_args = lappend(job->kind_args,
							 psprintf("check=%s", TruncatedName("mig_not_null_", new_column)));
	*detail = psprintf("change column %s%s to %s: new column %s kept by a trigger, walk, %scopy %d index%s, swap%s",
					   quote_identifier(column),
					   refs == NIL ? "" : psprintf(" and %d referencing column%s", list_length(refs),
												   list_length(refs) == 1 ? "" : "s"),
					   new_type_name, quote_identifier(new_column),
					   not_null ? "NOT NULL check, " : "",
					   list_length(ColumnIndexes(relid, attnum, InvalidAttrNumber)),
					   list_length(ColumnIndexes(relid, attnum, InvalidAttrNumber)) == 1 ? "" : "es",
					   cleanup ? ", drop the old column" : "");
	return true;
}

/*
 * AddTrigger creates the trigger function of column attnum of table rel
 * (new_column = the resolved set clause's expression, every name
 * qualified, or the plain cast of column to new_type) and the trigger, in
 * the caller's transaction that holds the table's lock.
 */
static void
AddTrigger(Relation rel, AttrNumber attnum, const char *column, const char *new_column,
		   const char *function, const char *set_clause, const char *plain_cast_type)
{
	char	   *prefix = psprintf("%s = ", quote_identifier(new_column));
	const char *expr = set_clause;

	if (expr == NULL || strncmp(expr, prefix, strlen(prefix)) != 0)
		elog(ERROR, "unexpected resolved set clause of a change_type job: %s",
			 expr ? expr : "(null)");
	expr += strlen(prefix);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* the default using_expr, column::new_type: the cast alone, no query per row */
	if (plain_cast_type != NULL)
		MigExecDDL(FunctionSql(function,
							   psprintf("BEGIN\n  NEW.%s := NEW.%s::%s;\n  RETURN NEW;\nEND",
										quote_identifier(new_column), quote_identifier(column),
										plain_cast_type)));
	else
		MigExecDDL(FunctionSql(function, ForwardBody(quote_identifier(new_column), expr,
													 RelationGetRelationName(rel))));
	AddJobTrigger(RelationGetRelid(rel), attnum, function);
	SPI_finish();
	CommandCounterIncrement();
}

/*
 * AddOwnTrigger creates the trigger of the job's own column, its
 * expression from the walk's resolved set clause.
 */
static void
AddOwnTrigger(Relation rel, MigJob *job, const MigTarget *target)
{
	AddTrigger(rel, AttArg(job, "attnum"), Arg(job, "column"), Arg(job, "new_column"),
			   Arg(job, "function"), target->set_clause,
			   MigKindArg(job, "plain_cast") != NULL ? Arg(job, "new_type") : NULL);
}

/*
 * ReferencingTargets: with convert_referencing, the walk's
 * targets of the referencing columns (numbered from first_ord on), each
 * table's upper key read under the lock the start holds, and their
 * triggers.  Adds the planner's estimates to *rows_total.  Caller is in
 * the start's transaction; SPI not connected.
 */
static List *
ReferencingTargets(MigJob *job, int first_ord, int64 *rows_total)
{
	List	   *result = NIL;
	ListCell   *lc;
	int			ord = first_ord;

	if (ArgIsTrue(job, "catalog_only"))
		return NIL;
	foreach(lc, JobColumns(job))
	{
		CtColumn   *c = lfirst(lc);
		Relation	rel;
		List	   *targets;
		List	   *set_columns = NIL;
		int64		rows = 0;
		const char *column;
		MigTarget  *target;

		if (foreach_current_index(lc) == 0)
			continue;
		rel = relation_open(c->relid, NoLock);
		column = get_attname(c->relid, c->attnum, false);
		PushActiveSnapshot(GetLatestSnapshot());
		targets = MigBuildTargets(rel, psprintf("%s = (%s::%s\n)", quote_identifier(c->new_column),
												quote_identifier(column), Arg(job, "new_type")),
								  NULL, &rows, &set_columns);
		PopActiveSnapshot();
		if (list_length(targets) != 1)
			elog(ERROR, "a referencing column of a change_type job has one target");
		target = linitial(targets);
		target->ord = ord++;
		AddTrigger(rel, c->attnum, column, c->new_column, c->function, target->set_clause,
				   Arg(job, "new_type"));
		relation_close(rel, NoLock);
		*rows_total += rows;
		result = lappend(result, target);
	}
	return result;
}

/* alter: the catalog-only change */
static char *
DescribeAlter(const MigJob *job)
{
	return psprintf("changing column %s to %s (a catalog change)",
					ColumnName(job, AttArg(job, "attnum")), Arg(job, "new_type"));
}

static bool
DoneAlter(const MigJob *job)
{
	Oid			typid;
	int32		typmod;
	Oid			collid;

	if (!ArgIsTrue(job, "catalog_only"))
		return true;
	get_atttypetypmodcoll(job->relid, AttArg(job, "attnum"), &typid, &typmod, &collid);
	return typid == (Oid) strtoul(Arg(job, "new_typid"), NULL, 10) &&
		typmod == atoi(Arg(job, "new_typmod"));
}

static void
RunAlter(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", MigJobRelationName(job),
						ColumnName(job, AttArg(job, "attnum")), Arg(job, "new_type")));
}

/* check_not_null, validate_not_null */
static bool
Walks(const MigJob *job)
{
	return !ArgIsTrue(job, "catalog_only");
}

static char *
DescribeCheck(const MigJob *job)
{
	return psprintf("adding check %s NOT VALID", ArgOr(job, "check", "(none)"));
}

/* CheckState: ConstraintState of the NOT NULL check of column c */
static int
CheckState(const CtColumn *c)
{
	return ConstraintState(c->relid, c->check);
}

static bool
Swapped(const MigJob *job)
{
	return MigStepWasDone(job, "swap");
}

/* LeastCheckState: the least CheckState of the job's NOT NULL columns (2: none) */
static int
LeastCheckState(const MigJob *job)
{
	ListCell   *lc;
	int			state = 2;

	foreach(lc, JobColumns(job))
	{
		CtColumn   *c = lfirst(lc);

		if (c->not_null)
			state = Min(state, CheckState(c));
	}
	return state;
}

static bool
DoneCheck(const MigJob *job)
{
	return !Walks(job) || Swapped(job) || LeastCheckState(job) > 0;
}

static void
RunCheck(const MigJob *job)
{
	ListCell   *lc;

	foreach(lc, JobColumns(job))
	{
		CtColumn   *c = lfirst(lc);

		if (c->not_null && CheckState(c) == 0)
			MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
								QualifiedRelationName(c->relid), quote_identifier(c->check),
								ColumnNameOf(c->relid, c->new_attnum)));
	}
}

static char *
DescribeValidate(const MigJob *job)
{
	return psprintf("validating check %s", ArgOr(job, "check", "(none)"));
}

static bool
DoneValidate(const MigJob *job)
{
	return !Walks(job) || Swapped(job) || LeastCheckState(job) == 2;
}

static void
RunValidate(const MigJob *job)
{
	ListCell   *lc;

	foreach(lc, JobColumns(job))
	{
		CtColumn   *c = lfirst(lc);

		if (c->not_null && CheckState(c) == 1)
		{
			NoteOtherTable(job, c->relid, ShareUpdateExclusiveLock);
			MigExecDDL(psprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s",
								QualifiedRelationName(c->relid), quote_identifier(c->check)));
		}
	}
}

/*
 * RunEach runs the statements of work (in TopMemoryContext) one after the
 * other, each in a transaction of its own (MigRunTopLevel), and frees them
 */
static void
RunEach(const MigJob *job, List *work)
{
	ListCell   *lc;

	foreach(lc, work)
		MigRunTopLevel(lfirst(lc), job->lock_timeout_ms);
	list_free_deep(work);
}

/* copy_indexes */
static char *
DescribeCopy(const MigJob *job)
{
	return psprintf("building copies of the indexes on column %s",
					ColumnName(job, AttArg(job, "attnum")));
}

static bool
DoneCopy(const MigJob *job)
{
	ListCell   *lc;
	ListCell   *ic;

	if (!Walks(job) || Swapped(job))
		return true;
	foreach(lc, JobColumns(job))
	{
		CtColumn   *c = lfirst(lc);

		foreach(ic, ColumnIndexes(c->relid, c->attnum, c->new_attnum))
			if (MigIndexState(c->relid, CopyIndexName(lfirst_oid(ic))) != 2)
				return false;
	}
	return true;
}

/* IsRevert: job is the revert of a change_type job (mig_revert) */
static bool
IsRevert(const MigJob *job)
{
	return MigKindArg(job, "reverts") != NULL;
}

/*
 * KeptIndex: in a revert, the index the reverted job's swap kept on the
 * column it swapped out (a plain index renamed OldIndexName, valid, on
 * c->new_attnum here) that is the copy of index indexoid would be, or
 * InvalidOid; used is the list of those taken already.  Compared as the
 * statements that would build them.
 */
static Oid
KeptIndex(const CtColumn *c, Oid indexoid, const char *name, List *used)
{
	char	   *want = CopyIndexSql(c->relid, indexoid, c->attnum, c->new_attnum, name);
	ListCell   *lc;

	foreach(lc, ColumnIndexes(c->relid, c->new_attnum, c->attnum))
	{
		Oid			kept = lfirst_oid(lc);
		char	   *kept_name = get_rel_name(kept);

		if (kept_name != NULL && strcmp(kept_name, OldIndexName(kept)) == 0 &&
			!list_member_oid(used, kept) && MigIndexState(c->relid, kept_name) == 2 &&
			strcmp(CopyIndexSql(c->relid, kept, c->new_attnum, c->new_attnum, name), want) == 0)
			return kept;
	}
	return InvalidOid;
}

/*
 * RunCopy builds each copy not yet valid, one CREATE INDEX CONCURRENTLY
 * after the other (between transactions, as kind_index.c does); an INVALID
 * one left by an interrupted build is dropped first.  A revert takes the
 * index the reverted job kept instead, where there is one (a rename).
 */
static void
RunCopy(const MigJob *job)
{
	List	   *work = NIL;
	List	   *used = NIL;
	ListCell   *lc;
	ListCell   *ic;
	MemoryContext old;

	StartTransactionCommand();
	foreach(lc, JobColumns(job))
	{
		CtColumn   *c = lfirst(lc);
		char	   *schema = get_namespace_name(get_rel_namespace(c->relid));

		foreach(ic, ColumnIndexes(c->relid, c->attnum, c->new_attnum))
		{
			Oid			indexoid = lfirst_oid(ic);
			char	   *name = CopyIndexName(indexoid);
			int			state = MigIndexState(c->relid, name);
			char	   *sql;

			if (state == 2)
				continue;
			if (state == 0 && IsRevert(job))
			{
				Oid			kept = KeptIndex(c, indexoid, name, used);

				if (OidIsValid(kept))
				{
					used = lappend_oid(used, kept);
					old = MemoryContextSwitchTo(TopMemoryContext);
					work = lappend(work, psprintf("ALTER INDEX %s RENAME TO %s",
												  quote_qualified_identifier(schema,
																			 get_rel_name(kept)),
												  quote_identifier(name)));
					MemoryContextSwitchTo(old);
					continue;
				}
			}
			sql = CopyIndexSql(c->relid, indexoid, c->attnum, c->new_attnum, name);
			NoteOtherTable(job, c->relid, ShareUpdateExclusiveLock);
			old = MemoryContextSwitchTo(TopMemoryContext);
			if (state == 1)
				work = lappend(work, psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
											  quote_qualified_identifier(schema, name)));
			work = lappend(work, pstrdup(sql));
			MemoryContextSwitchTo(old);
		}
	}
	CommitTransactionCommand();
	RunEach(job, work);
}

/* add_constraints */
static char *
DescribeAddTwins(const MigJob *job)
{
	return psprintf("adding the foreign keys and checks of column %s on the new column NOT VALID",
					ColumnName(job, AttArg(job, "attnum")));
}

static bool
DoneAddTwins(const MigJob *job)
{
	return !Walks(job) || Swapped(job) || TwinsState(job) >= 1;
}

static void
RunAddTwins(const MigJob *job)
{
	List	   *columns = JobColumns(job);
	ListCell   *lc;

	foreach(lc, JobConstraints(columns))
	{
		Oid			conoid = lfirst_oid(lc);
		Oid			conrelid;
		Oid			confrelid = ReferencedTable(conoid);

		(void) ConstraintType(conoid, &conrelid);
		if (ConstraintState(conrelid, TwinName(conoid)) != 0)
			continue;
		/* ADD CONSTRAINT: SHARE ROW EXCLUSIVE on both tables of a foreign key */
		NoteOtherTable(job, conrelid, ShareRowExclusiveLock);
		if (OidIsValid(confrelid))
			NoteOtherTable(job, confrelid, ShareRowExclusiveLock);
		MigExecDDL(TwinSql(conoid, columns, TwinName(conoid)));
	}
}

/* validate_constraints */
static char *
DescribeValidateTwins(const MigJob *job)
{
	return psprintf("validating the foreign keys and checks of the new column of %s",
					ColumnName(job, AttArg(job, "attnum")));
}

static bool
DoneValidateTwins(const MigJob *job)
{
	return !Walks(job) || Swapped(job) || TwinsState(job) == 2;
}

/*
 * RunValidateTwins validates each twin not valid yet, each in a
 * transaction of its own (SHARE UPDATE EXCLUSIVE on the table, writes go
 * on), so a job stopped half-way keeps the twins it validated.
 */
static void
RunValidateTwins(const MigJob *job)
{
	List	   *work = NIL;
	ListCell   *lc;
	MemoryContext old;

	StartTransactionCommand();
	foreach(lc, JobConstraints(JobColumns(job)))
	{
		Oid			conoid = lfirst_oid(lc);
		Oid			conrelid;

		(void) ConstraintType(conoid, &conrelid);
		if (ConstraintState(conrelid, TwinName(conoid)) == 2)
			continue;
		NoteOtherTable(job, conrelid, ShareUpdateExclusiveLock);
		old = MemoryContextSwitchTo(TopMemoryContext);
		work = lappend(work, psprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s",
									  QualifiedRelationName(conrelid),
									  quote_identifier(TwinName(conoid))));
		MemoryContextSwitchTo(old);
	}
	CommitTransactionCommand();
	RunEach(job, work);
}

/* swap */
static char *
DescribeSwap(const MigJob *job)
{
	return psprintf("swapping column %s for the new one", ColumnName(job, AttArg(job, "attnum")));
}

static bool
DoneSwap(const MigJob *job)
{
	return !Walks(job);
}

/* OwnedSequence: the sequence OWNED BY column attnum, or InvalidOid */
static Oid
OwnedSequence(Oid relid, AttrNumber attnum)
{
	List	   *seqs = getOwnedSequences(relid);
	ListCell   *lc;

	foreach(lc, seqs)
	{
		Oid			seq = lfirst_oid(lc);
		int32		colno;
		Oid			tableid;

		if (sequenceIsOwned(seq, DEPENDENCY_AUTO, &tableid, &colno) && tableid == relid &&
			colno == attnum)
			return seq;
	}
	return InvalidOid;
}

/*
 * IdentityDependency: the pg_depend row (a copy) of the sequence of
 * identity column attnum of table relid (its internal dependency on the
 * column), or NULL.
 */
static HeapTuple
IdentityDependency(Relation depRel, Oid relid, AttrNumber attnum)
{
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	result = NULL;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(attnum));
	scan = systable_beginscan(depRel, DependReferenceIndexId, true, NULL, 3, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->classid == RelationRelationId && dep->deptype == DEPENDENCY_INTERNAL &&
			get_rel_relkind(dep->objid) == RELKIND_SEQUENCE)
		{
			result = heap_copytuple(tup);
			break;
		}
	}
	systable_endscan(scan);
	return result;
}

/* SetIdentity: attidentity of column attnum of table relid */
static void
SetIdentity(Relation attRel, Oid relid, AttrNumber attnum, char identity)
{
	HeapTuple	tup = SearchSysCacheCopyAttNum(relid, attnum);

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for column %d of relation %u", attnum, relid);
	((Form_pg_attribute) GETSTRUCT(tup))->attidentity = identity;
	CatalogTupleUpdate(attRel, &tup->t_self, tup);
	heap_freetuple(tup);
}

/*
 * MoveIdentity: when column from of table relid is an identity column,
 * the identity moves to column to (NOT NULL already): the same sequence
 * (its name, OID, privileges, options and state, so the next value
 * continues after the last one handed out, is_called and values beyond
 * the largest row included), its internal dependency re-pointed at the
 * column, ALWAYS or BY DEFAULT kept, and the sequence made AS the
 * column's type as ALTER COLUMN TYPE makes it (the same ALTER SEQUENCE
 * ... AS: a minimum or maximum that was the old type's bound becomes the
 * new type's, others stay).  Column from is no identity column
 * afterwards (its NOT NULL can go).  No SQL moves an identity (DROP
 * IDENTITY drops the sequence, OWNED BY refuses an identity sequence), so
 * the two catalog rows are updated here, under the table's ACCESS
 * EXCLUSIVE lock the swap holds, once the job's role is seen to own the
 * table.  The swap back (mig_revert) moves it back by the same call.
 */
static void
MoveIdentity(Oid relid, AttrNumber from, AttrNumber to)
{
	HeapTuple	atttup;
	char		identity;
	bool		to_not_null;
	Relation	depRel;
	Relation	attRel;
	HeapTuple	dep;
	Oid			seq;
	HeapTuple	st;
	Oid			seqtype;
	Oid			to_type;

	atttup = SearchSysCacheAttNum(relid, from);
	if (!HeapTupleIsValid(atttup))
		elog(ERROR, "cache lookup failed for column %d of relation %u", from, relid);
	identity = ((Form_pg_attribute) GETSTRUCT(atttup))->attidentity;
	ReleaseSysCache(atttup);
	if (identity == '\0')
		return;
	atttup = SearchSysCacheAttNum(relid, to);
	if (!HeapTupleIsValid(atttup))
		elog(ERROR, "cache lookup failed for column %d of relation %u", to, relid);
	to_not_null = ((Form_pg_attribute) GETSTRUCT(atttup))->attnotnull;
	ReleaseSysCache(atttup);
	if (!MigOwnsTable(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	if (!to_not_null)
		elog(ERROR, "column %d of relation %u must be NOT NULL before it becomes an identity column",
			 to, relid);

	depRel = table_open(DependRelationId, RowExclusiveLock);
	dep = IdentityDependency(depRel, relid, from);
	if (dep == NULL)
		elog(ERROR, "identity column %d of relation %u has no sequence", from, relid);
	seq = ((Form_pg_depend) GETSTRUCT(dep))->objid;
	LockRelationOid(seq, AccessExclusiveLock);
	((Form_pg_depend) GETSTRUCT(dep))->refobjsubid = to;
	CatalogTupleUpdate(depRel, &dep->t_self, dep);
	heap_freetuple(dep);
	table_close(depRel, RowExclusiveLock);

	attRel = table_open(AttributeRelationId, RowExclusiveLock);
	SetIdentity(attRel, relid, from, '\0');
	SetIdentity(attRel, relid, to, identity);
	table_close(attRel, RowExclusiveLock);
	CommandCounterIncrement();

	/* the sequence AS the column's type, as ALTER COLUMN TYPE makes it */
	st = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seq));
	if (!HeapTupleIsValid(st))
		elog(ERROR, "cache lookup failed for sequence %u", seq);
	seqtype = ((Form_pg_sequence) GETSTRUCT(st))->seqtypid;
	ReleaseSysCache(st);
	to_type = get_atttype(relid, to);
	if (seqtype != to_type)
		MigExecDDL(psprintf("ALTER SEQUENCE %s AS %s", QualifiedRelationName(seq),
							format_type_be_qualified(to_type)));
}

/*
 * NotNullName: the name of the NOT NULL constraint of column attnum of
 * relid (pg_constraint lists them since PostgreSQL 18), or NULL.
 */
static char *
NotNullName(Oid relid, AttrNumber attnum)
{
#if PG_VERSION_NUM >= 180000
	HeapTuple	tup = findNotNullConstraintAttnum(relid, attnum);

	if (HeapTupleIsValid(tup))
		return pstrdup(NameStr(((Form_pg_constraint) GETSTRUCT(tup))->conname));
#endif
	return NULL;
}

/*
 * SwapColumn: the swap of one of the job's columns, its table locked, the
 * constraints carried over already dropped: NOT NULL (under the old
 * column's constraint name, as ALTER COLUMN TYPE keeps it), the default,
 * the sequence or the identity, the indexes and the constraints on them,
 * the names, and the trigger turned around.
 */
static void
SwapColumn(const MigJob *job, const CtColumn *c)
{
	char	   *rel = QualifiedRelationName(c->relid);
	const char *column = ColumnNameOf(c->relid, c->attnum);
	const char *new_column = ColumnNameOf(c->relid, c->new_attnum);
	const char *old_column = quote_identifier(c->old_column);
	char	   *schema = get_namespace_name(get_rel_namespace(c->relid));
	Oid			new_typid = (Oid) strtoul(Arg(job, "new_typid"), NULL, 10);
	Oid			seq;
	ListCell   *lc;
	HeapTuple	atttup;
	bool		has_default;
	int			nest;
	char	   *not_null_name = NotNullName(c->relid, c->attnum);

	if (c->not_null)
	{
		/* the valid check proves it: no scan */
		MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", rel, new_column));
		MigExecDDL(psprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", rel,
							quote_identifier(c->check)));
	}

	/* the default, deparsed with every name qualified */
	atttup = SearchSysCacheAttNum(c->relid, c->attnum);
	has_default = HeapTupleIsValid(atttup) && ((Form_pg_attribute) GETSTRUCT(atttup))->atthasdef;
	if (HeapTupleIsValid(atttup))
		ReleaseSysCache(atttup);
	if (has_default)
	{
		Node	   *expr;
		char	   *text;

		nest = NewGUCNestLevel();
		(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		{
			Relation	r = table_open(c->relid, AccessExclusiveLock);

			expr = build_column_default(r, c->attnum);
			table_close(r, NoLock);
		}
		/* the default as it is stored, without the coercion to the old type */
		expr = strip_implicit_coercions(expr);
		text = deparse_expression(expr, NIL, false, false);
		AtEOXact_GUC(true, nest);
		MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", rel, column));
		MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", rel, new_column, text));
	}

	/* the sequence: owned by the new column, and as wide as it */
	seq = OwnedSequence(c->relid, c->attnum);
	if (OidIsValid(seq))
	{
		char	   *seqname = QualifiedRelationName(seq);
		HeapTuple	st = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seq));

		MigExecDDL(psprintf("ALTER SEQUENCE %s OWNED BY %s.%s", seqname, rel, new_column));
		if (HeapTupleIsValid(st))
		{
			Oid			seqtype = ((Form_pg_sequence) GETSTRUCT(st))->seqtypid;

			ReleaseSysCache(st);
			if ((new_typid == INT8OID && (seqtype == INT4OID || seqtype == INT2OID)) ||
				(new_typid == INT4OID && seqtype == INT2OID))
				MigExecDDL(psprintf("ALTER SEQUENCE %s AS %s", seqname, format_type_be(new_typid)));
		}
	}

	/* an identity: to the new column, with its sequence */
	MoveIdentity(c->relid, c->attnum, c->new_attnum);

	/* the indexes and the constraints on them, under their names */
	foreach(lc, ColumnIndexes(c->relid, c->attnum, c->new_attnum))
	{
		Oid			indexoid = lfirst_oid(lc);
		char	   *name = get_rel_name(indexoid);
		Oid			con = get_index_constraint(indexoid);
		char	   *copy = CopyIndexName(indexoid);

		if (MigIndexState(c->relid, copy) != 2)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the copy %s of index %s is missing or invalid", copy, name)));
		if (OidIsValid(con))
		{
			HeapTuple	ct = SearchSysCache1(CONSTROID, ObjectIdGetDatum(con));
			Form_pg_constraint cf;
			char	   *conname;
			const char *what;
			const char *defer;

			if (!HeapTupleIsValid(ct))
				elog(ERROR, "cache lookup failed for constraint %u", con);
			cf = (Form_pg_constraint) GETSTRUCT(ct);
			conname = pstrdup(NameStr(cf->conname));
			what = cf->contype == CONSTRAINT_PRIMARY ? "PRIMARY KEY" : "UNIQUE";
			defer = !cf->condeferrable ? "" : cf->condeferred ?
				" DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE";
			ReleaseSysCache(ct);
			MigExecDDL(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", rel, quote_identifier(conname)));
			MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s%s", rel,
								quote_identifier(conname), what, quote_identifier(copy), defer));
		}
		else
		{
			MigExecDDL(psprintf("ALTER INDEX %s RENAME TO %s",
								quote_qualified_identifier(schema, name),
								quote_identifier(OldIndexName(indexoid))));
			MigExecDDL(psprintf("ALTER INDEX %s RENAME TO %s",
								quote_qualified_identifier(schema, copy),
								quote_identifier(name)));
		}
	}

	/* the names, and the old column free to hold NULL */
	MigExecDDL(psprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", rel, column, old_column));
	MigExecDDL(psprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", rel, new_column, column));
	if (c->not_null)
	{
		char	   *name;

		MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", rel, old_column));
		/* PostgreSQL 18 and later named the new one after mig_new_<column> */
		name = NotNullName(c->relid, c->new_attnum);
		if (name && not_null_name && strcmp(name, not_null_name) != 0)
			MigExecDDL(psprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", rel,
								quote_identifier(name), quote_identifier(not_null_name)));
	}

	/* the trigger turned around: the old column follows the new one */
	MigExecDDL(psprintf("DROP TRIGGER %s ON %s", quote_identifier(TriggerName(c->trigger)), rel));
	MigExecDDL(FunctionSql(c->function, ReverseBody(c->old_typid, c->old_type, new_typid,
												  old_column, column)));
	AddJobTrigger(c->relid, c->trigger, c->function);
}

/* Clones: the constraints whose parent is conoid (on the partitions), in OID order */
static List *
Clones(Oid conoid)
{
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	ScanKeyInit(&key, Anum_pg_constraint_conparentid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(conoid));
	scan = systable_beginscan(conrel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		result = lappend_oid(result, ((Form_pg_constraint) GETSTRUCT(tup))->oid);
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	list_sort(result, list_oid_cmp);
	return result;
}

/*
 * CloneRenames: the renames (appended to renames) that give the clones of
 * twin on the partitions of a partitioned table the names of the clones of
 * conoid on the same partitions (which the drop of conoid drops), at every
 * level, so the partitions' constraints keep their names as after ALTER
 * COLUMN TYPE.
 */
static List *
CloneRenames(Oid conoid, Oid twin, List *renames)
{
	List	   *originals = Clones(conoid);
	ListCell   *tc;

	foreach(tc, Clones(twin))
	{
		Oid			partition;
		ListCell   *oc;

		(void) ConstraintType(lfirst_oid(tc), &partition);
		foreach(oc, originals)
		{
			Oid			orelid;

			(void) ConstraintType(lfirst_oid(oc), &orelid);
			if (orelid != partition)
				continue;
			renames = lappend(renames, psprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s",
												QualifiedRelationName(partition),
												quote_identifier(get_constraint_name(lfirst_oid(tc))),
												quote_identifier(get_constraint_name(lfirst_oid(oc)))));
			renames = CloneRenames(lfirst_oid(oc), lfirst_oid(tc), renames);
		}
	}
	return renames;
}

/*
 * RunSwap: one transaction.  The job's table locked first, then the other
 * tables (of the carried constraints and the referencing columns) in OID
 * order (LockTables: each other table waited for briefly); the original constraints dropped (a foreign key before the
 * unique index it needs goes), each column swapped, and the twins given
 * the originals' names.
 */
static void
RunSwap(const MigJob *job)
{
	List	   *columns = JobColumns(job);
	List	   *cons = JobConstraints(columns);
	List	   *tables = ReferencingTables(job->relid, cons);
	List	   *renames = NIL;
	ListCell   *lc;
	ErrorData  *edata;

	foreach(lc, columns)
		if (((CtColumn *) lfirst(lc))->relid != job->relid)
			tables = list_append_unique_oid(tables, ((CtColumn *) lfirst(lc))->relid);
	/* a partitioned table's partitions: the drop of its foreign key goes to them */
	foreach(lc, tables)
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_PARTITIONED_TABLE)
			tables = list_concat_unique_oid(tables, find_all_inheritors(lfirst_oid(lc), NoLock, NULL));
	tables = list_delete_oid(tables, job->relid);
	list_sort(tables, list_oid_cmp);
	foreach(lc, tables)
		NoteOtherTable(job, lfirst_oid(lc), AccessExclusiveLock);
	edata = LockTables(lcons_oid(job->relid, tables), job);
	if (edata != NULL)
		ReThrowError(edata);

	foreach(lc, cons)
	{
		Oid			conoid = lfirst_oid(lc);
		Oid			conrelid;
		char	   *twin = TwinName(conoid);

		(void) ConstraintType(conoid, &conrelid);
		if (ConstraintState(conrelid, twin) != 2)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the copy %s of constraint %s is missing or not validated", twin,
							get_constraint_name(conoid))));
		renames = lappend(renames, psprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s",
											QualifiedRelationName(conrelid),
											quote_identifier(twin),
											quote_identifier(get_constraint_name(conoid))));
		renames = CloneRenames(conoid, get_relation_constraint_oid(conrelid, twin, false), renames);
		MigExecDDL(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", QualifiedRelationName(conrelid),
							quote_identifier(get_constraint_name(conoid))));
	}
	foreach(lc, columns)
		SwapColumn(job, lfirst(lc));
	foreach(lc, renames)
		MigExecDDL(lfirst(lc));
}

/* cleanup */
static char *
DescribeCleanup(const MigJob *job)
{
	return psprintf("dropping the old column %s", ArgOr(job, "old_column", "(none)"));
}

/*
 * ColumnNameAt: the current name of column attnum of table relid, quoted,
 * or NULL once it was dropped (not inlined: a caller with PG_TRY would
 * have its locals)
 */
static pg_noinline const char *
ColumnNameAt(Oid relid, AttrNumber attnum)
{
	HeapTuple	tup = SearchSysCacheAttNum(relid, attnum);
	char	   *name;

	if (!HeapTupleIsValid(tup))
		return NULL;
	name = pstrdup(NameStr(((Form_pg_attribute) GETSTRUCT(tup))->attname));
	ReleaseSysCache(tup);
	return quote_identifier(name);
}

/*
 * OldColumnName: the current name of the old column of c (the swap done:
 * the column of the original number, now mig_old_<col>), quoted, or NULL
 * once it was dropped.  By its number, not by its name.
 */
static const char *
OldColumnName(const CtColumn *c)
{
	return ColumnNameAt(c->relid, c->attnum);
}

/* HasOldColumns: the swap was done and an old column of the job is left */
static bool
HasOldColumns(const MigJob *job)
{
	ListCell   *lc;

	if (!Walks(job) || !Swapped(job))
		return false;
	foreach(lc, JobColumns(job))
		if (OldColumnName(lfirst(lc)) != NULL)
			return true;
	return false;
}

static bool
DoneCleanup(const MigJob *job)
{
	/* a reverted job's old column is the column again */
	return !ArgIsTrue(job, "cleanup") || MigKindArg(job, "reverted_by") != NULL ||
		!HasOldColumns(job);
}

/*
 * IsJobFunction: function is one a job of owner made for table relid (its
 * name pg_mig_change_type_..., in the table's schema, owned by the job's
 * owner): the function of the job's trigger, unless the trigger was made
 * to call another one since (by the table's owner, say), which is then
 * not dropped by whoever drops the trigger.
 */
static bool
IsJobFunction(Oid function, Oid relid, Oid owner)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	Form_pg_proc proc;
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	result = proc->proowner == owner && proc->pronamespace == get_rel_namespace(relid) &&
		strncmp(NameStr(proc->proname), "pg_mig_change_type_", strlen("pg_mig_change_type_")) == 0;
	ReleaseSysCache(tup);
	return result;
}

/*
 * DropTrigger: the trigger of column c (found by the table's OID and the
 * number in its name) and its function (the trigger's, by OID, if it is
 * the job's: IsJobFunction), where they are.  Caller is connected to SPI,
 * the table locked.
 */
static void
DropTrigger(const CtColumn *c, Oid owner)
{
	Oid			trigger = get_trigger_oid(c->relid, TriggerName(c->trigger), true);
	Oid			function = InvalidOid;
	Relation	tgrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	if (!OidIsValid(trigger))
		return;
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigger));
	scan = systable_beginscan(tgrel, TriggerOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		function = ((Form_pg_trigger) GETSTRUCT(tup))->tgfoid;
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	MigExecDDL(psprintf("DROP TRIGGER %s ON %s",
						quote_identifier(TriggerName(c->trigger)), QualifiedRelationName(c->relid)));
	if (OidIsValid(function) && IsJobFunction(function, c->relid, owner))
		MigExecDDL(psprintf("DROP FUNCTION %s", format_procedure_qualified(function)));
}

/* LockColumnTables: the tables of columns, in their order (the job's table first) */
static void
LockColumnTables(List *columns)
{
	ListCell   *lc;

	foreach(lc, columns)
		MigExecDDL(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
							QualifiedRelationName(((CtColumn *) lfirst(lc))->relid)));
}

/*
 * Twins: the foreign keys pg_mig added against column attnum of table
 * relid (the twins mig_ct_con_<oid> of the carried constraints, of this
 * table or another: a job's against its new column, a revert's against the
 * old one), found by what depends on the column, by OID.  The column's
 * own twins and its NOT NULL check go with it and are not listed.
 */
static List *
Twins(Oid relid, AttrNumber attnum)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, DependentConstraints(relid, attnum))
	{
		HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_constraint con;

		if (!HeapTupleIsValid(tup))
			continue;
		con = (Form_pg_constraint) GETSTRUCT(tup);
		if (con->contype == CONSTRAINT_FOREIGN && con->confrelid == relid &&
			strncmp(NameStr(con->conname), "mig_ct_con_", strlen("mig_ct_con_")) == 0)
			result = lappend_oid(result, lfirst_oid(lc));
		ReleaseSysCache(tup);
	}
	return result;
}

/*
 * DropTwins: the foreign keys twins (Twins), their tables locked first.
 * Caller is connected to SPI, the tables of the columns they reference
 * locked.
 */
static void
DropTwins(List *twins)
{
	ListCell   *lc;

	foreach(lc, twins)
	{
		Oid			conrelid;

		(void) ConstraintType(lfirst_oid(lc), &conrelid);
		MigExecDDL(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
							QualifiedRelationName(conrelid)));
	}
	foreach(lc, twins)
	{
		Oid			conrelid;

		(void) ConstraintType(lfirst_oid(lc), &conrelid);
		MigExecDDL(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", QualifiedRelationName(conrelid),
							quote_identifier(get_constraint_name(lfirst_oid(lc)))));
	}
}

/*
 * DropColumns: what a job left of each of its columns: its old column
 * (new_ones false: the swap is done) or, for a job that gives up before
 * its swap (mig_forget of a cancelled or failed job), the new one (its
 * index copies, its NOT NULL check and its own twins go with it); before
 * them the foreign keys pg_mig twinned against them (a job's against its
 * new column, a revert cancelled half-way's against the old one), and
 * each column's trigger and its function.  By the columns' numbers; the
 * job's tables are locked first, the job's table first, then the tables
 * of the twins.  Returns the number of columns dropped.  Caller is
 * connected to SPI, in a transaction under the job's lock_timeout.
 */
static int
DropColumns(const MigJob *job, bool new_ones)
{
	List	   *columns = JobColumns(job);
	List	   *twins = NIL;
	ListCell   *lc;
	int			dropped = 0;

	LockColumnTables(columns);
	foreach(lc, columns)
	{
		CtColumn   *c = lfirst(lc);
		AttrNumber	attnum = new_ones ? c->new_attnum : c->attnum;

		if (new_ones && c->new_attnum == c->attnum)
			elog(ERROR, "the new column of a change_type job is its column");
		if (ColumnNameAt(c->relid, attnum) != NULL)
			twins = list_concat_unique_oid(twins, Twins(c->relid, attnum));
	}
	DropTwins(twins);
	foreach(lc, columns)
	{
		CtColumn   *c = lfirst(lc);
		const char *name = ColumnNameAt(c->relid, new_ones ? c->new_attnum : c->attnum);

		DropTrigger(c, job->owner);
		if (name == NULL)
			continue;			/* dropped already */
		MigExecDDL(psprintf("ALTER TABLE %s DROP COLUMN %s",
							QualifiedRelationName(c->relid), name));
		dropped++;
	}
	return dropped;
}

/*
 * RunCleanup drops the old columns; a revert, in the same transaction,
 * records on the job it reverted that it is reverted and releases that
 * job's job_key (contract 0.4: reversing an operation releases its key).
 */
static void
RunCleanup(const MigJob *job)
{
	const char *of_job = MigKindArg(job, "reverts");

	(void) DropColumns(job, false);
	if (of_job != NULL)
	{
		int64		reverted = strtoi64(of_job, NULL, 10);

		MigRecordEvent(reverted, "reverted",
					   psprintf("column %s of table %s is %s again: job " INT64_FORMAT " swapped it back and dropped the column of type %s",
								ColumnName(job, AttArg(job, "new_attnum")), MigJobRelationName(job),
								Arg(job, "new_type"), job->job_id, Arg(job, "old_type")));
		MigReleaseJobKey(reverted, psprintf("reverted by job " INT64_FORMAT, job->job_id));
	}
}

/*
 * MigChangeTypeForget: mig_forget of a change_type job drops what the job
 * left, so that the table is as the job's end or its start would leave it:
 * after its swap (succeeded with cleanup => false, or cancelled or failed
 * afterwards), the cleanup step's drops; before its swap (cancelled or
 * failed), what it built (DropColumns).  Never for a revert, whose new
 * column is the old column of the job it reverts, and nothing for a
 * change in the catalog only.  In the caller's transaction (all or
 * nothing), with the caller's rights, under the job's lock_timeout; a lock
 * timeout is an error that says to retry.  Returns the detail of the event
 * *event ('old column dropped', 'new column dropped'), or NULL when
 * nothing was left.  The job's kind is loaded, the job finished.
 */
char *
MigChangeTypeForget(const MigJob *job, const char **event)
{
	int			nest;
	int			dropped = 0;
	bool		swapped;
	const char *column;
	const char *what;
	MemoryContext ctx = CurrentMemoryContext;

	if (IsRevert(job) || !Walks(job))
		return NULL;
	swapped = Swapped(job);
	if (swapped)
	{
		if (!HasOldColumns(job))
			return NULL;
		column = OldColumnName(linitial(JobColumns(job)));
		what = "old";
	}
	else
	{
		if (job->state == MIG_STATE_SUCCEEDED)
			return NULL;
		column = quote_identifier(Arg(job, "new_column"));
		what = "new";
	}
	nest = NewGUCNestLevel();
	MigSetLockTimeout(job->lock_timeout_ms, GUC_ACTION_SAVE);
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		dropped = DropColumns(job, !swapped);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
		{
			FlushErrorState();
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot forget job " INT64_FORMAT ": %s", job->job_id, edata->message),
					 errdetail("What the job left (the %s column %s, its trigger and the trigger's function) is dropped with your rights; nothing was dropped.",
							   what, column),
					 errhint("Call mig_forget(" INT64_FORMAT ") as the job's owner, %s, or as a role that can SET ROLE to it.",
							 job->job_id,
							 quote_identifier(job->owner_name ? job->owner_name :
											  GetUserNameFromId(job->owner, false)))));
		}
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("cannot forget job " INT64_FORMAT ": the lock to drop the %s column %s was not granted within lock_timeout",
						job->job_id, what, column),
				 errdetail("It waited the job's lock_timeout (" INT64_FORMAT " ms) for a lock on table %s or a table that references it; nothing was dropped.",
						   job->lock_timeout_ms, MigJobRelationName(job)),
				 errhint("Call mig_forget(" INT64_FORMAT ") again when the sessions that use the table are done.",
						 job->job_id)));
	}
	PG_END_TRY();
	SPI_finish();
	AtEOXact_GUC(true, nest);
	*event = swapped ? "old column dropped" : "new column dropped";
	if (dropped == 0)
		return NULL;
	if (swapped && dropped == 1)
		return psprintf("%s of table %s dropped, with its indexes, its trigger and the trigger's function",
						column, MigJobRelationName(job));
	if (swapped)
		return psprintf("%s of table %s and %d old referencing columns dropped, with their indexes, triggers and the triggers' functions",
						column, MigJobRelationName(job), dropped - 1);
	if (dropped == 1)
		return psprintf("%s of table %s dropped, with its index copies and foreign keys, its trigger and the trigger's function: the column keeps its old type",
						column, MigJobRelationName(job));
	return psprintf("%s of table %s and %d new referencing columns dropped, with their index copies and foreign keys, triggers and the triggers' functions: the columns keep their old type",
					column, MigJobRelationName(job), dropped - 1);
}

/*
 * UndoCall: the call that changes the column of job back by a new job
 * (the hint of a revert that is refused)
 */
static char *
UndoCall(const MigJob *job)
{
	return psprintf("mig_change_type(%s, %s, %s)",
					quote_literal_cstr(MigJobRelationName(job)),
					quote_literal_cstr(Arg(job, "column")),
					quote_literal_cstr(Arg(job, "old_type")));
}

/*
 * ReadInt8: the one bigint of sql, a query of one row every name of which
 * is qualified, read with the caller's rights under search_path
 * pg_catalog; *isnull says whether it is NULL.  what names the query's
 * action in the error if it returns no row ("count the rows of table t").
 */
static int64
ReadInt8(const char *sql, const char *what, bool *isnull)
{
	int64		value;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not %s", what);
	value = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull));
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return value;
}

/*
 * CountUnfit: the rows of table relid whose old column (old_attnum) is NULL
 * where the current one (attnum) is not: values the old type cannot hold.
 * Read with the caller's rights, every name qualified.
 */
static int64
CountUnfit(Oid relid, AttrNumber old_attnum, AttrNumber attnum)
{
	bool		isnull;

	return ReadInt8(psprintf("SELECT pg_catalog.count(*) FROM ONLY %s WHERE %s IS NULL AND %s IS NOT NULL",
							 QualifiedRelationName(relid), ColumnNameOf(relid, old_attnum),
							 ColumnNameOf(relid, attnum)),
					psprintf("count the rows of table %s", get_rel_name(relid)), &isnull);
}

/*
 * CheckIdentityFits: when column from of table relid is an identity column
 * whose identity a revert moves back to a column of the narrower type
 * to_typid, its sequence's last value must fit that type (the swap's
 * ALTER SEQUENCE ... AS would fail otherwise, "RESTART value ... cannot be
 * greater than MAXVALUE", or less than MINVALUE for a descending one):
 * refused at the revert's start, with the value.  The last value whether
 * handed out or yet to be (after setval(..., false) or RESTART, where
 * pg_sequence_last_value says NULL), read from the sequence with the
 * caller's rights, as CountUnfit reads the table.
 */
static void
CheckIdentityFits(int64 job_id, Oid relid, AttrNumber from, Oid to_typid)
{
	Relation	depRel;
	HeapTuple	dep;
	Oid			seq;
	int64		low;
	int64		high;
	int64		last;
	bool		isnull;

	if (to_typid == INT4OID)
	{
		low = PG_INT32_MIN;
		high = PG_INT32_MAX;
	}
	else if (to_typid == INT2OID)
	{
		low = PG_INT16_MIN;
		high = PG_INT16_MAX;
	}
	else
		return;
	depRel = table_open(DependRelationId, AccessShareLock);
	dep = IdentityDependency(depRel, relid, from);
	table_close(depRel, AccessShareLock);
	if (dep == NULL)
		return;
	seq = ((Form_pg_depend) GETSTRUCT(dep))->objid;
	/* locked first: its qualified name stays its own until the end */
	LockRelationOid(seq, AccessShareLock);
	last = ReadInt8(psprintf("SELECT last_value FROM %s", QualifiedRelationName(seq)),
					psprintf("read sequence %s", get_rel_name(seq)), &isnull);
	/* a descending sequence goes beyond the type at its low end */
	if (isnull || (last >= low && last <= high))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot revert job " INT64_FORMAT ": sequence %s of identity column %s of table %s has gone beyond type %s",
					job_id, get_rel_name(seq), ColumnNameOf(relid, from), QualifiedRelationName(relid),
					format_type_be(to_typid)),
			 errdetail("Its last value " INT64_FORMAT " does not fit type %s, which the swap back makes the sequence.",
					   last, format_type_be(to_typid)),
			 errhint("If no row holds a value beyond type %s, set the sequence back with setval() and call mig_revert(" INT64_FORMAT ") again; or keep the new type and drop the old column with mig_forget(" INT64_FORMAT ").",
					 format_type_be(to_typid),
					 job_id, job_id)));
}

/*
 * MigChangeTypeRevert: mig_revert of change_type job (sql_undo.c): checks
 * that the job can be swapped back and starts the revert, a new job of
 * kind change_type made of the job's arguments turned around (see
 * "Revert" in the file header), with the fields of revert (owner, knobs,
 * job_key) the caller set.  Returns its id.  The caller holds the job's
 * row locked, checked that the caller may control it and that no revert
 * of it is unfinished or done; it records reverted_by on the job.
 */
int64
MigChangeTypeRevert(const MigJob *job, MigJob *revert)
{
	int64		job_id = job->job_id;
	const char *table = MigJobRelationName(job);
	List	   *columns;
	CtColumn   *c;
	const char *old;
	const char *column;
	char	   *rev_column;
	List	   *relids;
	List	   *tables;
	ListCell   *lc;
	int64		busy;
	int64		unfit;
	int64		revert_id;
	int32		old_typmod;
	Oid			typid;
	Oid			collid;
	List	   *args = NIL;

	if (MigKindArg(job, "reverts") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot revert job " INT64_FORMAT ": it is the revert of job %s",
						job_id, Arg(job, "reverts")),
				 errhint("To change the type again, start a new job with %s.",
						 UndoCall(job))));
	if (!Walks(job))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot revert job " INT64_FORMAT ": it changed the type in the catalog only",
						job_id),
				 errdetail("Job " INT64_FORMAT " kept no old column to swap back.", job_id),
				 errhint("To go back, change the type again with %s.", UndoCall(job))));
	if (!Swapped(job))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot revert job " INT64_FORMAT ": it has not swapped the columns", job_id),
				 errdetail("Job " INT64_FORMAT " is %s; column %s of table %s still has its old type.",
						   job_id, MigStateName(job->state),
						   ColumnName(job, AttArg(job, "attnum")), table),
				 job->state == MIG_STATE_CANCELLED || job->state == MIG_STATE_FAILED ?
				 errhint("Nothing to swap back: mig_forget(" INT64_FORMAT ") drops column %s, its trigger and the trigger's function.",
						 job_id, quote_identifier(Arg(job, "new_column"))) :
				 errhint("Cancel it with mig_cancel(" INT64_FORMAT "): the column keeps its old type; then mig_forget(" INT64_FORMAT ") drops column %s, its trigger and the trigger's function.",
						 job_id, job_id, quote_identifier(Arg(job, "new_column")))));
	if (job->state != MIG_STATE_SUCCEEDED && job->state != MIG_STATE_CANCELLED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot revert job " INT64_FORMAT " because it has not finished", job_id),
				 errdetail("Job " INT64_FORMAT " is %s; it swapped the columns and has not dropped the old one yet.",
						   job_id, MigStateName(job->state)),
				 job->state == MIG_STATE_FAILED ?
				 errhint("Cancel it with mig_cancel(" INT64_FORMAT ") so that it keeps the old column, then revert it.",
						 job_id) :
				 errhint("Wait for it with mig_wait(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ").",
						 job_id, job_id)));

	columns = JobColumns(job);
	c = linitial(columns);
	old = OldColumnName(c);
	if (old == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot revert job " INT64_FORMAT ": its old column was dropped", job_id),
				 errdetail("Column %s of table %s with the old values was dropped by %s.",
						   quote_identifier(c->old_column), table,
						   MigKindArg(job, "forgotten") ? "mig_forget" : "the job's cleanup"),
				 errhint("To go back, change the type again with %s.", UndoCall(job))));
	column = ColumnName(job, c->new_attnum);

	/*
	 * the job's tables (the table first, then those of the referencing
	 * columns it changed) and the tables of its foreign keys: no other job
	 * on them
	 */
	tables = NIL;
	foreach(lc, columns)
		tables = list_append_unique_oid(tables, ((CtColumn *) lfirst(lc))->relid);
	relids = list_concat_unique_oid(list_copy(tables),
									ReferencingTables(job->relid, JobConstraints(columns)));
	(void) MigLockTreeForStart(job->relid);
	busy = MigFindActiveJobOn(relids);
	if (busy != 0)
		MigRefuseBusyTable(get_rel_name(job->relid), busy);

	/* the values the old type cannot hold: the old column has NULL there */
	foreach(lc, columns)
	{
		CtColumn   *u = lfirst(lc);
		const char *u_column = ColumnNameOf(u->relid, u->new_attnum);
		const char *u_old = OldColumnName(u);

		if (u_old == NULL)
			continue;
		unfit = CountUnfit(u->relid, u->attnum, u->new_attnum);
		if (unfit > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot revert job " INT64_FORMAT ": column %s of table %s holds values that type %s cannot hold",
							job_id, u_column, QualifiedRelationName(u->relid), u->old_type),
					 errdetail_plural(INT64_FORMAT " row has a value of column %s that does not fit type %s: the old column %s is NULL in it.",
									  INT64_FORMAT " rows have a value of column %s that does not fit type %s: the old column %s is NULL in them.",
									  (unsigned long) unfit, unfit, u_column, u->old_type, u_old),
					 errhint("Delete those rows or change their values to fit, then call mig_revert(" INT64_FORMAT ") again; or keep the new type and drop the old column with mig_forget(" INT64_FORMAT ").",
							 job_id, job_id)));
		/* an identity's sequence goes back to the old type too */
		CheckIdentityFits(job_id, u->relid, u->new_attnum, u->old_typid);
	}

	/* the name the column of the new type gets at the swap back: free now */
	rev_column = TruncatedName("mig_rev_", Arg(job, "column"));
	if (get_attnum(job->relid, rev_column) != InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_COLUMN),
				 errmsg("cannot revert job " INT64_FORMAT ": column \"%s\" of table %s already exists",
						job_id, rev_column, table),
				 errhint("An earlier revert left it: drop it first.")));

	/*
	 * the NOT NULL check of the old column NOT VALID now, under the lock
	 * (retried under lock_timeout), as the job's start added its own: the
	 * revert's steps then take no ACCESS EXCLUSIVE lock before the swap.
	 * A row that gets NULL there between the count and the lock makes the
	 * step validate_not_null fail, with the error of the check.
	 */
	LockForStart(tables, revert, "the NOT NULL checks of the old columns",
				 psprintf("mig_revert(" INT64_FORMAT ")", job_id));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, columns)
	{
		CtColumn   *u = lfirst(lc);
		const char *u_old = OldColumnName(u);
		char	   *check;

		if (!u->not_null || u_old == NULL)
			continue;
		check = TruncatedName("mig_not_null_", get_attname(u->relid, u->attnum, false));
		if (ConstraintState(u->relid, check) == 0)
			MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
								QualifiedRelationName(u->relid), quote_identifier(check), u_old));
	}
	SPI_finish();
	CommandCounterIncrement();

	/* the job's arguments turned around: the old column is the new one */
	get_atttypetypmodcoll(job->relid, c->attnum, &typid, &old_typmod, &collid);
	args = lappend(args, psprintf("column=%s", Arg(job, "column")));
	args = lappend(args, psprintf("attnum=%d", c->new_attnum));
	args = lappend(args, psprintf("new_type=%s", Arg(job, "old_type")));
	args = lappend(args, psprintf("old_type=%s", Arg(job, "new_type")));
	args = lappend(args, pstrdup("cleanup=true"));
	args = lappend(args, psprintf("new_typid=%u", c->old_typid));
	args = lappend(args, psprintf("new_typmod=%d", old_typmod));
	args = lappend(args, psprintf("old_typid=%s", Arg(job, "new_typid")));
	/* the referencing columns as the job has them (RefColumn turns them around) */
	args = lappend(args, psprintf("refs=%d", list_length(columns) - 1));
	for (int i = 1; i < list_length(columns); i++)
		args = lappend(args, psprintf("ref%d=%s", i, Arg(job, psprintf("ref%d", i))));
	args = lappend(args, psprintf("new_attnum=%d", c->attnum));
	args = lappend(args, psprintf("new_column=%s", get_attname(job->relid, c->attnum, false)));
	args = lappend(args, psprintf("old_column=%s", rev_column));
	args = lappend(args, psprintf("function=%s", c->function));
	args = lappend(args, psprintf("trigger_attnum=%d", c->trigger));
	args = lappend(args, psprintf("not_null=%s", c->not_null ? "true" : "false"));
	args = lappend(args, psprintf("check=%s",
								  TruncatedName("mig_not_null_",
												get_attname(job->relid, c->attnum, false))));
	args = lappend(args, psprintf("reverts=" INT64_FORMAT, job_id));

	revert->kind = MIG_KIND_CHANGE_TYPE;
	revert->kind_args = args;
	revert->set_clause = NULL;
	revert->rows_total = -1;
	revert->keys_total = -1;
	revert->parallel = 1;
	revert_id = MigInsertJob(revert, NIL);
	MigSetJobKind(revert_id, MIG_KIND_CHANGE_TYPE, args);
	MigKeepJobKey(revert_id, revert);
	/* no walk: the reverted job's trigger keeps the old column equal */
	MigMarkStepDone(revert_id, "walk");
	MigRecordEvent(revert_id, "queued",
				   psprintf("revert of job " INT64_FORMAT ": column %s back to %s, the old column %s kept by the trigger, NOT NULL check, copy %d index%s, swap, drop the column of type %s",
							job_id, column, c->old_type, old,
							list_length(ColumnIndexes(job->relid, c->new_attnum, c->attnum)),
							list_length(ColumnIndexes(job->relid, c->new_attnum, c->attnum)) == 1 ? "" : "es",
							Arg(job, "new_type")));
	return revert_id;
}

static const MigStepDef change_type_steps[] = {
	{"alter", DescribeAlter, DoneAlter, RunAlter, false, false},
	/* the walk comes here (walk_at = 1); a catalog-only job has none */
	{"check_not_null", DescribeCheck, DoneCheck, RunCheck, false, false},
	{"validate_not_null", DescribeValidate, DoneValidate, RunValidate, false, false},
	{"copy_indexes", DescribeCopy, DoneCopy, RunCopy, true, true},
	{"add_constraints", DescribeAddTwins, DoneAddTwins, RunAddTwins, false, false},
	{"validate_constraints", DescribeValidateTwins, DoneValidateTwins, RunValidateTwins, true, true},
	{"swap", DescribeSwap, DoneSwap, RunSwap, false, false},
	{"cleanup", DescribeCleanup, DoneCleanup, RunCleanup, false, false},
};

const MigKindDef mig_kind_change_type = {
	.kind = MIG_KIND_CHANGE_TYPE,
	.name = "change_type",
	.start_function = "mig_change_type",
	.with_article = "a change_type",
	.steps = change_type_steps,
	.nsteps = lengthof(change_type_steps),
	/* the walk of the rows there at start, after the step alter */
	.walks = true,
	.walk_at = 1,
	.walk_verb = "changed",
};

PG_FUNCTION_INFO_V1(mig_change_type);

/* the refusals of a start that name what it does (start.h) */
static const MigStartText change_type_text = {
	.recovery = gettext_noop("cannot start a change_type job during recovery"),
	.temp_table = gettext_noop("cannot change the type of a column on temporary table \"%s\""),
	.not_owner = gettext_noop("permission denied to change the type of a column on table \"%s\""),
};

/*
 * mig_change_type(relation, column_name, new_type, using_expr, cleanup,
 * convert_referencing, <walk knobs of mig_start_delete, parallel
 * included>, max_app_latency, job_key) starts a change_type job
 * (the recipe above).  Unless the change is catalog-only, the new column
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

	rel = MigBeginStart(fcinfo, &job, &change_type_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_CHANGE_TYPE, "column_name", "new_type", "using_expr",
				"cleanup", "convert_referencing");
	MigCheckDDLTable(rel, &change_type_text);
	MigRequireArg(fcinfo, 1, "column_name");
	column = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	new_type = MigTextArgument(fcinfo, 2, "new_type", "Pass the new type as ALTER COLUMN TYPE takes it, e.g. 'bigint' or 'varchar(100)'.");
	if (!PG_ARGISNULL(3))
		using_expr = MigTextArgument(fcinfo, 3, "using_expr", NULL);
	MigReadKnobArgs(fcinfo, &job);
	{
		int			argno = MigArgNo(fcinfo, "parallel");

		if (argno >= 0 && !PG_ARGISNULL(argno) && PG_GETARG_INT32(argno) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("mig_change_type walks with one worker"),
					 errhint("Pass parallel => 1; lanes for the walk of a type change are not built yet.")));
	}

	if (PrepareStart(&rel, &job, column, new_type, using_expr,
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
		AddOwnTrigger(rel, &job, linitial(targets));
		/* convert_referencing: the walks of the referencing columns after it */
		targets = list_concat(targets, ReferencingTargets(&job, list_length(targets),
																	   &rows_total));
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
	job_id = MigFinishStart(rel, &job, targets, detail, NULL, NULL);
	if (targets == NIL)
		MigMarkStepDone(job_id, "walk");
	PG_RETURN_INT64(job_id);
}

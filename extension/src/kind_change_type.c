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
 *	  swap			 one transaction under lock_timeout: SET NOT NULL (the
 *					 valid check proves it, no scan), the default, the
 *					 sequence's ownership (an integer sequence made AS the
 *					 new type), the primary key and unique constraints
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
#include "catalog/pg_namespace.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "rewrite/rewriteHandler.h"
#include "executor/spi.h"
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
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "parse_check.h"
#include "pg_mig.h"
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

/* ColumnName: the current name of column attnum of the job's table, quoted */
static const char *
ColumnName(const MigJob *job, AttrNumber attnum)
{
	char	   *name = get_attname(job->relid, attnum, true);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column %d of table %s was dropped while the job ran",
						attnum, job->relation_name)));
	return quote_identifier(name);
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
	if (OidIsValid(index->rd_rel->reltablespace))
		appendStringInfo(&buf, " TABLESPACE %s",
						 quote_identifier(get_tablespace_name(index->rd_rel->reltablespace)));
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
ReverseBody(const MigJob *job, const char *old_column, const char *column)
{
	Oid			old_type = (Oid) strtoul(Arg(job, "old_typid"), NULL, 10);
	Oid			new_type = (Oid) strtoul(Arg(job, "new_typid"), NULL, 10);
	const char *old_name = Arg(job, "old_type");

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
TriggerName(const MigJob *job)
{
	return psprintf("zz_pg_mig_change_type_%s", Arg(job, "attnum"));
}

static char *
TriggerSql(const MigJob *job, const char *relation, const char *column)
{
	/*
	 * every insert and update, not only those of the column: the new
	 * version of a row not walked yet must satisfy the NOT VALID check, and
	 * using_expr may read other columns
	 */
	return psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s"
					" FOR EACH ROW EXECUTE FUNCTION %s()",
					quote_identifier(TriggerName(job)), relation, Arg(job, "function"));
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
 * CarriedConstraints: the foreign keys that reference column attnum of
 * table relid and the column's own checks and foreign keys (through
 * pg_depend, as CheckDependents finds them), in OID order.
 */
static List *
CarriedConstraints(Oid relid, AttrNumber attnum)
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

		if (dep->classid == ConstraintRelationId &&
			(IsReferencingFk(dep->objid, relid, attnum, true) ||
			 IsOwnConstraint(dep->objid, relid, attnum)))
			result = list_append_unique_oid(result, dep->objid);
	}
	systable_endscan(scan);
	table_close(depRel, AccessShareLock);
	list_sort(result, list_oid_cmp);
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

/* AppendColumns: "(a, b)", the columns attnums of table relid, from replaced by to */
static void
AppendColumns(StringInfo buf, Oid relid, List *attnums, AttrNumber from, AttrNumber to)
{
	ListCell   *lc;

	appendStringInfoChar(buf, '(');
	foreach(lc, attnums)
	{
		AttrNumber	a = (AttrNumber) lfirst_int(lc);

		appendStringInfo(buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(get_attname(relid, a == from ? to : a, false)));
	}
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
 * conoid built again from the catalog with column from of table relid
 * replaced by to: a foreign key from its columns, a check from its
 * expression tree with the column's Var changed (deparsed with every name
 * qualified).
 */
static char *
TwinSql(Oid conoid, Oid relid, AttrNumber from, AttrNumber to, const char *name)
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
		SwapVarContext swap = {from, to};
		Node	   *expr;
		int			nest;

		if (isnull)
			elog(ERROR, "null conbin for constraint %u", conoid);
		expr = SwapVarMutator(stringToNode(TextDatumGetCString(d)), &swap);
		nest = NewGUCNestLevel();
		(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		appendStringInfo(&buf, "CHECK (%s)",
						 deparse_expression(expr, deparse_context_for(get_rel_name(relid), relid),
											false, false));
		AtEOXact_GUC(true, nest);
		if (form->connoinherit)
			appendStringInfoString(&buf, " NO INHERIT");
	}
	else
	{
		appendStringInfoString(&buf, "FOREIGN KEY ");
		AppendColumns(&buf, form->conrelid, ConstraintColumns(tuple, Anum_pg_constraint_conkey),
					  form->conrelid == relid ? from : InvalidAttrNumber, to);
		appendStringInfo(&buf, " REFERENCES %s ", QualifiedRelationName(form->confrelid));
		AppendColumns(&buf, form->confrelid, ConstraintColumns(tuple, Anum_pg_constraint_confkey),
					  form->confrelid == relid ? from : InvalidAttrNumber, to);
		if (form->confmatchtype == FKCONSTR_MATCH_FULL)
			appendStringInfoString(&buf, " MATCH FULL");
		appendStringInfo(&buf, " ON UPDATE %s ON DELETE %s", FkAction(form->confupdtype),
						 FkAction(form->confdeltype));
#if PG_VERSION_NUM >= 150000
		{
			List	   *setcols = ConstraintColumns(tuple, Anum_pg_constraint_confdelsetcols);

			if (setcols != NIL)
			{
				appendStringInfoChar(&buf, ' ');
				AppendColumns(&buf, form->conrelid, setcols,
							  form->conrelid == relid ? from : InvalidAttrNumber, to);
			}
		}
#endif
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

/* TwinsState: the least ConstraintState of the twins of the carried constraints */
static int
TwinsState(const MigJob *job)
{
	List	   *cons = CarriedConstraints(job->relid, AttArg(job, "attnum"));
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
				if (get_rel_relkind(conrelid) == RELKIND_PARTITIONED_TABLE ||
					get_rel_relispartition(conrelid))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot change the type of column \"%s\" of table \"%s\" online: partitioned table \"%s\" references it",
									column, RelationGetRelationName(rel),
									get_rel_name(get_rel_relispartition(conrelid) ?
												 get_partition_parent(conrelid, true) : conrelid)),
							 errhint("Drop that foreign key, run mig_change_type() and add it again with mig_add_foreign_key() after the swap; or change the type with ALTER TABLE in a maintenance window.")));
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

typedef struct LockAttempt
{
	Oid			relid;
	int64		lock_timeout_ms;
} LockAttempt;

/* LockOnce: one attempt, under lock_timeout (run by MigTrySubtransaction) */
static void
LockOnce(void *arg)
{
	LockAttempt *attempt = (LockAttempt *) arg;
	char		buf[32];

	snprintf(buf, sizeof(buf), INT64_FORMAT "ms", Max(attempt->lock_timeout_ms, 1));
	(void) set_config_option("lock_timeout", buf, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	LockRelationOid(attempt->relid, AccessExclusiveLock);
}

static ErrorData *
TryLock(Oid relid, const MigJob *job)
{
	LockAttempt attempt = {relid, job->lock_timeout_ms};

	return MigTrySubtransaction(LockOnce, &attempt);
}

/*
 * LockForStart takes the table's ACCESS EXCLUSIVE lock in the caller's
 * transaction, each attempt under lock_timeout, retried with backoff up
 * to max_retries times, so the application never waits behind the
 * request longer than lock_timeout.
 */
static void
LockForStart(Oid relid, const MigJob *job)
{
	for (int attempt = 0;; attempt++)
	{
		ErrorData  *edata = TryLock(relid, job);

		if (edata == NULL)
			return;
		if (!MigErrorIsTransient(edata->sqlerrcode) || attempt >= job->max_retries)
			ereport(ERROR,
					(errcode(edata->sqlerrcode),
					 errmsg("could not lock table %s to add the new column: %s",
							job->relation_name, edata->message),
					 errdetail("%d attempts waited lock_timeout each.", attempt + 1),
					 errhint("Run mig_change_type() again when the sessions that hold locks on the table are done, or with a larger lock_timeout or max_retries.")));
		pg_usleep(Min(START_RETRY_BASE_MS << Min(attempt, 10), START_RETRY_MAX_MS) * 1000L);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * MigChangeTypeStart checks the arguments of mig_change_type and, unless
 * the change is catalog-only, adds the new column and its trigger; fills
 * in job's kind, kind_args and set clause.  Returns true if the job walks
 * (the caller builds its targets now, after the trigger is there).
 */
bool
MigChangeTypeStart(Relation *relp, MigJob *job, const char *column, const char *new_type_text,
				   const char *using_expr, bool cleanup, bool convert_referencing,
				   char **detail)
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
	char	   *schema = get_namespace_name(RelationGetNamespace(rel));
	char	   *relname = RelationGetRelationName(rel);

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
	if (convert_referencing)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("convert_referencing is not built yet"),
				 errhint("Change the type of each referencing column with its own mig_change_type() job.")));
	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", column, relname)));
	atttup = SearchSysCacheAttNum(relid, attnum);
	if (!HeapTupleIsValid(atttup))
		elog(ERROR, "cache lookup failed for column %d of relation %u", attnum, relid);
	att = (Form_pg_attribute) GETSTRUCT(atttup);
	not_null = att->attnotnull;
	if (att->attinhcount > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the type of inherited column \"%s\"", column)));
	if (att->attidentity)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the type of identity column \"%s\" online", column),
				 errhint("Identity columns are not built yet: make it a serial column first (DROP IDENTITY, a sequence and a default), or use ALTER TABLE in a maintenance window.")));
	if (att->attgenerated)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the type of generated column \"%s\" online", column),
				 errhint("Use ALTER TABLE in a maintenance window.")));

	/* the type: resolved once, stored by OID and qualified name */
	typenameTypeIdAndMod(NULL, MigTypeStringToTypeName(new_type_text), &new_type, &new_typmod);
	new_type_name = format_type_extended(new_type, new_typmod,
										 FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	old_type_name = format_type_extended(att->atttypid, att->atttypmod,
										 FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	if (MigTypeAclCheck(new_type, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for type %s", new_type_name)));
	if (new_type == att->atttypid && new_typmod == att->atttypmod && using_expr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"%s\" of table \"%s\" is already of type %s", column, relname,
						new_type_name)));
	ReleaseSysCache(atttup);

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
	job->kind_args = lappend(job->kind_args, psprintf("old_typid=%u", att->atttypid));

	if (using_expr == NULL &&
		IsCatalogOnly(att->atttypid, att->atttypmod, new_type, new_typmod))
	{
		job->kind_args = lappend(job->kind_args, pstrdup("catalog_only=true"));
		*detail = psprintf("change column %s to %s: a catalog change, one ALTER TABLE",
						   quote_identifier(column), new_type_name);
		return false;
	}

	/* the names the job adds: free now */
	new_column = TruncatedName("mig_new_", column);
	old_column = TruncatedName("mig_old_", column);
	if (get_attnum(relid, new_column) != InvalidAttrNumber ||
		get_attnum(relid, old_column) != InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_COLUMN),
				 errmsg("column \"%s\" or \"%s\" of table \"%s\" already exists", new_column,
						old_column, relname),
				 errhint("A column change of an earlier job left it: drop it (or finish that job with mig_resume()) first.")));
	if (MigNamespaceAclCheck(RelationGetNamespace(rel), GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create the trigger function of the job in schema %s", schema),
				 errhint("The job keeps the new column up to date with a trigger function in the table's schema; grant CREATE on the schema to the role that starts it.")));
	function = quote_qualified_identifier(schema, psprintf("pg_mig_change_type_%u_%d", relid, attnum));

	/* the new column and its trigger, under lock_timeout with retries */
	LockForStart(relid, job);
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
	SPI_finish();
	CommandCounterIncrement();
	*relp = relation_open(relid, NoLock);

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
	*detail = psprintf("change column %s to %s: new column %s kept by a trigger, walk, %scopy %d index%s, swap%s",
					   quote_identifier(column), new_type_name, quote_identifier(new_column),
					   not_null ? "NOT NULL check, " : "",
					   list_length(ColumnIndexes(relid, attnum, InvalidAttrNumber)),
					   list_length(ColumnIndexes(relid, attnum, InvalidAttrNumber)) == 1 ? "" : "es",
					   cleanup ? ", drop the old column" : "");
	return true;
}

/*
 * MigChangeTypeAddTrigger creates the trigger function (its expression
 * from the walk's resolved set clause, every name qualified) and the
 * trigger, in the caller's transaction that holds the table's lock.
 */
void
MigChangeTypeAddTrigger(Relation rel, MigJob *job, const MigTarget *target)
{
	const char *new_column = quote_identifier(MigKindArg(job, "new_column"));
	char	   *prefix = psprintf("%s = ", new_column);
	const char *expr = target->set_clause;

	if (expr == NULL || strncmp(expr, prefix, strlen(prefix)) != 0)
		elog(ERROR, "unexpected resolved set clause of a change_type job: %s",
			 expr ? expr : "(null)");
	expr += strlen(prefix);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* the default using_expr, column::new_type: the cast alone, no query per row */
	if (MigKindArg(job, "plain_cast") != NULL)
		MigExecDDL(FunctionSql(MigKindArg(job, "function"),
							   psprintf("BEGIN\n  NEW.%s := NEW.%s::%s;\n  RETURN NEW;\nEND",
										new_column, quote_identifier(MigKindArg(job, "column")),
										MigKindArg(job, "new_type"))));
	else
		MigExecDDL(FunctionSql(MigKindArg(job, "function"),
							   ForwardBody(new_column, expr, RelationGetRelationName(rel))));
	MigExecDDL(TriggerSql(job, job->relation_name, quote_identifier(MigKindArg(job, "column"))));
	SPI_finish();
	CommandCounterIncrement();
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

static int
CheckState(const MigJob *job)
{
	Oid			conoid = get_relation_constraint_oid(job->relid, Arg(job, "check"), true);
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

static bool
Swapped(const MigJob *job)
{
	return MigStepWasDone(job, "swap");
}

static bool
DoneCheck(const MigJob *job)
{
	return !Walks(job) || !ArgIsTrue(job, "not_null") || Swapped(job) || CheckState(job) > 0;
}

static void
RunCheck(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
						MigJobRelationName(job), quote_identifier(Arg(job, "check")),
						ColumnName(job, AttArg(job, "new_attnum"))));
}

static char *
DescribeValidate(const MigJob *job)
{
	return psprintf("validating check %s", ArgOr(job, "check", "(none)"));
}

static bool
DoneValidate(const MigJob *job)
{
	return !Walks(job) || !ArgIsTrue(job, "not_null") || Swapped(job) || CheckState(job) == 2;
}

static void
RunValidate(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", MigJobRelationName(job),
						quote_identifier(Arg(job, "check"))));
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

	if (!Walks(job) || Swapped(job))
		return true;
	foreach(lc, ColumnIndexes(job->relid, AttArg(job, "attnum"), AttArg(job, "new_attnum")))
		if (MigIndexState(job->relid, CopyIndexName(lfirst_oid(lc))) != 2)
			return false;
	return true;
}

/*
 * RunCopy builds each copy not yet valid, one CREATE INDEX CONCURRENTLY
 * after the other (between transactions, as kind_index.c does); an INVALID
 * one left by an interrupted build is dropped first.
 */
static void
RunCopy(const MigJob *job)
{
	List	   *originals;
	List	   *work = NIL;
	ListCell   *lc;
	MemoryContext old;
	char	   *schema;

	StartTransactionCommand();
	originals = ColumnIndexes(job->relid, AttArg(job, "attnum"), AttArg(job, "new_attnum"));
	schema = get_namespace_name(get_rel_namespace(job->relid));
	foreach(lc, originals)
	{
		Oid			indexoid = lfirst_oid(lc);
		char	   *name = CopyIndexName(indexoid);
		int			state = MigIndexState(job->relid, name);
		char	   *sql;

		if (state == 2)
			continue;
		sql = CopyIndexSql(job->relid, indexoid, AttArg(job, "attnum"),
						   AttArg(job, "new_attnum"), name);
		old = MemoryContextSwitchTo(TopMemoryContext);
		if (state == 1)
			work = lappend(work, psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
										  quote_qualified_identifier(schema, name)));
		work = lappend(work, pstrdup(sql));
		MemoryContextSwitchTo(old);
	}
	CommitTransactionCommand();
	foreach(lc, work)
		MigRunTopLevel(lfirst(lc), job->lock_timeout_ms);
	list_free_deep(work);
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
	AttrNumber	attnum = AttArg(job, "attnum");
	ListCell   *lc;

	foreach(lc, CarriedConstraints(job->relid, attnum))
	{
		Oid			conoid = lfirst_oid(lc);
		Oid			conrelid;

		(void) ConstraintType(conoid, &conrelid);
		if (ConstraintState(conrelid, TwinName(conoid)) == 0)
			MigExecDDL(TwinSql(conoid, job->relid, attnum, AttArg(job, "new_attnum"),
								 TwinName(conoid)));
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
 * RunValidateTwins validates each twin not valid yet, each in a transaction
 * of its own (SHARE UPDATE EXCLUSIVE on the referencing table, writes go
 * on), so a job stopped half-way keeps the twins it validated.
 */
static void
RunValidateTwins(const MigJob *job)
{
	List	   *work = NIL;
	ListCell   *lc;
	MemoryContext old;

	StartTransactionCommand();
	foreach(lc, CarriedConstraints(job->relid, AttArg(job, "attnum")))
	{
		Oid			conoid = lfirst_oid(lc);
		Oid			conrelid;

		(void) ConstraintType(conoid, &conrelid);
		if (ConstraintState(conrelid, TwinName(conoid)) == 2)
			continue;
		old = MemoryContextSwitchTo(TopMemoryContext);
		work = lappend(work, psprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s",
									  QualifiedRelationName(conrelid),
									  quote_identifier(TwinName(conoid))));
		MemoryContextSwitchTo(old);
	}
	CommitTransactionCommand();
	foreach(lc, work)
		MigRunTopLevel(lfirst(lc), job->lock_timeout_ms);
	list_free_deep(work);
}

static void
RunSwap(const MigJob *job)
{
	char	   *rel = MigJobRelationName(job);
	AttrNumber	attnum = AttArg(job, "attnum");
	AttrNumber	new_attnum = AttArg(job, "new_attnum");
	const char *column = ColumnName(job, attnum);
	const char *new_column = ColumnName(job, new_attnum);
	const char *old_column = quote_identifier(Arg(job, "old_column"));
	char	   *schema = get_namespace_name(get_rel_namespace(job->relid));
	Oid			seq;
	List	   *originals;
	ListCell   *lc;
	HeapTuple	atttup;
	bool		has_default;
	int			nest;
	List	   *cons;
	List	   *renames = NIL;

	/* the strongest locks first, the table's then the referencing tables': no upgrade half-way */
	MigExecDDL(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", rel));
	cons = CarriedConstraints(job->relid, attnum);
	foreach(lc, ReferencingTables(job->relid, cons))
		MigExecDDL(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
							QualifiedRelationName(lfirst_oid(lc))));

	/*
	 * the constraints carried over: the originals dropped (a foreign key
	 * before the unique index it needs goes), the twins renamed below
	 */
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
		MigExecDDL(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", QualifiedRelationName(conrelid),
							quote_identifier(get_constraint_name(conoid))));
	}

	if (ArgIsTrue(job, "not_null"))
	{
		/* the valid check proves it: no scan */
		MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", rel, new_column));
		MigExecDDL(psprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", rel,
							quote_identifier(Arg(job, "check"))));
	}

	/* the default, deparsed with every name qualified */
	atttup = SearchSysCacheAttNum(job->relid, attnum);
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
			Relation	r = table_open(job->relid, AccessExclusiveLock);

			expr = build_column_default(r, attnum);
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
	seq = OwnedSequence(job->relid, attnum);
	if (OidIsValid(seq))
	{
		char	   *seqname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(seq)),
														 get_rel_name(seq));
		Oid			new_typid = (Oid) strtoul(Arg(job, "new_typid"), NULL, 10);
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

	/* the indexes and the constraints on them, under their names */
	originals = ColumnIndexes(job->relid, attnum, new_attnum);
	foreach(lc, originals)
	{
		Oid			indexoid = lfirst_oid(lc);
		char	   *name = get_rel_name(indexoid);
		Oid			con = get_index_constraint(indexoid);
		char	   *copy = CopyIndexName(indexoid);

		if (MigIndexState(job->relid, copy) != 2)
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

	/* the twins under the originals' names */
	foreach(lc, renames)
		MigExecDDL(lfirst(lc));

	/* the names, and the old column free to hold NULL */
	MigExecDDL(psprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", rel, column, old_column));
	MigExecDDL(psprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", rel, new_column, column));
	if (ArgIsTrue(job, "not_null"))
		MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", rel, old_column));

	/* the trigger turned around: the old column follows the new one */
	MigExecDDL(psprintf("DROP TRIGGER %s ON %s", quote_identifier(TriggerName(job)), rel));
	MigExecDDL(FunctionSql(Arg(job, "function"), ReverseBody(job, old_column, column)));
	MigExecDDL(TriggerSql(job, rel, column));
}

/* cleanup */
static char *
DescribeCleanup(const MigJob *job)
{
	return psprintf("dropping the old column %s", ArgOr(job, "old_column", "(none)"));
}

static bool
DoneCleanup(const MigJob *job)
{
	return !Walks(job) || !ArgIsTrue(job, "cleanup") ||
		get_attnum(job->relid, Arg(job, "old_column")) == InvalidAttrNumber;
}

static void
RunCleanup(const MigJob *job)
{
	char	   *rel = MigJobRelationName(job);

	MigExecDDL(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", rel));
	MigExecDDL(psprintf("DROP TRIGGER IF EXISTS %s ON %s", quote_identifier(TriggerName(job)), rel));
	MigExecDDL(psprintf("DROP FUNCTION IF EXISTS %s()", Arg(job, "function")));
	MigExecDDL(psprintf("ALTER TABLE %s DROP COLUMN %s", rel,
						quote_identifier(Arg(job, "old_column"))));
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

/*-------------------------------------------------------------------------
 *
 * kind_foreign_key.c
 *	  The foreign_key kind (mig_add_foreign_key): a foreign key on a big
 *	  table, with the orphan rows found and handled chunk by chunk.
 *
 * The recipe:
 *
 *	  add_not_valid	 ALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (...)
 *					 REFERENCES r (...) NOT VALID -- from now on every new
 *					 or changed row is checked, so no new orphan appears
 *	  walk			 the rows already there, in chunks, by the engine of a
 *					 backfill (walk.c): the chunk statement's
 *					 where clause is the orphan condition (every key column
 *					 non-NULL and no referenced row), and it counts
 *					 (orphans => 'fail'), deletes ('delete') or sets the
 *					 key columns NULL ('set_null') -- exactly once, throttled
 *	  check_orphans	 'fail' and orphans were found: the job fails with their
 *					 count and a few of them, and the undo step drops the
 *					 NOT VALID constraint again
 *	  validate		 ALTER TABLE t VALIDATE CONSTRAINT c (SHARE UPDATE
 *					 EXCLUSIVE: writes go on)
 *
 * The orphan condition and the set clause are built at start from the
 * checked column names (mig_add_foreign_key, below) and stored as the job's clauses, so
 * mig_jobs shows them and they are checked like a backfill's.
 *
 * The orphan condition sees the referenced table as the foreign key will:
 * a row has its referenced row if mig_ref_exists(ref, ref_columns, the
 * row's key columns) finds it, and that reads the referenced table the way
 * PostgreSQL's own foreign-key checks do (ri_triggers.c): as the table's
 * owner with row-level security off (SECURITY_NOFORCE_RLS), so a policy
 * neither hides referenced rows (rows that are no orphans would be
 * deleted) nor runs its functions as the job's owner; and it compares with
 * the foreign key's own equality operators, those of the referenced
 * unique index's operator class (a citext key: 'CODE3' references
 * 'code3').  Only the worker of a foreign_key job on that referenced table
 * reads it so (AllowOrphanWalk); anywhere else mig_ref_exists reads as
 * the current user, with her rights and her policies.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "pg_mig.h"
#include "start.h"
#include "steps.h"
#include "version_compat.h"

#define EXAMPLES	5

PG_FUNCTION_INFO_V1(mig_ref_exists);

/* the referenced table and columns this backend (a foreign_key job's worker) walks for */
static Oid	orphan_walk_ref = InvalidOid;
static List *orphan_walk_columns = NIL;	/* of char *, in TopMemoryContext */

static void AllowOrphanWalk(const MigJob *job);

/*
 * AllowOrphanWalk lets this backend read the referenced table of the
 * foreign_key job as its owner with row-level security off, in
 * mig_ref_exists (see the file header), for the rest of the process.
 * job's kind is loaded.
 */
static void
AllowOrphanWalk(const MigJob *job)
{
	const char *ref = MigKindArg(job, "ref_relid");
	const char *cols = MigKindArg(job, "ref_columns");
	MemoryContext old;
	List	   *names = NIL;

	if (job->kind != MIG_KIND_FOREIGN_KEY || ref == NULL || cols == NULL)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!SplitIdentifierString(pstrdup(cols), ',', &names))
		elog(ERROR, "invalid name list in pg_mig job");
	orphan_walk_columns = names;
	orphan_walk_ref = (Oid) strtoul(ref, NULL, 10);
	MemoryContextSwitchTo(old);
}

/*
 * OrphanWalkColumns: names are exactly the referenced columns of this
 * worker's foreign key, in order (the look-up as the table's owner is for
 * them only, not for any other unique key of the table).
 */
static bool
OrphanWalkColumns(Datum *names, int n)
{
	ListCell   *lc;

	if (list_length(orphan_walk_columns) != n)
		return false;
	foreach(lc, orphan_walk_columns)
		if (strcmp(lfirst(lc), TextDatumGetCString(names[foreach_current_index(lc)])) != 0)
			return false;
	return true;
}

/*
 * MigForeignKeyEqualityOps finds the unique index of ref on exactly the
 * columns ref_attnums (in any order; the index a foreign key on them
 * uses), and sets eqops[i] to the equality operator the foreign key
 * compares referenced column i with a referencing value of type
 * fk_types[i] by, and casts[i] to the type the referencing value is cast
 * to (InvalidOid: none), as ATAddForeignKeyConstraint chooses them (its
 * pfeqop, else ppeqop).  Raises an error if there is no such index, or the
 * types cannot be compared.
 */
void
MigForeignKeyEqualityOps(Relation ref, int n, const AttrNumber *ref_attnums,
						 const Oid *fk_types, Oid *eqops, Oid *casts)
{
	List	   *indexes = RelationGetIndexList(ref);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index form;
		bool		isnull;
		oidvector  *indclass;
		int			pos[INDEX_MAX_KEYS];
		bool		same;

		if (!HeapTupleIsValid(tuple))
			continue;
		form = (Form_pg_index) GETSTRUCT(tuple);
		same = form->indisunique && form->indimmediate && form->indisvalid &&
			form->indnkeyatts == n &&
			heap_attisnull(tuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(tuple, Anum_pg_index_indexprs, NULL);
		for (int i = 0; same && i < n; i++)
		{
			pos[i] = -1;
			for (int j = 0; j < n; j++)
				if (form->indkey.values[j] == ref_attnums[i])
					pos[i] = j;
			same = pos[i] >= 0;
		}
		if (!same)
		{
			ReleaseSysCache(tuple);
			continue;
		}
		indclass = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tuple,
																 Anum_pg_index_indclass,
																 &isnull));
		for (int i = 0; i < n; i++)
		{
			Oid			opclass = indclass->values[pos[i]];
			Oid			family = get_opclass_family(opclass);
			Oid			intype = get_opclass_input_type(opclass);
			Oid			fk_base = getBaseType(fk_types[i]);

			eqops[i] = get_opfamily_member(family, intype, fk_base, BTEqualStrategyNumber);
			casts[i] = InvalidOid;
			if (!OidIsValid(eqops[i]))
			{
				/* the referencing value cast to the index's type (ppeqop) */
				eqops[i] = get_opfamily_member(family, intype, intype, BTEqualStrategyNumber);
				casts[i] = intype;
				if (!OidIsValid(eqops[i]) ||
					!can_coerce_type(1, &fk_types[i], &intype, COERCION_IMPLICIT))
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("foreign key constraint cannot be implemented"),
							 errdetail("Key columns of types %s and %s are of incompatible types.",
									   format_type_be(fk_types[i]), format_type_be(intype))));
			}
		}
		ReleaseSysCache(tuple);
		found = true;
		break;
	}
	list_free(indexes);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FOREIGN_KEY),
				 errmsg("there is no unique constraint matching given keys for referenced table \"%s\"",
						RelationGetRelationName(ref)),
				 errhint("Add a primary key or a unique constraint on the referenced columns.")));
}

/* AppendOperator: "OPERATOR(schema.op)" of operator oprid */
static void
AppendOperator(StringInfo buf, Oid oprid)
{
	HeapTuple	tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(oprid));
	Form_pg_operator form;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for operator %u", oprid);
	form = (Form_pg_operator) GETSTRUCT(tuple);
	appendStringInfo(buf, "OPERATOR(%s.%s)",
					 quote_identifier(get_namespace_name(form->oprnamespace)),
					 NameStr(form->oprname));
	ReleaseSysCache(tuple);
}

/* the prepared lookup of one mig_ref_exists call site, kept for its query */
typedef struct RefLookup
{
	Oid			ref;
	SPIPlanPtr	plan;
} RefLookup;

static void
FreeRefLookup(void *arg)
{
	RefLookup  *lookup = arg;

	if (lookup->plan)
		SPI_freeplan(lookup->plan);
	lookup->plan = NULL;
}

/*
 * mig_ref_exists(ref oid, ref_columns text[], VARIADIC "any") returns
 * whether table ref has a row whose ref_columns equal the values given, by
 * the foreign key's equality operators; true if a value is NULL (MATCH
 * SIMPLE: no orphan).  In the worker of a foreign_key job on ref it reads
 * ref as its owner with row-level security off (see the file header).
 */
Datum
mig_ref_exists(PG_FUNCTION_ARGS)
{
	Oid			ref = PG_GETARG_OID(0);
	int			n = PG_NARGS() - 2;
	RefLookup  *lookup = fcinfo->flinfo->fn_extra;
	Datum	   *values = NULL;
	bool		found;
	Oid			save_userid;
	int			save_sec;
	int			nest;
	bool		as_owner;
	Datum	   *given;
	int			ngiven;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mig_ref_exists needs a table, its columns and a value for each")));
	for (int i = 0; i < n; i++)
		if (PG_ARGISNULL(i + 2))
			PG_RETURN_BOOL(true);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
					  &given, NULL, &ngiven);
	as_owner = OidIsValid(orphan_walk_ref) && ref == orphan_walk_ref &&
		OrphanWalkColumns(given, ngiven);

	/* as the referenced table's owner, RLS off (or as the current user) */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	if (as_owner)
	{
		Oid			owner = InvalidOid;
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(ref));

		if (HeapTupleIsValid(tuple))
		{
			owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
			ReleaseSysCache(tuple);
		}
		if (!OidIsValid(owner))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", ref)));
		SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS);
	}
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (lookup == NULL || lookup->ref != ref || lookup->plan == NULL)
	{
		ArrayType  *cols = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *names;
		int			ncols;
		Relation	rel;
		AttrNumber	attnums[INDEX_MAX_KEYS];
		Oid			fk_types[INDEX_MAX_KEYS];
		Oid			eqops[INDEX_MAX_KEYS];
		Oid			casts[INDEX_MAX_KEYS];
		StringInfoData sql;
		MemoryContext old;

		deconstruct_array(cols, TEXTOID, -1, false, TYPALIGN_INT, &names, NULL, &ncols);
		if (ncols != n || n > INDEX_MAX_KEYS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mig_ref_exists needs one value for each of its %d columns", ncols)));
		rel = table_open(ref, AccessShareLock);
		initStringInfo(&sql);
		appendStringInfo(&sql, "SELECT 1 FROM %s%s AS pg_mig_ref WHERE ",
						 rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
						 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													RelationGetRelationName(rel)));
		for (int i = 0; i < n; i++)
		{
			char	   *name = TextDatumGetCString(names[i]);

			attnums[i] = get_attnum(ref, name);
			if (attnums[i] == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								name, RelationGetRelationName(rel))));
			fk_types[i] = get_fn_expr_argtype(fcinfo->flinfo, i + 2);
		}
		MigForeignKeyEqualityOps(rel, n, attnums, fk_types, eqops, casts);
		for (int i = 0; i < n; i++)
		{
			appendStringInfo(&sql, "%spg_mig_ref.%s ", i ? " AND " : "",
							 quote_identifier(TextDatumGetCString(names[i])));
			AppendOperator(&sql, eqops[i]);
			if (OidIsValid(casts[i]))
				appendStringInfo(&sql, " $%d::%s", i + 1, format_type_be_qualified(casts[i]));
			else
				appendStringInfo(&sql, " $%d", i + 1);
		}
		appendStringInfoString(&sql, " LIMIT 1");
		table_close(rel, AccessShareLock);

		if (lookup == NULL)
		{
			lookup = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(RefLookup));
			{
				MemoryContextCallback *cb = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
																   sizeof(MemoryContextCallback));

				cb->func = FreeRefLookup;
				cb->arg = lookup;
				MemoryContextRegisterResetCallback(fcinfo->flinfo->fn_mcxt, cb);
			}
			fcinfo->flinfo->fn_extra = lookup;
		}
		else
			FreeRefLookup(lookup);
		lookup->ref = ref;
		lookup->plan = SPI_prepare(sql.data, n, fk_types);
		if (lookup->plan == NULL)
			elog(ERROR, "could not prepare the lookup of table %u", ref);
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		if (SPI_keepplan(lookup->plan) != 0)
			elog(ERROR, "could not keep the lookup of table %u", ref);
		MemoryContextSwitchTo(old);
	}

	values = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		values[i] = PG_GETARG_DATUM(i + 2);

	if (SPI_execute_plan(lookup->plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up a row of table %u", ref);
	found = SPI_processed > 0;
	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec);
	PG_RETURN_BOOL(found);
}

static const char *
ConstraintName(const MigJob *job)
{
	return MigJobConstraint(job);
}

/* NameList: a kind argument of quoted, comma-separated names */
static List *
NameList(const MigJob *job, const char *arg)
{
	List	   *names = NIL;

	if (!SplitIdentifierString(pstrdup(MigKindArg(job, arg)), ',', &names))
		elog(ERROR, "invalid name list in pg_mig job");
	return names;
}

static char *
QuotedList(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(lfirst(lc)));
	return buf.data;
}

static char *
RefRelationName(const MigJob *job)
{
	Oid			refid = (Oid) strtoul(MigKindArg(job, "ref_relid"), NULL, 10);
	char	   *name = get_rel_name(refid);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the referenced table of constraint \"%s\" was dropped while the job ran",
						ConstraintName(job))));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(refid)), name);
}

/* add_not_valid */
static char *
DescribeAdd(const MigJob *job)
{
	return psprintf("adding foreign key %s NOT VALID", ConstraintName(job));
}

static bool
DoneAdd(const MigJob *job)
{
	return MigJobConstraintState(job) != MIG_CONSTRAINT_ABSENT;
}

static void
RunAdd(const MigJob *job)
{
	/* SHARE ROW EXCLUSIVE on the referenced table too */
	MigNoteStepLock((Oid) strtoul(MigKindArg(job, "ref_relid"), NULL, 10), ShareRowExclusiveLock);
	MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)"
						" ON DELETE %s NOT VALID",
						MigJobRelationName(job), quote_identifier(ConstraintName(job)),
						QuotedList(NameList(job, "columns")), RefRelationName(job),
						QuotedList(NameList(job, "ref_columns")), MigKindArg(job, "on_delete")));
}

/* check_orphans */
static char *
DescribeCheck(const MigJob *job)
{
	return psprintf("checking the orphan rows the walk found");
}

static bool
DoneCheck(const MigJob *job)
{
	return strcmp(MigKindArg(job, "orphans"), "fail") != 0 || job->rows_done == 0;
}

/*
 * RunCheck fails the step with the number of orphan rows and a few of
 * them (their key columns), to be found quickly at the start of the table.
 */
static void
RunCheck(const MigJob *job)
{
	MemoryContext ctx = CurrentMemoryContext;
	StringInfoData examples;
	char	   *sql;

	AllowOrphanWalk(job);
	sql = psprintf("SELECT ROW(%s)::text FROM ONLY %s WHERE (%s\n) LIMIT %d",
				   QuotedList(NameList(job, "columns")), MigJobRelationName(job),
				   job->where_clause, EXAMPLES);
	if (SPI_execute(sql, true, EXAMPLES) != SPI_OK_SELECT)
		elog(ERROR, "could not read the orphan rows of pg_mig job " INT64_FORMAT, job->job_id);
	MemoryContextSwitchTo(ctx);
	initStringInfo(&examples);
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(&examples, "%s%s", i ? ", " : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg_plural("table %s has " INT64_FORMAT " orphan row whose (%s) has no row in %s, e.g. %s",
						   "table %s has " INT64_FORMAT " orphan rows whose (%s) has no row in %s, e.g. %s",
						   (unsigned long) job->rows_done,
						   job->relation_name, job->rows_done,
						   QuotedList(NameList(job, "columns")), RefRelationName(job),
					examples.len ? examples.data : "(gone since)"),
			 errdetail("Delete them or set them NULL first, or start mig_add_foreign_key() with orphans => 'delete' or 'set_null'.")));
}

/* validate */
static bool
DoneValidate(const MigJob *job)
{
	return MigJobConstraintState(job) == MIG_CONSTRAINT_VALID;
}

/* undo: drop the constraint the job added */
static bool
DoneDrop(const MigJob *job)
{
	/* only a NOT VALID one: a valid foreign key is the job's result */
	return MigJobConstraintState(job) != MIG_CONSTRAINT_NOT_VALID;
}

static const MigStepDef foreign_key_steps[] = {
	{"add_not_valid", DescribeAdd, DoneAdd, RunAdd, false, false},
	/* the walk comes here (walk_at = 1) */
	{"check_orphans", DescribeCheck, DoneCheck, RunCheck, false, false},
	{"validate", MigDescribeValidateConstraint, DoneValidate, MigRunValidateConstraint, false, false},
};

static const MigStepDef foreign_key_undo =
{"undo", MigDescribeDropConstraint, DoneDrop, MigRunDropConstraint, false, false};

/*
 * CountsOnly: the orphan walk counts rows and changes none (orphans =>
 * 'fail'; 'delete' and 'nullify' change them).
 */
static bool
CountsOnly(const MigJob *job)
{
	const char *orphans = MigKindArg(job, "orphans");

	return orphans && strcmp(orphans, "fail") == 0;
}

const MigKindDef mig_kind_foreign_key = {
	.kind = MIG_KIND_FOREIGN_KEY,
	.name = "foreign_key",
	.start_function = "mig_add_foreign_key",
	.with_article = "a foreign_key",
	.steps = foreign_key_steps,
	.nsteps = lengthof(foreign_key_steps),
	.undo = &foreign_key_undo,
	/* the orphan walk, between add_not_valid and check_orphans */
	.walks = true,
	.walk_at = 1,
	.counts_only = CountsOnly,
	.walk_begin = AllowOrphanWalk,
	.walk_verb = "changed",
};

PG_FUNCTION_INFO_V1(mig_add_foreign_key);

/* the refusals of a start that name what it does (start.h) */
static const MigStartText foreign_key_text = {
	.recovery = gettext_noop("cannot start a foreign_key job during recovery"),
	.temp_table = gettext_noop("cannot add a foreign key to temporary table \"%s\""),
	.not_owner = gettext_noop("permission denied to add a foreign key to table \"%s\""),
};

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

	rel = MigBeginStart(fcinfo, &job, &foreign_key_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_FOREIGN_KEY, "columns", "ref_relation",
				"ref_columns", "constraint_name", "on_delete", "orphans");
	MigCheckDDLTable(rel, &foreign_key_text);
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

	MigRequireArg(fcinfo, 2, "ref_relation");
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
		AttrNumber	ref_attnums[INDEX_MAX_KEYS] = {0};
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
	PG_RETURN_INT64(MigFinishStart(rel, &job, targets,
								psprintf("add foreign key %s NOT VALID, walk about " INT64_FORMAT " rows for orphans (%s), validate",
										 quote_identifier(constraint), Max(rows_total, 0), orphans), NULL, NULL));
}

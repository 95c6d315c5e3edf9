/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Everything mig_start_backfill checks before a job is made, in the
 *	  caller's transaction and with the caller's rights: the table, its key,
 *	  the set and where clauses, privileges, and the targets with their
 *	  upper keys and estimates.
 *
 * The clauses are checked with PostgreSQL's own parser, in two ways.  Their
 * structure: "UPDATE ONLY t SET <set>" must parse as exactly one UPDATE with
 * no WHERE, FROM or RETURNING, and "UPDATE ONLY t SET <set> WHERE <where>"
 * as exactly one UPDATE with a WHERE and nothing else.  Since each clause is
 * then a complete grammar item, it cannot break out of the place the chunk
 * statement gives it (see chunk.c).  Their meaning: the chunk statements are
 * EXPLAINed as the caller, which resolves every name, checks every type,
 * and checks the caller's privileges on tables, columns and functions, as
 * executing them would.
 *
 * Then the clauses are resolved once, for each target, as the caller sees
 * them: analysed as an UPDATE of the target under the caller's search_path,
 * and deparsed (as views are stored) while the search_path is only
 * "pg_catalog, pg_temp", so that every name outside pg_catalog comes out
 * schema-qualified and every operator that is not found there as
 * OPERATOR(schema.op).  The worker runs that text with the same pinned
 * search_path: an object created later (a function or operator earlier in
 * someone's search_path) cannot capture it.  The chunk statements built
 * from the resolved text are EXPLAINed too, so the text is proven to parse
 * and to mean the same to the caller's privileges.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_opclass.h"
#include "nodes/value.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "parse_check.h"
#include "pg_mig.h"
#include "version_compat.h"

/* settings that change how the clauses and key values read and print */
static const char *const key_settings[] = {
	"DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits",
	"bytea_output", "standard_conforming_strings"
};

/*
 * The memory context MigBuildTargets allocates in.  SPI calls return in
 * SPI's own context, which SPI_finish frees, so every allocation that must
 * outlive them switches back here first.
 */
static MemoryContext build_ctx = NULL;

static void CheckTargetRelation(Relation rel);
static List *LeafTargets(Relation rel);
static List *ParseSetClause(const char *qualname, const char *set_clause);
static void ParseWhereClause(const char *qualname, const char *set_clause,
							 const char *where_clause);
static void CheckColumns(Relation rel, List *set_columns);
static void CheckNotKeyColumn(Relation rel, List *set_columns,
							  const MigTarget *target);
static void ChooseKey(Relation rel, MigTarget *target);
static void ExplainAs(const char *what, const char *sql, int nargs,
					  Oid *argtypes, const char *hint);
static Oid *KeyTypes(Relation rel, const MigTarget *target);
static char **ReadUpperKey(Relation rel, const MigTarget *target);
static int64 SampleRows(Relation leaf, const MigTarget *target, const char *where_clause);
static int64 EstimateRows(const char *relation_name, const char *where_clause);

/*
 * MigKeySettings returns the caller's settings that change how clauses and
 * key values are read and printed, as "name=value" strings.  The worker
 * applies them, so the job means in the worker what it meant at start.
 */
List *
MigKeySettings(void)
{
	List	   *result = NIL;

	for (int i = 0; i < lengthof(key_settings); i++)
	{
		const char *value = GetConfigOption(key_settings[i], false, false);

		result = lappend(result, psprintf("%s=%s", key_settings[i], value));
	}
	return result;
}

/*
 * LockAncestors takes AccessShareLock on every partitioned table above a
 * partition, from its parent up to the root, as the parser does for the
 * partitions it opens; the checks below read their partition keys.
 */
static void
LockAncestors(Relation rel)
{
	ListCell   *lc;

	if (!rel->rd_rel->relispartition)
		return;
	foreach(lc, get_partition_ancestors(RelationGetRelid(rel)))
		LockRelationOid(lfirst_oid(lc), AccessShareLock);
}

/*
 * Whether *rows_total counts the rows that match the where clause from a
 * sample (a caller's clause), or the rows of the key range (a where clause
 * of pg_mig's own, such as the orphan condition of a foreign key's walk,
 * which must not run in the caller's session: see MigBuildOrphanTargets).
 */
static bool sample_where = true;

/*
 * MigBuildOrphanTargets is MigBuildTargets for the walk of a foreign key's
 * orphans: its where clause reads the referenced table as the foreign key
 * does, which only the job's worker may (kind_foreign_key.c), so *rows_total
 * is the rows of the key range, none of them sampled with the clause.
 */
List *
MigBuildOrphanTargets(Relation rel, const char *set_clause, const char *where_clause,
					  int64 *rows_total)
{
	List	   *volatile targets = NIL;

	sample_where = false;
	PG_TRY();
	{
		targets = MigBuildTargets(rel, set_clause, where_clause, rows_total, NULL);
	}
	PG_FINALLY();
	{
		sample_where = true;
	}
	PG_END_TRY();
	return targets;
}

/*
 * MigBuildTargets checks the relation and the clauses and returns the job's
 * targets (List of MigTarget *): the table, or its leaf partitions; with
 * set_clause NULL, those of a delete job (see MigChunkUpdateSql).  Sets
 * *rows_total to the planner's estimate of the rows to change, and, if
 * set_columns_out is not NULL, *set_columns_out to the names of the columns
 * the set clause assigns (List of char *).  Caller is
 * in a transaction and holds a lock on rel; SPI must not be connected.
 */
List *
MigBuildTargets(Relation rel, const char *set_clause, const char *where_clause,
				int64 *rows_total, List **set_columns_out)
{
	char	   *qualname;
	List	   *set_columns;
	List	   *leaves;
	List	   *targets = NIL;
	ListCell   *lc;
	int			ord = 0;
	MemoryContext callerctx = CurrentMemoryContext;

	build_ctx = callerctx;
	LockAncestors(rel);
	CheckTargetRelation(rel);
	qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));

	/* structure first: nothing is looked up before the clauses parse */
	set_columns = set_clause ? ParseSetClause(qualname, set_clause) : NIL;
	if (where_clause)
		ParseWhereClause(qualname, set_clause, where_clause);
	CheckColumns(rel, set_columns);

	leaves = LeafTargets(rel);
	*rows_total = 0;

	/* our own allocations stay in the caller's context */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(callerctx);

	foreach(lc, leaves)
	{
		Oid			leafid = lfirst_oid(lc);
		Relation	leaf;
		MigTarget  *target;
		char	   *sql;
		Oid		   *keytypes;

		MemoryContextSwitchTo(build_ctx);
		leaf = table_open(leafid, AccessShareLock);
		target = palloc0(sizeof(MigTarget));

		target->ord = ord++;
		target->relid = leafid;
		target->relation_name =
			quote_qualified_identifier(get_namespace_name(RelationGetNamespace(leaf)),
									   RelationGetRelationName(leaf));
		ChooseKey(leaf, target);
		CheckNotKeyColumn(leaf, set_columns, target);
		if (leafid != RelationGetRelid(rel))
			CheckColumns(leaf, set_columns);

		/* the meaning of each clause, with the caller's rights */
		if (set_clause)
		{
			sql = psprintf("UPDATE ONLY %s SET %s\nWHERE false", target->relation_name,
						   set_clause);
			ExplainAs("set_clause", sql, 0, NULL,
					  "The set clause is a list of assignments such as $$col = expr$$, checked as the SET list of an UPDATE of the table.");
		}
		if (where_clause)
		{
			sql = psprintf("SELECT FROM ONLY %s WHERE (%s\n)", target->relation_name,
						   where_clause);
			ExplainAs("where_clause", sql, 0, NULL,
					  "The where clause is one boolean expression over the table's columns, such as 'col IS NULL'.");
		}
		MemoryContextSwitchTo(build_ctx);
		MigResolveClauses(target, set_clause, where_clause);
		keytypes = KeyTypes(leaf, target);
		{
			/* the resolved text, as the worker will run it */
			int			nest = NewGUCNestLevel();

			(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
									 PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			ExplainAs("chunk statement",
					  MigChunkUpdateSql(target, target->set_clause,
										target->where_clause, false),
					  target->nkeys * 2, keytypes, NULL);
			AtEOXact_GUC(true, nest);
		}
		MemoryContextSwitchTo(build_ctx);
		keytypes = repalloc(keytypes, sizeof(Oid) * (target->nkeys * 2 + 1));
		keytypes[target->nkeys * 2] = INT8OID;	/* the OFFSET */
		ExplainAs("chunk statement", MigChunkBoundarySql(target, false),
				  target->nkeys * 2 + 1, keytypes, NULL);

		/* fix the upper key now: rows inserted later are the application's */
		target->upper_key = ReadUpperKey(leaf, target);
		MemoryContextSwitchTo(build_ctx);
		target->keys_estimate = target->upper_key ? EstimateRows(target->relation_name, NULL) : 0;
		if (target->upper_key)
			*rows_total += where_clause && sample_where ? SampleRows(leaf, target, where_clause)
				: target->keys_estimate;

		MemoryContextSwitchTo(build_ctx);
		targets = lappend(targets, target);
		table_close(leaf, NoLock);
	}
	SPI_finish();
	MemoryContextSwitchTo(callerctx);
	if (set_columns_out)
		*set_columns_out = set_columns;
	return targets;
}

/*
 * MigResolveClauses sets target->set_clause and target->where_clause to
 * the job's clauses resolved for the target (see the file header); either
 * may be NULL (a job kind with no set clause, or no where clause).  The
 * clauses must already have been checked (MigBuildTargets); names are
 * resolved with the current search_path and settings, which are the
 * caller's at start.  Caller is in a transaction.
 */
void
MigResolveClauses(MigTarget *target, const char *set_clause,
				  const char *where_clause)
{
	char	   *sql;
	List	   *raw;
	Query	   *query;
	Node	   *quals;
	char	   *text;
	char	   *prefix;
	int			nest;

	if (set_clause)
		sql = psprintf("UPDATE ONLY %s SET %s\nWHERE (%s\n)", target->relation_name,
					   set_clause, where_clause ? where_clause : "true");
	else
		sql = psprintf("DELETE FROM ONLY %s WHERE (%s\n)", target->relation_name,
					   where_clause ? where_clause : "true");
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		elog(ERROR, "the clauses of a pg_mig job do not form one statement");
	query = MigParseAnalyze(linitial_node(RawStmt, raw), sql);
	if (query->commandType != (set_clause ? CMD_UPDATE : CMD_DELETE) ||
		query->resultRelation != 1 ||
		list_length(query->rtable) != 1 || query->returningList != NIL)
		elog(ERROR, "the clauses of a pg_mig job do not form a plain UPDATE or DELETE");
	quals = query->jointree->quals;
	query->jointree->quals = NULL;

	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	target->set_clause = NULL;
	if (set_clause)
	{
		text = pg_get_querydef(query, false);
		prefix = psprintf("UPDATE ONLY %s SET ", target->relation_name);
		while (*text == ' ' || *text == '\n')
			text++;
		if (strncmp(text, prefix, strlen(prefix)) != 0)
			elog(ERROR, "unexpected deparsed form of a pg_mig set clause: %s", text);
		target->set_clause = pstrdup(text + strlen(prefix));
	}
	target->where_clause = NULL;
	if (where_clause)
	{
		List	   *context = deparse_context_for(get_rel_name(target->relid),
												  target->relid);

		target->where_clause = deparse_expression(quals, context, false, false);
	}
	AtEOXact_GUC(true, nest);
}

/*
 * CheckTargetRelation rejects what pg_mig cannot backfill: anything but an
 * ordinary or partitioned table, temporary tables (the worker is another
 * session) and system catalogs.
 */
static void
CheckTargetRelation(Relation rel)
{
	char		relkind = rel->rd_rel->relkind;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errhint("pg_mig backfills ordinary and partitioned tables.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot backfill temporary table \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("The background worker runs in a session of its own and cannot see this session's temporary tables.")));
	if (IsCatalogRelation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot backfill system catalog \"%s\"",
						RelationGetRelationName(rel))));
}

/*
 * LeafTargets returns the OIDs of the heaps to walk: the table, or every leaf
 * partition of a partitioned table, in find_all_inheritors order.
 */
static List *
LeafTargets(Relation rel)
{
	List	   *all;
	List	   *leaves = NIL;
	ListCell   *lc;

	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return list_make1_oid(RelationGetRelid(rel));

	all = find_all_inheritors(RelationGetRelid(rel), AccessShareLock, NULL);
	foreach(lc, all)
	{
		Oid			relid = lfirst_oid(lc);
		char		relkind = get_rel_relkind(relid);

		if (relkind == RELKIND_PARTITIONED_TABLE)
			continue;
		if (relkind != RELKIND_RELATION)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("partition \"%s\" of \"%s\" is not a table",
							get_rel_name(relid), RelationGetRelationName(rel)),
					 errhint("pg_mig cannot backfill foreign partitions; backfill the other partitions one by one.")));
		leaves = lappend_oid(leaves, relid);
	}
	return leaves;
}

#define SET_HINT "Pass only the assignments of one SET list, e.g. $$col = expr, other = expr$$; put the condition in where_clause."
#define WHERE_HINT "Pass one boolean expression over the table's columns, e.g. 'col IS NULL'."

/*
 * ParseSetClause checks that "UPDATE ONLY t SET <set>" is one UPDATE with
 * nothing after the SET list, and returns the names of the assigned columns.
 */
static List *
ParseSetClause(const char *qualname, const char *set_clause)
{
	char	   *sql = psprintf("UPDATE ONLY %s SET %s\n", qualname, set_clause);
	UpdateStmt *stmt = (UpdateStmt *) MigParseOne("set_clause", sql, SET_HINT);
	List	   *columns = NIL;
	ListCell   *lc;

	if (!IsA(stmt, UpdateStmt))
		MigRejectPart("set_clause", "it is not a SET list", SET_HINT);
	if (stmt->whereClause)
		MigRejectPart("set_clause", "it must not contain a WHERE clause", SET_HINT);
	if (stmt->fromClause)
		MigRejectPart("set_clause", "it must not contain a FROM clause", SET_HINT);
	if (MigHasReturning(stmt))
		MigRejectPart("set_clause", "it must not contain a RETURNING clause", SET_HINT);
	if (stmt->withClause)
		MigRejectPart("set_clause", "it must not contain a WITH clause", SET_HINT);

	foreach(lc, stmt->targetList)
	{
		ResTarget  *res = lfirst_node(ResTarget, lc);

		columns = lappend(columns, res->name);
	}
	return columns;
}

/*
 * ParseWhereClause checks that "UPDATE ONLY t SET <set> WHERE <where>" is
 * one UPDATE whose WHERE is the whole where clause.
 */
static void
ParseWhereClause(const char *qualname, const char *set_clause,
				 const char *where_clause)
{
	char	   *sql;
	UpdateStmt *stmt;

	if (set_clause == NULL)
	{
		/* a delete job: "DELETE FROM ONLY t WHERE <where>" */
		DeleteStmt *del;

		sql = psprintf("DELETE FROM ONLY %s\nWHERE %s\n", qualname, where_clause);
		del = (DeleteStmt *) MigParseOne("where_clause", sql, WHERE_HINT);
		if (!IsA(del, DeleteStmt) || del->whereClause == NULL)
			MigRejectPart("where_clause", "it is not a boolean expression", WHERE_HINT);
		if (MigHasReturning(del))
			MigRejectPart("where_clause", "it must not contain a RETURNING clause", WHERE_HINT);
		if (del->usingClause)
			MigRejectPart("where_clause", "it must not contain a USING clause", WHERE_HINT);
		return;
	}
	sql = psprintf("UPDATE ONLY %s SET %s\nWHERE %s\n", qualname,
				   set_clause, where_clause);
	stmt = (UpdateStmt *) MigParseOne("where_clause", sql, WHERE_HINT);
	if (!IsA(stmt, UpdateStmt) || stmt->whereClause == NULL)
		MigRejectPart("where_clause", "it is not a boolean expression", WHERE_HINT);
	if (MigHasReturning(stmt))
		MigRejectPart("where_clause", "it must not contain a RETURNING clause", WHERE_HINT);
	if (stmt->fromClause)
		MigRejectPart("where_clause", "it must not contain a FROM clause", WHERE_HINT);
}

/*
 * CheckColumns checks that every assigned column exists and that the caller
 * may UPDATE it, and that it is not a partition key column.
 */
static void
CheckColumns(Relation rel, List *set_columns)
{
	ListCell   *lc;
	Oid			relid = RelationGetRelid(rel);
	Oid			userid = GetUserId();

	foreach(lc, set_columns)
	{
		char	   *name = lfirst(lc);
		AttrNumber	attnum = get_attnum(relid, name);

		if (attnum == InvalidAttrNumber || attnum < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("invalid set_clause: column \"%s\" of relation \"%s\" does not exist",
							name, RelationGetRelationName(rel)),
					 errhint("Add the column first, e.g. ALTER TABLE %s ADD COLUMN %s ...",
							 RelationGetRelationName(rel), quote_identifier(name))));
		if (pg_attribute_aclcheck(relid, attnum, userid, ACL_UPDATE) != ACLCHECK_OK &&
			pg_class_aclcheck(relid, userid, ACL_UPDATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to update column \"%s\" of table \"%s\"",
							name, RelationGetRelationName(rel)),
					 errhint("A backfill runs with the rights of the role that starts it; that role needs UPDATE on the changed columns.")));
		if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE || rel->rd_rel->relispartition)
		{
			/* a partition key column would move rows between targets */
			Oid			ancestor = relid;

			while (OidIsValid(ancestor))
			{
				if (get_rel_relkind(ancestor) == RELKIND_PARTITIONED_TABLE)
				{
					Relation	arel = table_open(ancestor, NoLock);
					PartitionKey key = RelationGetPartitionKey(arel);
					AttrNumber	aattnum = get_attnum(ancestor, name);
					Bitmapset  *exprattrs = NULL;

					pull_varattnos((Node *) key->partexprs, 1, &exprattrs);
					for (int i = 0; i < key->partnatts; i++)
					{
						if (key->partattrs[i] == aattnum ||
							bms_is_member(aattnum - FirstLowInvalidHeapAttributeNumber, exprattrs))
							ereport(ERROR,
									(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
									 errmsg("invalid set_clause: column \"%s\" is a partition key column of \"%s\"",
											name, RelationGetRelationName(arel)),
									 errdetail("Changing it would move rows between partitions while the job walks them.")));
					}
					table_close(arel, NoLock);
				}
				ancestor = get_rel_relispartition(ancestor) ?
					get_partition_parent(ancestor, true) : InvalidOid;
			}
		}
	}
}

/*
 * CheckNotKeyColumn rejects a set clause that changes the target's key:
 * the walk in key order would then miss rows or meet them twice.
 */
static void
CheckNotKeyColumn(Relation rel, List *set_columns, const MigTarget *target)
{
	ListCell   *lc;

	foreach(lc, set_columns)
	{
		for (int i = 0; i < target->nkeys; i++)
		{
			if (strcmp(lfirst(lc), target->key_columns[i]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("invalid set_clause: column \"%s\" is part of the key of \"%s\"",
								target->key_columns[i], RelationGetRelationName(rel)),
						 errdetail("pg_mig walks the table in key order; changing the key would skip rows or change them twice."),
						 errhint("Change key columns with an ordinary migration.")));
		}
	}
}

/*
 * KeyOperatorsAreCatalogs: the b-tree operators of operator class opclass
 * (<, <=, =, >=, >) are the ones OPERATOR(pg_catalog.x) finds for its input
 * type.  The chunk statements, the lanes' boundaries and the kept tables
 * compare keys with OPERATOR(pg_catalog.x), while ORDER BY and the index
 * use the operator class: for a type whose operators live elsewhere
 * (citext: public.<), pg_catalog's would be text's, with another order, and
 * the walk would skip rows or visit them twice.
 */
static bool
KeyOperatorsAreCatalogs(Oid opclass)
{
	static const char *const names[] = {"<", "<=", "=", ">=", ">"};
	Oid			family = get_opclass_family(opclass);
	Oid			intype = get_opclass_input_type(opclass);

	for (int s = BTLessStrategyNumber; s <= BTGreaterStrategyNumber; s++)
	{
		Oid			member = get_opfamily_member(family, intype, intype, s);
		List	   *name = list_make2(makeString("pg_catalog"),
									  makeString((char *) names[s - 1]));

		if (!OidIsValid(member) || OpernameGetOprid(name, intype, intype) != member)
			return false;
	}
	return true;
}

/*
 * ChooseKey picks the key to walk rel by: its primary key, or else the
 * unique index with the fewest columns among those that are b-tree,
 * immediate, valid, not partial, on plain NOT NULL columns with the
 * default operator class and the column's collation (so that the chunk
 * statements' range conditions and ORDER BY use it), whose operators are
 * pg_catalog's (KeyOperatorsAreCatalogs).
 */
static void
ChooseKey(Relation rel, MigTarget *target)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			best = InvalidOid;
	int			best_n = INT_MAX;
	bool		best_primary = false;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	char	   *refused_column = NULL;	/* of a key refused for its operators */
	Oid			refused_type = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = idx->rd_index;
		bool		usable;
		int			n = form->indnkeyatts;
		bool		isnull;
		oidvector  *indclass = (oidvector *)
			DatumGetPointer(SysCacheGetAttr(INDEXRELID, idx->rd_indextuple,
											Anum_pg_index_indclass, &isnull));

		usable = form->indisunique && form->indimmediate && form->indisvalid &&
			form->indislive && idx->rd_rel->relam == BTREE_AM_OID &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL);
		for (int i = 0; usable && i < n; i++)
		{
			AttrNumber	attnum = form->indkey.values[i];
			Form_pg_attribute att;

			if (attnum <= 0)
			{
				usable = false;
				break;
			}
			att = TupleDescAttr(tupdesc, attnum - 1);
			usable = att->attnotnull &&
				idx->rd_indoption[i] == 0 &&
				idx->rd_indcollation[i] == att->attcollation &&
				GetDefaultOpClass(att->atttypid, BTREE_AM_OID) == indclass->values[i];
			if (usable && !KeyOperatorsAreCatalogs(indclass->values[i]))
			{
				usable = false;
				if (refused_column == NULL)
				{
					refused_column = pstrdup(NameStr(att->attname));
					refused_type = att->atttypid;
				}
			}
		}
		if (usable && !best_primary &&
			(form->indisprimary || n < best_n))
		{
			best = RelationGetRelid(idx);
			best_n = n;
			best_primary = form->indisprimary;
		}
		index_close(idx, AccessShareLock);
	}

	if (!OidIsValid(best) && refused_column != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot walk table \"%s\" by key column \"%s\" of type %s",
						RelationGetRelationName(rel), refused_column,
						format_type_be(refused_type)),
				 errdetail("The operators of type %s's b-tree operator class are not pg_catalog's; pg_mig compares keys with pg_catalog's operators, which would order this key otherwise than its index.",
						   format_type_be(refused_type)),
				 errhint("Add a unique index on NOT NULL columns of a built-in type (e.g. an integer or text column), and start the job again.")));
	if (!OidIsValid(best))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key or usable unique index",
						RelationGetRelationName(rel)),
				 errdetail("pg_mig walks a table in key order: it needs a primary key, or a unique, immediate, non-partial b-tree index on NOT NULL columns with default operator classes."),
				 errhint("Add a primary key, e.g. ALTER TABLE %s ADD PRIMARY KEY (id).",
						 RelationGetRelationName(rel))));

	{
		Relation	idx = index_open(best, AccessShareLock);

		target->nkeys = idx->rd_index->indnkeyatts;
		target->key_columns = palloc(sizeof(char *) * target->nkeys);
		for (int i = 0; i < target->nkeys; i++)
		{
			AttrNumber	attnum = idx->rd_index->indkey.values[i];

			target->key_columns[i] =
				pstrdup(NameStr(TupleDescAttr(tupdesc, attnum - 1)->attname));
		}
		index_close(idx, AccessShareLock);
	}
}

/* KeyTypes: the type OIDs of the target's key columns, twice (lower, upper) */
static Oid *
KeyTypes(Relation rel, const MigTarget *target)
{
	Oid		   *types = palloc(sizeof(Oid) * target->nkeys * 2);

	for (int i = 0; i < target->nkeys; i++)
	{
		AttrNumber	attnum = get_attnum(RelationGetRelid(rel), target->key_columns[i]);

		types[i] = types[i + target->nkeys] =
			TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
	}
	return types;
}

/*
 * ExplainAs EXPLAINs sql as the current user: that resolves every name,
 * checks types and the privileges executing it would need, without
 * running it.  An error is reported as an error of the named clause.
 * Caller has SPI connected.
 */
typedef struct ExplainCall
{
	const char *sql;
	int			nargs;
	Oid		   *argtypes;
} ExplainCall;

static void
RunExplain(void *arg)
{
	ExplainCall *call = arg;
	Datum	   *values = palloc0(sizeof(Datum) * Max(call->nargs, 1));
	char	   *nulls = palloc(sizeof(char) * Max(call->nargs, 1));

	memset(nulls, 'n', Max(call->nargs, 1));
	if (SPI_execute_with_args(call->sql, call->nargs, call->argtypes, values, nulls,
							  false, 0) < 0)
		elog(ERROR, "could not run EXPLAIN");
}

static void
ExplainAs(const char *what, const char *sql, int nargs, Oid *argtypes,
		  const char *hint)
{
	ExplainCall call = {psprintf("EXPLAIN (COSTS OFF) %s", sql), nargs, argtypes};
	ErrorData  *edata;

	if (build_ctx)
		MemoryContextSwitchTo(build_ctx);
	edata = MigTrySubtransaction(RunExplain, &call);
	if (edata)
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("invalid %s: %s", what, edata->message),
				 edata->detail ? errdetail("%s", edata->detail) : 0,
				 hint ? errhint("%s", hint) :
				 edata->hint ? errhint("%s", edata->hint) : 0));
}

/*
 * ReadUpperKey returns the text form of the target's greatest key as the
 * caller sees it now, or NULL if the caller sees no row.  Caller has SPI
 * connected.
 */
static char **
ReadUpperKey(Relation rel, const MigTarget *target)
{
	StringInfoData sql;
	char	  **result = NULL;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(target->key_columns[i]));
	appendStringInfo(&sql, " FROM ONLY %s ORDER BY ", target->relation_name);
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&sql, "%s%s DESC", i ? ", " : "", quote_identifier(target->key_columns[i]));
	appendStringInfoString(&sql, " LIMIT 1");

	if (SPI_execute(sql.data, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the greatest key of \"%s\"", RelationGetRelationName(rel));
	MemoryContextSwitchTo(build_ctx);
	if (SPI_processed == 1)
	{
		int			nest = MigEnterKeyFormat();

		result = palloc(sizeof(char *) * target->nkeys);
		for (int i = 0; i < target->nkeys; i++)
			result[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
		MigLeaveKeyFormat(nest);
	}
	return result;
}

/*
 * SampleRows estimates the rows of the target that match where_clause
 * from a sample of its blocks (TABLESAMPLE SYSTEM, about SAMPLE_BLOCKS of
 * them, all of a small table), as mig_plan's samples do: the planner
 * knows nothing useful about a column added a minute ago (its default
 * selectivity made 1,000 rows of 200,000), nor about a table never
 * analysed.  The share of sampled rows that match, times the target's
 * estimated rows; the planner's estimate if the sample fails or finds no
 * row.  The clause runs as the caller, in a subtransaction.  Caller has
 * SPI connected.
 */
#define SAMPLE_BLOCKS	256

typedef struct SampleCall
{
	const char *sql;
	double		percent;
	int64		seen;
	int64		matched;
} SampleCall;

static void
RunSample(void *arg)
{
	SampleCall *call = arg;
	Oid			types[1] = {FLOAT4OID};
	Datum		values[1] = {Float4GetDatum((float4) call->percent)};
	bool		isnull;

	if (SPI_execute_with_args(call->sql, 1, types, values, NULL, true, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not sample the table");
	call->seen = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	call->matched = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

static int64
SampleRows(Relation leaf, const MigTarget *target, const char *where_clause)
{
	BlockNumber blocks = RelationGetNumberOfBlocks(leaf);
	SampleCall	call;
	ErrorData  *edata;
	int64		keys = target->keys_estimate;

	call.percent = blocks <= SAMPLE_BLOCKS ? 100.0 : 100.0 * SAMPLE_BLOCKS / blocks;
	call.sql = psprintf("SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE (%s\n))"
						" FROM ONLY %s TABLESAMPLE SYSTEM ($1) REPEATABLE (0)",
						where_clause, target->relation_name);
	call.seen = call.matched = 0;
	edata = MigTrySubtransaction(RunSample, &call);
	MemoryContextSwitchTo(build_ctx);
	if (edata != NULL || call.seen <= 0)
		return EstimateRows(target->relation_name, where_clause);
	if (blocks <= SAMPLE_BLOCKS)
		return call.matched;	/* the whole table was read */
	if (keys <= 0)
		keys = (int64) (call.seen * 100.0 / call.percent);
	return (int64) rint((double) keys * call.matched / call.seen);
}

/*
 * EstimateRows returns the planner's estimate of the rows of relation_name
 * that match where_clause (all rows if NULL).  Caller has SPI connected.
 */
static int64
EstimateRows(const char *relation_name, const char *where_clause)
{
	char	   *sql;
	char	   *plan;
	char	   *p;

	if (where_clause)
		sql = psprintf("EXPLAIN (FORMAT JSON) SELECT FROM ONLY %s WHERE (%s\n)",
					   relation_name, where_clause);
	else
		sql = psprintf("EXPLAIN (FORMAT JSON) SELECT FROM ONLY %s", relation_name);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY || SPI_processed < 1)
		return -1;
	MemoryContextSwitchTo(build_ctx);
	plan = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	p = plan ? strstr(plan, "\"Plan Rows\": ") : NULL;
	if (p == NULL)
		return -1;
	return strtoll(p + strlen("\"Plan Rows\": "), NULL, 10);
}

/*
 * MigResolveThrottleQuery checks that query is one SELECT that returns one
 * boolean column, and returns it resolved as the caller sees it: analysed
 * and deparsed with every name schema-qualified, so that objects created
 * later cannot capture it when the worker runs it with a pinned
 * search_path.  Privileges are checked when it runs, as the job owner.
 */
typedef struct PrepareCall
{
	const char *query;
	SPIPlanPtr	plan;
} PrepareCall;

static void
RunPrepare(void *arg)
{
	PrepareCall *call = arg;

	call->plan = SPI_prepare(call->query, 0, NULL);
	if (call->plan == NULL)
		elog(ERROR, "%s", SPI_result_code_string(SPI_result));
}

char *
MigResolveThrottleQuery(const char *query)
{
	PrepareCall call = {query, NULL};
	List	   *sources;
	CachedPlanSource *source;
	ErrorData  *edata;
	List	   *raw;
	Query	   *analysed;
	char	   *resolved;
	int			nest;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	edata = MigTrySubtransaction(RunPrepare, &call);
	if (edata)
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("invalid throttle_query: %s", edata->message),
				 errhint("Pass one SELECT that returns one boolean: true means wait.")));

	sources = SPI_plan_get_plan_sources(call.plan);
	source = list_length(sources) == 1 ? linitial(sources) : NULL;
	if (source == NULL || source->commandTag != CMDTAG_SELECT ||
		source->resultDesc == NULL || source->resultDesc->natts != 1 ||
		TupleDescAttr(source->resultDesc, 0)->atttypid != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid throttle_query: it must be one SELECT that returns one boolean column"),
				 errhint("For example: SELECT count(*) > 50 FROM pg_stat_activity WHERE state = 'active'")));
	SPI_finish();

	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		elog(ERROR, "a checked throttle_query is not one statement");
	analysed = MigParseAnalyze(linitial_node(RawStmt, raw), query);
	if (analysed->commandType != CMD_SELECT || analysed->utilityStmt != NULL)
		elog(ERROR, "a checked throttle_query is not a plain SELECT");
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	resolved = pg_get_querydef(analysed, false);
	AtEOXact_GUC(true, nest);
	return resolved;
}

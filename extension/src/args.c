/*-------------------------------------------------------------------------
 *
 * args.c
 *	  The arguments of pg_mig's SQL functions, found by their names.
 *
 * A start function reads its leading arguments (the table, the clauses)
 * by position, and every other argument -- the knobs (knobs.def),
 * parallel, verify, keep_old_values, job_key, the start arguments of a
 * job key -- by its name in pg_proc: no position is written in C, so a
 * signature can take a new argument anywhere.  This file calls no other
 * file of pg_mig.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/syscache.h"

#include "pg_mig.h"

/* the argument names and types of a function, kept in its flinfo->fn_extra */
typedef struct ArgNames
{
	Oid			fn_oid;
	int			nargs;
	char	  **names;
	Oid		   *types;
} ArgNames;

static ArgNames *
GetArgNames(FunctionCallInfo fcinfo)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;
	ArgNames   *an = flinfo->fn_extra;

	if (an == NULL || an->fn_oid != flinfo->fn_oid)
	{
		MemoryContext old = MemoryContextSwitchTo(flinfo->fn_mcxt);
		HeapTuple	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(flinfo->fn_oid));
		char	   *modes;

		if (!HeapTupleIsValid(proc))
			elog(ERROR, "cache lookup failed for function %u", flinfo->fn_oid);
		an = palloc0(sizeof(ArgNames));
		an->fn_oid = flinfo->fn_oid;
		an->nargs = get_func_arg_info(proc, &an->types, &an->names, &modes);
		ReleaseSysCache(proc);
		MemoryContextSwitchTo(old);
		flinfo->fn_extra = an;
	}
	return an;
}

/*
 * MigArgNo returns the position (0-based) of the argument name of the SQL
 * function being called, from its proargnames (read once per call site,
 * kept in flinfo->fn_extra, which a function that calls this must not use
 * otherwise), or -1 if it takes no such argument.  No argument of pg_mig
 * is read by a position written in C but the leading ones of a signature.
 */
int
MigArgNo(FunctionCallInfo fcinfo, const char *name)
{
	ArgNames   *an = GetArgNames(fcinfo);

	if (an->names == NULL)
		return -1;
	for (int i = 0; i < an->nargs && i < PG_NARGS(); i++)
		if (an->names[i] && strcmp(an->names[i], name) == 0)
			return i;
	return -1;
}

/* MigArgType: the type of argument argno (MigArgNo) of the function called */
Oid
MigArgType(FunctionCallInfo fcinfo, int argno)
{
	ArgNames   *an = GetArgNames(fcinfo);

	if (argno < 0 || argno >= an->nargs)
		elog(ERROR, "pg_mig function %u has no argument %d", fcinfo->flinfo->fn_oid, argno);
	return an->types[argno];
}

/* MigArgBool: the boolean argument name, or dflt if absent or NULL */
bool
MigArgBool(FunctionCallInfo fcinfo, const char *name, bool dflt)
{
	int			argno = MigArgNo(fcinfo, name);

	if (argno < 0 || PG_ARGISNULL(argno))
		return dflt;
	return PG_GETARG_BOOL(argno);
}

/*-------------------------------------------------------------------------
 *
 * parse_check.c
 *	  Checked parsing of SQL text a caller passes in pieces.
 *
 * A piece (a set or where clause, the column list of an index, ...) is put
 * into the statement it belongs in and that statement is run through
 * PostgreSQL's raw parser.  It must parse as exactly one statement; the
 * caller then checks that the piece is the grammar item it claims to be.
 * A syntax error is reported as an error in the piece the caller named,
 * with the statement it was checked as and the caller's hint.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/memutils.h"

#include "parse_check.h"

/*
 * MigParseOne returns the raw parse tree of sql, which must be one
 * statement; what names the piece of it the caller checks, hint (or NULL)
 * says what to pass instead.
 */
Node *
MigParseOne(const char *what, const char *sql, const char *hint)
{
	List	   *raw = NIL;
	MemoryContext ctx = CurrentMemoryContext;

	PG_TRY();
	{
		raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("invalid %s: %s", what, edata->message),
				 errdetail("The clause was checked as: %s", sql),
				 hint ? errhint("%s", hint) : 0));
	}
	PG_END_TRY();
	if (list_length(raw) != 1)
		MigRejectPart(what, "it must not contain more than one statement", hint);
	return linitial_node(RawStmt, raw)->stmt;
}

/* MigRejectPart reports that the piece what is not what it should be */
void
MigRejectPart(const char *what, const char *problem, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("invalid %s: %s", what, problem),
			 hint ? errhint("%s", hint) : 0));
}

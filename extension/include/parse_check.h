/*-------------------------------------------------------------------------
 *
 * parse_check.h
 *	  Checked parsing of SQL text a caller passes in pieces (parse_check.c):
 *	  the clauses of a backfill (validate.c), the parts of an index
 *	  (kind_index.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_PARSE_CHECK_H
#define PG_MIG_PARSE_CHECK_H

#include "nodes/nodes.h"

extern Node *MigParseOne(const char *what, const char *sql, const char *hint);
extern void MigRejectPart(const char *what, const char *problem,
						  const char *hint);

#endif							/* PG_MIG_PARSE_CHECK_H */

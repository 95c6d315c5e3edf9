/*-------------------------------------------------------------------------
 *
 * kinds.c
 *	  The registry of job kinds: one entry per kind (see kinds.h).
 *
 * It calls nothing: the job store names a kind through it, the worker
 * finds a kind's steps and walk callbacks in it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_mig.h"

static const MigKindDef *const mig_kinds[] = {
	&mig_kind_backfill,
	&mig_kind_delete,
	&mig_kind_not_null,
	&mig_kind_foreign_key,
	&mig_kind_validate,
	&mig_kind_index,
	&mig_kind_revert,
	&mig_kind_repack,
	&mig_kind_change_type,
};

/* Find: the registry's entry of kind, or NULL */
static const MigKindDef *
Find(MigJobKind kind)
{
	for (int i = 0; i < lengthof(mig_kinds); i++)
		if (mig_kinds[i]->kind == kind)
			return mig_kinds[i];
	return NULL;
}

/* MigKindDefOf: the registry's entry of kind */
const MigKindDef *
MigKindDefOf(MigJobKind kind)
{
	const MigKindDef *def = Find(kind);

	if (def == NULL)
		elog(ERROR, "pg_mig job kind %d is not in the registry", (int) kind);
	return def;
}

const char *
MigKindName(MigJobKind kind)
{
	const MigKindDef *def = Find(kind);

	return def ? def->name : "?";
}

MigJobKind
MigKindFromName(const char *name)
{
	for (int i = 0; i < lengthof(mig_kinds); i++)
		if (name && strcmp(name, mig_kinds[i]->name) == 0)
			return mig_kinds[i]->kind;
	elog(ERROR, "unknown pg_mig job kind \"%s\"", name ? name : "(null)");
	return MIG_KIND_BACKFILL;	/* keep compiler quiet */
}

/*
 * MigKindStartFunction: the SQL function that starts a job of the kind,
 * for hints.
 */
const char *
MigKindStartFunction(MigJobKind kind)
{
	const MigKindDef *def = Find(kind);

	return def ? def->start_function : "mig_start_backfill";
}

/*
 * MigKindWithArticle: the kind's name with its article ("a backfill", "an
 * index"), for messages.
 */
const char *
MigKindWithArticle(MigJobKind kind)
{
	const MigKindDef *def = Find(kind);

	return def ? def->with_article : "a job";
}

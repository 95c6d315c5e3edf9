/*-------------------------------------------------------------------------
 *
 * knobs.c
 *	  The description of each knob, made from the one table in knobs.def,
 *	  and the store of a checked value in the member of MigJob that holds
 *	  it (MigKnobApply).
 *
 * Nothing here checks a value (CheckKnob in sql_api.c does) or reads or
 * writes a column (job_store.c does, from the same descriptions): this
 * file calls no other file of pg_mig, so that the store and the SQL
 * functions both stand on it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"

#include "pg_mig.h"
#include "knobs.h"

/* the OID of a knob's type, from its kind */
#define KNOB_OID_INT		INT4OID
#define KNOB_OID_BIGINT		INT8OID
#define KNOB_OID_INTERVAL	INTERVALOID
#define KNOB_OID_FLOAT		FLOAT8OID
#define KNOB_OID_TEXT		TEXTOID
#define KNOB_OID_TEXT_ARRAY TEXTARRAYOID
#define KNOB_OID_BOOL		BOOLOID

const MigKnobSpec MigKnobs[KNOB_COUNT] = {
#define MIG_KNOB(name, kind, ctype, field, sqltype, unit, max, flags, setting, setting_var, sql_default, option, help) \
	[KNOB_##name] = {#name, MIG_KNOB_KIND_##kind, KNOB_OID_##kind, offsetof(MigJob, field), \
					 (max), (flags), (setting)},
#include "knobs.def"
#undef MIG_KNOB
};

/* MigKnobByName: the knob of that name, or KNOB_COUNT if there is none */
MigKnob
MigKnobByName(const char *name)
{
	for (int k = 0; k < KNOB_COUNT; k++)
		if (strcmp(MigKnobs[k].name, name) == 0)
			return (MigKnob) k;
	return KNOB_COUNT;
}

/*
 * MigKnobApply stores a checked knob value (CheckKnob) in the job: an
 * interval as milliseconds, text that is off as NULL.
 */
void
MigKnobApply(MigJob *job, MigKnob k, const MigKnobValue *v)
{
	switch (MigKnobs[k].kind)
	{
		case MIG_KNOB_KIND_INT:
			*MIG_KNOB_MEMBER(job, k, int) = (int) v->i;
			break;
		case MIG_KNOB_KIND_BIGINT:
		case MIG_KNOB_KIND_INTERVAL:
			*MIG_KNOB_MEMBER(job, k, int64) = v->i;
			break;
		case MIG_KNOB_KIND_FLOAT:
			*MIG_KNOB_MEMBER(job, k, double) = v->f;
			break;
		case MIG_KNOB_KIND_TEXT:
			*MIG_KNOB_MEMBER(job, k, char *) = v->off ? NULL : v->s;
			break;
		case MIG_KNOB_KIND_TEXT_ARRAY:
			*MIG_KNOB_MEMBER(job, k, List *) = v->list;
			break;
		case MIG_KNOB_KIND_BOOL:
			*MIG_KNOB_MEMBER(job, k, bool) = (v->i != 0);
			break;
	}
}

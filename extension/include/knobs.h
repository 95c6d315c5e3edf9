/*-------------------------------------------------------------------------
 *
 * knobs.h
 *	  The knobs of a job, from the one table in knobs.def: their numbers
 *	  (MigKnob), their descriptions (MigKnobs[], knobs.c) and the store of
 *	  a checked value in the member of MigJob that holds it.  The checks
 *	  of a given value are in sql_api.c (CheckKnob), the moves between a
 *	  job and its columns in job_store.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_KNOBS_H
#define PG_MIG_KNOBS_H

/* flags of a knob (knobs.def) */
#define MIG_KNOB_OPTIONAL			0x01	/* 0, '' or '{}' turns it off
											 * (stored as NULL) */
#define MIG_KNOB_POSITIVE			0x02	/* 0 is refused */
#define MIG_KNOB_NULL_TAKES_SETTING 0x04	/* a NULL argument takes the
											 * pg_mig.default_* setting,
											 * else it means off */
#define MIG_KNOB_WALK_ONLY			0x08	/* only the kinds that walk a
											 * table's keys: not
											 * mig_add_foreign_key */

typedef enum MigKnobKind
{
	MIG_KNOB_KIND_INT,			/* int4 */
	MIG_KNOB_KIND_BIGINT,		/* int8 */
	MIG_KNOB_KIND_INTERVAL,		/* held in ms */
	MIG_KNOB_KIND_FLOAT,		/* float8 */
	MIG_KNOB_KIND_TEXT,
	MIG_KNOB_KIND_TEXT_ARRAY,	/* held as a List of char * */
	MIG_KNOB_KIND_BOOL
} MigKnobKind;

/* KNOB_batch_size, ...: a knob's number, in knobs.def's order */
typedef enum MigKnob
{
#define MIG_KNOB(name, kind, ctype, field, sqltype, unit, max, flags, setting, setting_var, sql_default, option, help) \
	KNOB_##name,
#include "knobs.def"
#undef MIG_KNOB
	KNOB_COUNT
} MigKnob;

typedef struct MigKnobSpec
{
	const char *name;			/* argument and column name */
	MigKnobKind kind;
	Oid			type;			/* of the argument and the column */
	size_t		offset;			/* of its member in MigJob */
	int64		max;			/* upper bound (ms for intervals), 0 = none */
	int			flags;			/* MIG_KNOB_* */
	const char *setting;		/* pg_mig.default_*, or NULL */
} MigKnobSpec;

extern const MigKnobSpec MigKnobs[KNOB_COUNT];

/* a checked knob value: off, or a number, text or list */
typedef struct MigKnobValue
{
	bool		off;			/* 0 or empty: the limit is off */
	int64		i;				/* integers; milliseconds for intervals */
	double		f;
	char	   *s;
	List	   *list;
	Datum		datum;			/* the argument as passed */
} MigKnobValue;

/* the member of a MigJob that holds knob k, as a pointer to type */
#define MIG_KNOB_MEMBER(job, k, type) \
	((type *) ((char *) (job) + MigKnobs[k].offset))

struct MigJob;
extern MigKnob MigKnobByName(const char *name);	/* KNOB_COUNT: none */
extern void MigKnobApply(struct MigJob *job, MigKnob k, const MigKnobValue *v);

#endif							/* PG_MIG_KNOBS_H */

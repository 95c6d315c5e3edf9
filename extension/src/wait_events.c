/*-------------------------------------------------------------------------
 *
 * wait_events.c
 *	  The names pg_stat_activity.wait_event shows for pg_mig's waits.
 *
 * From PostgreSQL 17 on, each wait has a name of its own (registered in
 * shared memory by WaitEventExtensionNew the first time a process asks;
 * every process gets the same number for a name), so that a monitor tells
 * a worker held by a health signal from one pacing itself or backing off.
 * Before 17 every wait of an extension is PG_WAIT_EXTENSION, which
 * pg_stat_activity shows as "Extension" (see version_compat.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pgstat.h"

#include "pg_mig.h"
#include "version_compat.h"

static const char *const wait_event_names[MIG_WAIT_COUNT] = {
	[MIG_WAIT_LAUNCHER] = "PgMigLauncherMain",
	[MIG_WAIT_THROTTLED] = "PgMigThrottled",
	[MIG_WAIT_PACE] = "PgMigPace",
	[MIG_WAIT_BACKOFF] = "PgMigBackoff",
	[MIG_WAIT_JOB_CONTROL] = "PgMigJobControl",
	[MIG_WAIT_JOB_CHANGE] = "PgMigWaitForJob",
};

static uint32 wait_events[MIG_WAIT_COUNT];

/*
 * MigWaitEvent: the wait_event_info of one of pg_mig's waits, for
 * WaitLatch and ConditionVariableTimedSleep.
 */
uint32
MigWaitEvent(MigWait which)
{
	Assert(which >= 0 && which < MIG_WAIT_COUNT);
	if (wait_events[which] == 0)
		wait_events[which] = MigWaitEventNew(wait_event_names[which]);
	return wait_events[which];
}

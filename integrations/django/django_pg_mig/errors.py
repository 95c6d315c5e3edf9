"""
django_pg_mig.errors -- the exceptions the package raises, and the one place
where what pg_mig's server says (hints written for SQL, for migctl) is put
in the words of the layer a Django user works in.  Every exception here is a
CommandError, so that ``migrate`` and the mig_* commands print it as one
message and exit non-zero, without a traceback.
"""

import re

from django.core.management.base import CommandError
from django.db import NotSupportedError

FINAL_STATES = ("succeeded", "failed", "cancelled")


# What pg_mig's hints and failure texts say in SQL (or migctl) terms, and
# what a Django user does instead.  Applied in order; {job} is the job the
# message is about, when known.
_DJANGO_TERMS = (
    # the step's job key held by a job started with other arguments (the
    # migration was edited since)
    (r"Pass another job_key, or forget job (\d+) with mig_forget\(\d+\) once it is finished "
     r"to release its key\.",
     'The migration changed since job \\1 was started for this step: once it has ended '
     '("manage.py mig_cancel \\1" if it has not), forget it with "manage.py mig_forget \\1" '
     'and run migrate again.'),
    (r"; pass another job_key\.", "."),
    # a finished job given to job control
    (r"Start a new job with mig_\w+\(\)\.",
     "It has ended; \"manage.py mig_status {job}\" shows how."),
    (r"Start it again with mig_\w+\(\)", "Run migrate again"),
    (r"start it again with mig_\w+\(\)", "run migrate again"),
    (r"and start it again\.", "and run migrate again."),
    (r"Start a new job on the table(?: under its new name)?\.",
     "Fix the cause and run migrate again."),
    (r"Cancel the job and start a new one\.",
     "Cancel it with \"manage.py mig_cancel {job}\", then forget it with "
     "\"manage.py mig_forget {job}\" and run migrate again."),
    # the orphans of a foreign key
    (r"start mig_add_foreign_key\(\) with orphans => 'delete' or 'set_null'",
     "use AddForeignKey(..., orphans=\"delete\") or orphans=\"set_null\" (forget the "
     "failed job first with \"manage.py mig_forget {job}\")"),
    # rows still NULL
    (r"backfill them first, e\.g\. with mig_start_backfill\(\), then run mig_set_not_null\(\) again",
     "backfill them first (a Backfill operation in an earlier migration), then run migrate again"),
    # job control by id
    (r"(Wait for job (\d+)) with mig_wait\(\)", '\\1 with "manage.py mig_wait \\2"'),
    (r"mig_(pause|resume|cancel|forget|wait)\((\d+)\)", '"manage.py mig_\\1 \\2"'),
    (r"(?:with |by )?mig_(pause|resume|cancel|forget|wait)\(\)",
     lambda m: "with \"manage.py mig_%s {job}\"" % m.group(1)),
    (r"migctl (pause|resume|cancel|forget|wait|status) (\d+)", r"manage.py mig_\1 \2"),
    (r"mig_revert\((\d+)\)", "reversing its migration (manage.py migrate APP PREVIOUS)"),
    # the start functions: the operations
    (r"mig_start_backfill\(\)", "a Backfill operation"),
    (r"mig_start_delete\(\)", "a DeleteRows operation"),
    (r"mig_set_not_null\(\)", "SetNotNull"),
    (r"mig_create_index\(\)", "AddIndex"),
    (r"mig_add_foreign_key\(\)", "AddForeignKey"),
)


def in_django_terms(text, job=None):
    """
    in_django_terms returns TEXT (a hint, a detail or a job's last_error from
    pg_mig) with what it says in SQL or migctl terms said as a Django user
    does it: an operation in a migration, manage.py mig_* for job control.
    JOB is the id of the job the text is about, if known.
    """
    if not text:
        return text
    for pattern, replacement in _DJANGO_TERMS:
        text = re.sub(pattern, replacement, text)
        text = text.replace("{job}", str(job) if job is not None else "JOB")
    return text


class NotSupported(CommandError, NotSupportedError):
    """
    An operation refuses to run (an atomic migration, a pg_mig without the
    function it needs).  Both a NotSupportedError, like Django's own
    NotInTransactionMixin raises, and a CommandError, so that ``migrate``
    prints the reason as one message instead of a traceback.
    """


class Refused(CommandError):
    """
    pg_mig refused a call (a start, job control): its message, and its
    detail and hint in Django's terms.
    """

    @classmethod
    def from_database_error(cls, error, what=None, job_id=None):
        diag = getattr(error.__cause__, "diag", None)
        primary = getattr(diag, "message_primary", None) or str(error).strip().splitlines()[0]
        if primary.startswith("ERROR:  "):
            primary = primary[len("ERROR:  "):]
        message = "%s: %s" % (what, primary) if what else primary
        for part in ("message_detail", "message_hint"):
            text = getattr(diag, part, None)
            if text:
                message += "\n" + in_django_terms(text, job_id)
        refused = cls(message, returncode=1)
        # the server's SQLSTATE (0A000: pg_mig cannot do this case)
        refused.sqlstate = (getattr(diag, "sqlstate", None)
                            or getattr(error.__cause__, "pgcode", None))
        return refused


class JobFailed(CommandError):
    """
    A pg_mig job did not end ``succeeded``.  A CommandError, so that
    ``migrate`` prints it as one message and exits 1 (as migctl), without a
    traceback.
    """

    def __init__(self, job_id, state, last_error, doing, hint):
        self.job_id = job_id
        self.state = state
        self.last_error = last_error
        message = "pg_mig job %s (%s) ended %s" % (job_id, doing, state)
        if last_error:
            message += ": %s" % in_django_terms(last_error, job_id)
        if hint:
            message += "\n" + hint
        super().__init__(message, returncode=1)


class JobTimeout(CommandError):
    """
    The wait for a job ended before the job (an operation's timeout=, or
    ``mig_wait --timeout``): the job goes on in the server.  Exit code 4,
    as ``migctl wait``.
    """

    def __init__(self, job_id, state, doing, seconds, hint):
        self.job_id = job_id
        self.state = state
        message = "pg_mig job %s (%s) is still %s after %s s" % (
            job_id, doing, state, ("%.1f" % seconds).rstrip("0").rstrip("."))
        if hint:
            message += "\n" + hint
        super().__init__(message, returncode=4)


class Interrupted(CommandError):
    """
    Ctrl-C (SIGINT) while a command started or followed a job: one line that
    says what goes on, and exit code 130 as a shell gives an interrupted
    command, without a traceback.
    """

    def __init__(self, message):
        super().__init__(message, returncode=130)


class LockNotGranted(CommandError):
    """
    A statement the package runs itself after a job (AddForeignKey's ALTER
    CONSTRAINT ... DEFERRABLE) did not get its lock within lock_timeout in
    any of its attempts.  What the job did stays; running migrate again
    tries only that statement again.
    """

    def __init__(self, message):
        super().__init__(message, returncode=1)

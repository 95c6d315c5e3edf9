"""
django_pg_mig.errors -- the exceptions the package raises.  Both are
CommandErrors, so that ``migrate`` and the mig_* commands print them as one
message and exit non-zero, without a traceback.
"""

from django.core.management.base import CommandError
from django.db import NotSupportedError

FINAL_STATES = ("succeeded", "failed", "cancelled")


class NotSupported(CommandError, NotSupportedError):
    """
    An operation refuses to run (an atomic migration, a pg_mig without the
    function it needs).  Both a NotSupportedError, like Django's own
    NotInTransactionMixin raises, and a CommandError, so that ``migrate``
    prints the reason as one message instead of a traceback.
    """


class JobFailed(CommandError):
    """
    A pg_mig job did not end ``succeeded`` (or was still running when the
    operation's timeout passed).  A CommandError, so that ``migrate`` prints
    it as one message and exits non-zero, without a traceback.
    """

    def __init__(self, job_id, state, last_error, doing, hint):
        self.job_id = job_id
        self.state = state
        self.last_error = last_error
        message = "pg_mig job %s (%s) %s" % (
            job_id, doing,
            "is still %s" % state if state not in FINAL_STATES else "ended %s" % state)
        if last_error:
            message += ": %s" % last_error
        if hint:
            message += "\n" + hint
        # exit codes as migctl's: 1 failed or cancelled, 4 a timeout
        super().__init__(message, returncode=1 if state in FINAL_STATES else 4)


class LockNotGranted(CommandError):
    """
    A statement the package runs itself after a job (AddForeignKey's ALTER
    CONSTRAINT ... DEFERRABLE) did not get its lock within lock_timeout in
    any of its attempts.  What the job did stays; running migrate again
    tries only that statement again.
    """

    def __init__(self, message):
        super().__init__(message, returncode=1)

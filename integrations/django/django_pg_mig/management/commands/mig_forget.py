"""manage.py mig_forget JOB -- mig_forget() of pg_mig."""

from ._base import JobCommand


class Command(JobCommand):
    help = ("Forgets a finished pg_mig job: drops its kept old values and releases its "
            "job key, so that migrate does its step anew.")

    def run(self, connection, options):
        self.control(connection, "mig_forget", options)

"""manage.py mig_cancel JOB -- mig_cancel() of pg_mig."""

from ._base import JobCommand


class Command(JobCommand):
    help = "Cancels a pg_mig job after its current chunk; committed chunks stay."

    def run(self, connection, options):
        self.control(connection, "mig_cancel", options)

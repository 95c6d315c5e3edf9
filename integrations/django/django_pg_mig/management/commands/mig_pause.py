"""manage.py mig_pause JOB -- mig_pause() of pg_mig."""

from ._base import JobCommand


class Command(JobCommand):
    help = "Pauses a pg_mig job after its current chunk."

    def run(self, connection, options):
        self.control(connection, "mig_pause", options)

"""manage.py mig_resume JOB -- mig_resume() of pg_mig."""

from ._base import JobCommand


class Command(JobCommand):
    help = "Resumes a paused or failed pg_mig job from its checkpoint."

    def run(self, connection, options):
        self.control(connection, "mig_resume", options)

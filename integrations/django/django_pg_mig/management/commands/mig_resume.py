"""manage.py mig_resume JOB -- mig_resume() of pg_mig."""

from django_pg_mig import sql

from ._base import JobCommand


class Command(JobCommand):
    help = "Resumes a paused or failed pg_mig job from its checkpoint."

    def run(self, connection, options):
        self.existing_job(connection, options["job"])
        sql.control(connection, "mig_resume", options["job"])
        self.stdout.write("job %s: %s" % (options["job"], sql.job_rows(connection, options["job"])[0]["state"]))

"""manage.py mig_pause JOB -- mig_pause() of pg_mig."""

from django_pg_mig import sql

from ._base import JobCommand


class Command(JobCommand):
    help = "Pauses a pg_mig job after its current chunk."

    def run(self, connection, options):
        self.existing_job(connection, options["job"])
        sql.control(connection, "mig_pause", options["job"])
        self.stdout.write("job %s: %s" % (options["job"], sql.job_rows(connection, options["job"])[0]["state"]))

"""manage.py mig_cancel JOB -- mig_cancel() of pg_mig."""

from django_pg_mig import sql

from ._base import JobCommand


class Command(JobCommand):
    help = "Cancels a pg_mig job after its current chunk; committed chunks stay."

    def run(self, connection, options):
        self.existing_job(connection, options["job"])
        sql.control(connection, "mig_cancel", options["job"])
        self.stdout.write("job %s: %s" % (options["job"], sql.job_rows(connection, options["job"])[0]["state"]))

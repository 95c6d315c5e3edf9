"""manage.py mig_status [JOB] [--json] -- what "migctl status" prints."""

from django_pg_mig import jobs, sql

from ._base import JobCommand


class Command(JobCommand):
    help = "Shows pg_mig jobs with progress, rate, ETA, replica lag and throttle reason."
    job_required = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--json", action="store_true", help="JSON for scripts")

    def run(self, connection, options):
        if options["job"] is not None:
            self.existing_job(connection, options["job"])
        rows = sql.job_rows(connection, options["job"])
        lag = sql.max_lag_bytes(connection)
        render = jobs.status_json if options["json"] else jobs.status_table
        self.stdout.write(render(rows, lag), ending="")

"""manage.py mig_wait JOB [--timeout SECONDS] -- exits 0 only when the job succeeded."""

from django_pg_mig import jobs

from ._base import JobCommand


class Command(JobCommand):
    help = ("Waits until a pg_mig job ends, printing its progress; exits 0 only "
            "if it succeeded.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--timeout", type=float, default=None,
                            help="give up after this many seconds (the job goes on)")

    def run(self, connection, options):
        job = self.existing_job(connection, options["job"])
        doing = "%s%s" % (job["kind"] + " of " if job["kind"] else "", job["relation"])
        job = jobs.wait_for_job(
            connection, job["job_id"], doing, timeout=options["timeout"], out=self.stdout,
            hint=None,
            interrupt_hint="wait for it again with \"manage.py mig_wait %s\"" % job["job_id"])
        self.stdout.write(job["state"])

"""
The shared part of the mig_* management commands: --database, the job
argument, and errors as CommandError with migctl's exit codes in mind
(mig_wait exits 0 only when the job succeeded).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from django_pg_mig import sql
from django_pg_mig.errors import Interrupted, Refused


class JobCommand(BaseCommand):
    """A command about pg_mig jobs in one database."""

    job_required = True

    def add_arguments(self, parser):
        parser.add_argument("job", nargs=None if self.job_required else "?", type=int,
                            help="the job id (see mig_status)")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='the database to use (default: "default")')

    def connection(self, options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("database %r is not PostgreSQL" % options["database"])
        return connection

    def existing_job(self, connection, job_id):
        rows = sql.job_rows(connection, job_id)
        if not rows:
            raise CommandError("pg_mig job %s does not exist" % job_id)
        return rows[0]

    def handle(self, *args, **options):
        try:
            return self.run(self.connection(options), options)
        except DatabaseError as e:
            # the server's hint in Django's terms (errors.in_django_terms)
            raise Refused.from_database_error(e, job_id=options.get("job")) from e
        except KeyboardInterrupt:
            raise Interrupted("interrupted; pg_mig jobs go on in the server") from None

    def control(self, connection, function, options):
        """control runs FUNCTION (mig_pause, ...) on the job and prints its state then."""
        job_id = options["job"]
        self.existing_job(connection, job_id)
        sql.control(connection, function, job_id)
        rows = sql.job_rows(connection, job_id)
        self.stdout.write("job %s: %s" % (job_id, rows[0]["state"] if rows else "forgotten"))

    def run(self, connection, options):
        raise NotImplementedError

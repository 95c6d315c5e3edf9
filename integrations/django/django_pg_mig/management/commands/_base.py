"""
The shared part of the mig_* management commands: --database, the job
argument, and errors as CommandError with migctl's exit codes in mind
(mig_wait exits 0 only when the job succeeded).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from django_pg_mig import sql


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
            raise CommandError(str(e).strip())

    def run(self, connection, options):
        raise NotImplementedError

"""
manage.py mig_lint [APP] [--database ALIAS] [--check] [--json] -- the
operations of the migrations not yet applied that would lock a big table
(django_pg_mig.lint): each with its table's size, the lock, and what to do
instead.  With --check the exit code says, for CI, whether any of them is
not made safe by the django_pg_mig backend (1: one runs as plain DDL under
its lock) or not (0: none, or the backend runs each as a pg_mig job).
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from django_pg_mig import lint


class Command(BaseCommand):
    help = ("Lists the operations of unapplied migrations that would lock a table of "
            "PG_MIG_BIG_TABLE_ROWS rows or more for longer than a lock timeout.")

    def add_arguments(self, parser):
        parser.add_argument("app_label", nargs="?", help="only this app's migrations")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='the database to use (default: "default")')
        parser.add_argument("--check", action="store_true",
                            help="exit 1 if any operation would lock a big table and is not"
                                 " run as a pg_mig job by the django_pg_mig backend (for CI)")
        parser.add_argument("--json", action="store_true", help="JSON for scripts")

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("database %r is not PostgreSQL" % options["database"])
        try:
            findings = lint.lint(connection, options["app_label"])
        except DatabaseError as e:
            raise CommandError(str(e).strip())
        if options["json"]:
            self.stdout.write(json.dumps([f.as_dict() for f in findings], indent=2))
        elif not findings:
            self.stdout.write("No unapplied operation locks a table of %s rows or more."
                              % format(lint.big_table_rows(), ","))
        else:
            for f in findings:
                self.stdout.write("%s.%s #%d: %s" % (f.app_label, f.migration, f.index, f.operation))
                self.stdout.write("    table %s, about %s rows; lock: %s"
                                  % (f.table, format(f.rows, ","), f.lock))
                self.stdout.write("    instead: %s" % f.instead)
        if options["check"] and any(not f.safe for f in findings):
            raise SystemExit(1)

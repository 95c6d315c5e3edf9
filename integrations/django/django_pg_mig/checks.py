"""
django_pg_mig.checks -- the system check (tag "pg_mig") that warns, for
CI, of each operation of the migrations not yet applied that would lock a
big table and that the django_pg_mig backend does not run as a pg_mig job
(what mig_lint names, less what the backend makes safe): with Django's
own backend every finding, with the package's those in atomic migrations,
those that opt out, and those no pg_mig job does (a unique constraint).

It reads the database, so it runs as Django's database checks do: on the
databases `manage.py check --database ALIAS` names (and those migrate
checks), and with --deploy on every PostgreSQL database of DATABASES.
`manage.py check --deploy --fail-level WARNING` or `manage.py check
--database default --tag pg_mig --fail-level WARNING` then fails CI.
"""

from django.core import checks
from django.db import DatabaseError, connections

from . import lint

TAG = "pg_mig"


def _unsafe_migrations(aliases):
    found = []
    for alias in aliases:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        try:
            findings = lint.lint(connection)
        except DatabaseError as e:
            found.append(checks.Warning(
                "the migrations not yet applied on database %r could not be checked: %s"
                % (alias, str(e).strip()),
                hint="Run the check where the database is reachable, or run "
                     "manage.py mig_lint --check --database %s there." % alias,
                id="pg_mig.W002"))
            continue
        for f in findings:
            if f.safe:
                continue
            found.append(checks.Warning(
                "%s.%s operation %d (%s) takes %s on %s (about %s rows) when it is migrated"
                % (f.app_label, f.migration, f.index, f.operation, f.lock, f.table,
                   format(f.rows, ",")) + ("" if alias == "default" else " on database %r" % alias),
                hint="Instead: %s." % f.instead,
                id="pg_mig.W001"))
    return found


def unsafe_migrations(app_configs=None, databases=None, **kwargs):
    """The check on the databases given (manage.py check --database, migrate)."""
    return _unsafe_migrations(databases or ())


def unsafe_migrations_deploy(app_configs=None, databases=None, **kwargs):
    """With --deploy and no --database: every database."""
    return [] if databases else _unsafe_migrations(connections)


def register():
    """register: the check, in the registry (the app's ready())."""
    checks.register(unsafe_migrations, TAG, checks.Tags.database)
    checks.register(unsafe_migrations_deploy, TAG, deploy=True)

"""
django_pg_mig -- the safe migration recipe for big PostgreSQL tables, as
Django migration operations that run each step as a pg_mig job in the
server (see django_pg_mig.operations), and management commands to follow
and control the jobs (mig_status, mig_wait, mig_pause, mig_resume,
mig_cancel).
"""

__version__ = "0.4.0"


def plain(operation):
    """
    plain(operation) marks one operation of a migration to run as Django's
    plain DDL under the django_pg_mig.backends.postgresql backend, whatever
    the size of its table; it returns the operation:

        operations = [django_pg_mig.plain(migrations.AddIndex(...))]
    """
    operation.pg_mig = False
    return operation

# Django 3.2+ finds the app's AppConfig (apps.PgMigConfig) by itself.

"""
manage.py makemigrations -- Django's, and where a database uses the
django_pg_mig.backends.postgresql backend, a migration with an operation
that backend may run as a pg_mig job on an existing table (an index, a
field's index or foreign key, an altered field, a check constraint) is
written with ``atomic = False``: a job started inside the migration's
transaction would be invisible to pg_mig's worker until the transaction
commits.
"""

from django.core.management.commands import makemigrations
from django.db import connections, models
from django.db.migrations import operations as ops
from django.db.migrations.writer import MigrationWriter

CLASS_LINE = "class Migration(migrations.Migration):\n"


def backend_in_use():
    """backend_in_use says whether a database of the settings uses the package's backend."""
    return any(connections.databases[alias].get("ENGINE") == "django_pg_mig.backends.postgresql"
               for alias in connections.databases)


def needs_jobs(migration):
    """
    needs_jobs says whether MIGRATION has an operation the backend may run
    as a pg_mig job: one on a model that is not created by the migration.
    """
    created = {op.name_lower for op in migration.operations if isinstance(op, ops.CreateModel)}
    for op in migration.operations:
        model = getattr(op, "model_name_lower", None)
        if model is None or model in created:
            continue
        if isinstance(op, (ops.AddIndex, ops.AlterField)):
            return True
        if isinstance(op, ops.AddConstraint) and isinstance(op.constraint, models.CheckConstraint):
            return True
        if isinstance(op, ops.AddField):
            field = op.field
            if field.db_index or field.unique or (
                    field.remote_field is not None and getattr(field, "db_constraint", False)
                    and not field.many_to_many):
                return True
    return False


class PgMigMigrationWriter(MigrationWriter):
    """The writer of Django's makemigrations, adding atomic = False where needs_jobs says."""

    def as_string(self):
        text = super().as_string()
        if needs_jobs(self.migration) and "\n    atomic = " not in text:
            text = text.replace(CLASS_LINE, CLASS_LINE + "    atomic = False\n", 1)
        return text


class Command(makemigrations.Command):
    help = makemigrations.Command.help + (
        " With the django_pg_mig.backends.postgresql backend, a migration whose operations "
        "may run as pg_mig jobs is written with atomic = False.")

    def handle(self, *args, **options):
        if not backend_in_use():
            return super().handle(*args, **options)
        # Django's command writes through its module's MigrationWriter
        saved = makemigrations.MigrationWriter
        makemigrations.MigrationWriter = PgMigMigrationWriter
        try:
            return super().handle(*args, **options)
        finally:
            makemigrations.MigrationWriter = saved

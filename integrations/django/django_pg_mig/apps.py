"""
django_pg_mig.apps -- the Django app: its management commands, and the
pre_migrate hook that tells each pg_mig operation in migrate's plan where it
stands (app, migration, index in operations), for its job key.
"""

from django.apps import AppConfig
from django.db.models.signals import pre_migrate


def _place_operations(sender, plan=None, **kwargs):
    """
    _place_operations marks every pg_mig operation of the migrations in
    migrate's PLAN with (app label, migration name, index): the operation
    object is the one Migration.apply() and unapply() then run.
    """
    from .operations import PgMigOperation
    for migration, _backwards in plan or ():
        for index, operation in enumerate(migration.operations):
            if isinstance(operation, PgMigOperation):
                operation._pg_mig_place = (migration.app_label, migration.name, index)


class PgMigConfig(AppConfig):
    name = "django_pg_mig"
    verbose_name = "pg_mig"

    def ready(self):
        pre_migrate.connect(_place_operations, dispatch_uid="django_pg_mig.place_operations")

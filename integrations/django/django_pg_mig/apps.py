"""
django_pg_mig.apps -- the Django app: its management commands, its system
check (django_pg_mig.checks), and the pre_migrate hook that tells each
operation in migrate's plan where it stands (app, migration, index in
operations), for its job key; with the django_pg_mig.backends.postgresql
backend, it also makes the operations of a non-atomic migration run once
(see _run_once).
"""

from django.apps import AppConfig
from django.db.models.signals import pre_migrate


def _place_operations(sender, plan=None, using=None, **kwargs):
    """
    _place_operations marks every pg_mig operation of the migrations in
    migrate's PLAN with (app label, migration name, index): the operation
    object is the one Migration.apply() and unapply() then run.  Under the
    package's backend every operation of the plan also runs through
    _run_once.
    """
    from django.db import connections
    from .operations import PgMigOperation
    backend = None
    if using is not None and connections[using].vendor == "postgresql":
        # (Django's PostgreSQL backend imports a driver: only for PostgreSQL)
        from .backends.postgresql.schema import DatabaseSchemaEditor
        if issubclass(connections[using].SchemaEditorClass, DatabaseSchemaEditor):
            backend = using
    for migration, _backwards in plan or ():
        for index, operation in enumerate(migration.operations):
            if isinstance(operation, PgMigOperation):
                operation._pg_mig_place = (migration.app_label, migration.name, index)
            elif backend is not None:
                _run_once(migration, index, operation)


def _run_once(migration, index, operation):
    """
    _run_once wraps OPERATION's database_forwards and database_backwards (on
    the object, once): while it runs, the schema editor knows the step (for
    the job keys of the backend).  In a migration that is not atomic, the
    table django_pg_mig_done keeps, for each operation, how many of its
    statements committed (written in each statement's transaction by the
    schema editor) and whether it ended: migrate run again after an
    interruption skips what committed already (it would fail a second time,
    e.g. ADD COLUMN) and goes on with the rest, the jobs by their keys.
    Reversing an operation removes its row.
    """
    if getattr(operation, "_pg_mig_once", False):
        return
    from . import jobs, sql
    from .operations import _new_line
    forwards, backwards = operation.database_forwards, operation.database_backwards
    step = (migration, index, operation)
    place = (migration.app_label, migration.name, index)

    def run(schema_editor, method, is_forwards, args):
        connection = schema_editor.connection
        track = not schema_editor.collect_sql and not connection.in_atomic_block
        schema_editor._pg_mig_track = None
        if track and is_forwards:
            statements, done = sql.step_state(connection, place)
            if done:
                jobs.print_note("%s: done already by an earlier migrate" % operation.describe(),
                                new_line=_new_line(schema_editor))
                return
            schema_editor._pg_mig_track = {"place": place, "done": statements, "n": 0}
        schema_editor._pg_mig_step = step
        try:
            method(*args)
        finally:
            schema_editor._pg_mig_step = None
            schema_editor._pg_mig_track = None
        if track:
            sql.mark_step_done(connection, place, is_forwards)

    def database_forwards(app_label, schema_editor, from_state, to_state):
        run(schema_editor, forwards, True, (app_label, schema_editor, from_state, to_state))

    def database_backwards(app_label, schema_editor, from_state, to_state):
        run(schema_editor, backwards, False, (app_label, schema_editor, from_state, to_state))

    operation.database_forwards = database_forwards
    operation.database_backwards = database_backwards
    operation._pg_mig_once = True


class PgMigConfig(AppConfig):
    name = "django_pg_mig"
    verbose_name = "pg_mig"

    def ready(self):
        pre_migrate.connect(_place_operations, dispatch_uid="django_pg_mig.place_operations")
        from . import checks
        checks.register()

"""
django_pg_mig.lint -- which operations of the migrations not yet applied
would lock a big table for longer than a lock timeout.

For each migration in migrate's plan (forwards, not yet applied on the
database) each operation is looked at with the project state it will run
on: its table (the model's db_table), the table's size (the planner's
estimate, pg_class.reltuples, read through the server), the lock the plain
DDL that Django would run takes, and what to do instead.  A table is *big*
at PG_MIG_BIG_TABLE_ROWS rows or more (setting; default 1,000,000).

Only what holds a lock that stops the application's writes (or reads) for
a time that grows with the table is named: an index built without
CONCURRENTLY (SHARE: writes wait for the whole build), SET NOT NULL (a scan
under ACCESS EXCLUSIVE), a foreign key or check constraint added valid (a
scan of the table under SHARE ROW EXCLUSIVE or ACCESS EXCLUSIVE), a unique
constraint (an index build under SHARE ... and ACCESS EXCLUSIVE), a column
type change that rewrites the table (ACCESS EXCLUSIVE for the rewrite).
Operations that are catalog changes (adding a nullable column, a column
with a constant default, renames, drops) and pg_mig's own operations are
not findings.
"""

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.executor import MigrationExecutor

DEFAULT_BIG_TABLE_ROWS = 1000000


def big_table_rows():
    """big_table_rows: the PG_MIG_BIG_TABLE_ROWS setting, or its default."""
    return int(getattr(settings, "PG_MIG_BIG_TABLE_ROWS", DEFAULT_BIG_TABLE_ROWS))


class Finding:
    """One operation that would lock a big table."""

    def __init__(self, migration, index, operation, table, rows, lock, instead, safe=False):
        self.app_label = migration.app_label
        self.migration = migration.name
        self.index = index
        self.operation = operation
        self.table = table
        self.rows = rows
        self.lock = lock
        self.instead = instead
        # the django_pg_mig backend runs it as a pg_mig job: no lock to fear
        self.safe = safe

    def as_dict(self):
        return {"app": self.app_label, "migration": self.migration, "operation_index": self.index,
                "operation": self.operation, "table": self.table, "rows": self.rows,
                "lock": self.lock, "instead": self.instead, "safe": self.safe}


def table_rows(connection, table):
    """
    table_rows: the planner's estimate of table's rows (pg_class.reltuples;
    a table never analyzed counts its pages instead), or None when the table
    does not exist yet.  The name is quoted by the server.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN c.reltuples OPERATOR(pg_catalog.>=) 0 THEN c.reltuples::pg_catalog.int8"
            " ELSE (pg_catalog.pg_relation_size(c.oid)"
            "       OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8)"
            "      OPERATOR(pg_catalog.*) 100 END"
            " FROM pg_catalog.pg_class c"
            " WHERE c.oid OPERATOR(pg_catalog.=)"
            "       pg_catalog.to_regclass(pg_catalog.quote_ident(%s::pg_catalog.text))",
            [table])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _model(state, app_label, model_name):
    return state.apps.get_model(app_label, model_name)


def _field_sql_type(connection, field):
    return field.db_parameters(connection=connection)["type"]


def _index_finding(name, model):
    return ("SHARE (writes wait for the whole index build)",
            "django_pg_mig.operations.AddIndex(%r, models.Index(...)) builds it CONCURRENTLY"
            " as a pg_mig job, in a migration with atomic = False" % model._meta.model_name)


def _judge(connection, operation, app_label, state):
    """
    _judge: (table, lock, instead, kind) when operation, run as plain DDL on the
    project state it gets, would hold a lock for a time that grows with its
    table; else None.
    """
    if isinstance(operation, ops.AddIndex):
        model = _model(state, app_label, operation.model_name)
        lock, instead = _index_finding(operation.index.name, model)
        return model._meta.db_table, lock, instead, "index"
    if isinstance(operation, ops.AddConstraint):
        model = _model(state, app_label, operation.model_name)
        constraint = operation.constraint
        if isinstance(constraint, models.CheckConstraint):
            return (model._meta.db_table, "ACCESS EXCLUSIVE (the table is scanned to validate)",
                    "add it NOT VALID, then validate it as a pg_mig job"
                    " (mig_validate_constraint), in a migration with atomic = False", "validate")
        if isinstance(constraint, models.UniqueConstraint):
            return (model._meta.db_table, "SHARE (writes wait for the unique index build)",
                    "build the unique index with django_pg_mig.operations.AddIndex"
                    " (CONCURRENTLY, a pg_mig job), then add the constraint USING INDEX", None)
        return None
    if isinstance(operation, ops.AddField):
        model = _model(state, app_label, operation.model_name)
        field = operation.field
        table = model._meta.db_table
        if field.is_relation and field.many_to_many:
            return None     # a new table
        if getattr(field, "db_constraint", False) and field.remote_field is not None:
            return (table, "SHARE ROW EXCLUSIVE on both tables (the foreign key is validated by a scan)",
                    "add the field with db_constraint=False, then"
                    " django_pg_mig.operations.AddForeignKey(%r, %r) (NOT VALID, orphans walked,"
                    " validated as a pg_mig job)" % (model._meta.model_name, field.name),
                    "foreign_key")
        if field.db_index or field.unique:
            return (table, "SHARE (writes wait for the index build)",
                    "add the field with db_index=False (unique=False), then"
                    " django_pg_mig.operations.AddIndex (CONCURRENTLY, a pg_mig job)",
                    None if field.unique else "index")
        return None
    if isinstance(operation, ops.AlterField):
        model = _model(state, app_label, operation.model_name)
        old = model._meta.get_field(operation.name)
        # the new field bound to its model (a ForeignKey's type is its target's)
        after = state.clone()
        operation.state_forwards(app_label, after)
        new = _model(after, app_label, operation.model_name)._meta.get_field(operation.name)
        table = model._meta.db_table
        if _field_sql_type(connection, old) != _field_sql_type(connection, new):
            old_type, new_type = _field_sql_type(connection, old), _field_sql_type(connection, new)
            if _catalog_only_type_change(old_type, new_type):
                return None
            return (table, "ACCESS EXCLUSIVE (%s -> %s rewrites the table)" % (old_type, new_type),
                    "django_pg_mig.operations.ChangeType(%r, %r, field) (a pg_mig change_type"
                    " job), in a migration with atomic = False"
                    % (model._meta.model_name, operation.name), "change_type")
        if old.null and not new.null:
            return (table, "ACCESS EXCLUSIVE (SET NOT NULL scans the table)",
                    "django_pg_mig.operations.SetNotNull(%r, %r) (a validated check, then SET NOT NULL"
                    " without a scan, as a pg_mig job)" % (model._meta.model_name, operation.name),
                    "not_null")
        if (new.db_index and not old.db_index) or (new.unique and not old.unique):
            return (table, "SHARE (writes wait for the index build)",
                    "django_pg_mig.operations.AddIndex (CONCURRENTLY, a pg_mig job)",
                    None if new.unique and not old.unique else "index")
        if (getattr(new, "db_constraint", False) and new.remote_field is not None
                and not getattr(old, "db_constraint", False)):
            return (table, "SHARE ROW EXCLUSIVE on both tables (the foreign key is validated by a scan)",
                    "django_pg_mig.operations.AddForeignKey(%r, %r)"
                    % (model._meta.model_name, operation.name), "foreign_key")
        return None
    return None


def _catalog_only_type_change(old_type, new_type):
    """
    _catalog_only_type_change: PostgreSQL changes these types without a
    rewrite: varchar(n) to a longer varchar or to text, and varchar to text.
    """
    def varchar_len(t):
        t = t.lower().replace(" ", "")
        if t.startswith("varchar(") and t.endswith(")"):
            return int(t[len("varchar("):-1])
        return None

    old_len, new_len = varchar_len(old_type), varchar_len(new_type)
    if old_len is not None and new_type.lower() == "text":
        return True
    if old_len is not None and new_len is not None and new_len >= old_len:
        return True
    return False


def _backend_in_use(connection):
    """_backend_in_use says whether CONNECTION's schema editor is django_pg_mig's backend's."""
    if connection.vendor != "postgresql":
        return False
    from .backends.postgresql.schema import DatabaseSchemaEditor
    return issubclass(connection.SchemaEditorClass, DatabaseSchemaEditor)


def _backend_instead(migration, operation, kind, instead):
    """
    _backend_instead: (what the django_pg_mig backend does with the
    operation, whether that is a pg_mig job); KIND is the pg_mig job it runs
    (None: none), INSTEAD what to do by hand.
    """
    if getattr(migration, "pg_mig", True) is False or getattr(operation, "pg_mig", True) is False:
        return (instead + " (this operation opts out of the django_pg_mig backend: pg_mig = False)",
                False)
    if kind is None:
        return instead, False
    if migration.atomic:
        return ("the django_pg_mig backend runs Django's DDL under lock_timeout with retries, "
                "as the migration is atomic; set atomic = False on it to run a pg_mig %s job"
                % kind, False)
    return "the django_pg_mig backend runs it as a pg_mig %s job" % kind, True


def lint(connection, app_label=None):
    """
    lint: the Findings of every operation in the migrations that migrate
    would apply now (forwards; optionally those of one app), on tables of
    PG_MIG_BIG_TABLE_ROWS rows or more.
    """
    executor = MigrationExecutor(connection)
    targets = executor.loader.graph.leaf_nodes()
    if app_label is not None:
        targets = [key for key in targets if key[0] == app_label]
    plan = executor.migration_plan(targets)
    threshold = big_table_rows()
    backend = _backend_in_use(connection)
    findings = []
    for migration, backwards in plan:
        if backwards:
            continue
        state = executor.loader.project_state((migration.app_label, migration.name), at_end=False)
        for index, operation in enumerate(migration.operations):
            judged = _judge(connection, operation, migration.app_label, state)
            if judged is not None:
                table, lock, instead, kind = judged
                safe = False
                if backend:
                    instead, safe = _backend_instead(migration, operation, kind, instead)
                rows = table_rows(connection, table)
                if rows is not None and rows >= threshold:
                    findings.append(Finding(migration, index, operation.describe(), table, rows,
                                            lock, instead, safe))
            operation.state_forwards(migration.app_label, state)
    return findings

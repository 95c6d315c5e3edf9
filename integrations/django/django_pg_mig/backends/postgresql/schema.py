"""
django_pg_mig.backends.postgresql.schema -- the schema editor of the
"django_pg_mig.backends.postgresql" backend: Django's PostgreSQL schema
editor, except that on a *big* table (PG_MIG_BIG_TABLE_ROWS rows or more by
the planner's estimate, pg_class.reltuples; default 1,000,000):

    an index (AddIndex, Meta.indexes, db_index=True)
                       -> a pg_mig job of kind index (mig_create_index)
    null=False         -> a not_null job (mig_set_not_null)
    a foreign key (a new ForeignKey, db_constraint=True)
                       -> a foreign_key job (mig_add_foreign_key: NOT VALID,
                          orphans checked, validated), then DEFERRABLE
                          INITIALLY DEFERRED as Django makes it
    a CheckConstraint  -> ADD CONSTRAINT ... NOT VALID, then a validate job
                          (mig_validate_constraint)
    a column's type (AlterField changing only the type, e.g. AutoField ->
    BigAutoField)      -> a change_type job (mig_change_type, the columns
                          that reference a primary key included)
    any other DDL      -> Django's statement under lock_timeout (pg_mig's
                          default for its steps), retried with backoff

A job needs a migration that is not atomic (atomic = False: a job started
inside the migration's transaction would be invisible to pg_mig's worker
until it commits); the package's makemigrations writes that where needed.
In an atomic migration (a third-party app's that cannot be edited) the
statement runs as Django's plain DDL under lock_timeout with retries, and a
warning says so.  Small tables keep Django's plain SQL.

Each job is started with the job key of its operation (django:ALIAS:APP:
MIGRATION:INDEX, see operations.job_key) and what it makes (":index:NAME"),
so that migrate run again after an interruption goes on with the same job
and never starts a step twice.  Operations of a non-atomic migration that
ended are remembered in the table django_pg_mig_done (made on first use),
so a migrate run again does not run them a second time.

Opting out: ``pg_mig = False`` on a Migration class (the whole migration),
or ``django_pg_mig.plain(operation)`` in its operations (one operation).
sqlmigrate shows the pg_mig call (or the lock_timeout) that migrate runs.
"""

import re
import sys

from django.db import migrations, transaction
from django.db.backends.ddl_references import Columns, Statement, Table
from django.db.backends.postgresql import schema
from django.db.models.fields import AutoFieldMixin

from ... import jobs, lint, sql
from ...errors import Refused
from ... import operations as pg_ops



def _unquote(name):
    name = str(name)
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


_TABLE_IN_TEXT = re.compile(r'^\s*ALTER\s+TABLE\s+(?:ONLY\s+)?"((?:[^"]|"")+)"', re.I)


def _statement_table(statement):
    """_statement_table: the table a DDL statement of Django's changes, or None."""
    if isinstance(statement, Statement):
        table = statement.parts.get("table")
        if isinstance(table, Table):
            return table.table
        if isinstance(table, str) and table:
            return _unquote(table)
        return None
    m = _TABLE_IN_TEXT.match(str(statement))
    return m.group(1).replace('""', '"') if m else None


def _first_line(statement):
    text = " ".join(str(statement).split())
    return text if len(text) <= 100 else text[:97] + "..."


def current_step(schema_editor):
    """
    current_step returns (migration, index, operation) of the operation that
    runs now: what migrate's pre_migrate hook gave the schema editor, else
    Migration.apply()'s or unapply()'s frame on the stack (sqlmigrate), else
    None.
    """
    step = getattr(schema_editor, "_pg_mig_step", None)
    if step is not None:
        return step
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name in ("apply", "unapply"):
            owner = frame.f_locals.get("self")
            operation = frame.f_locals.get("operation")
            if isinstance(owner, migrations.Migration) and operation is not None:
                for index, op in enumerate(owner.operations):
                    if op is operation:
                        return owner, index, operation
        frame = frame.f_back
    return None


class DatabaseSchemaEditor(schema.DatabaseSchemaEditor):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pg_mig_rows = {}
        self._pg_mig_pending = []   # not_null jobs of the alter_field under way

    # -- when -------------------------------------------------------------

    def _pg_mig_on(self):
        """_pg_mig_on: False when the migration or the operation opted out."""
        step = current_step(self)
        if step is None:
            return True
        migration, _index, operation = step
        return (getattr(migration, "pg_mig", True) is not False
                and getattr(operation, "pg_mig", True) is not False)

    def _pg_mig_size(self, table):
        """_pg_mig_size: the planner's estimate of TABLE's rows when it is big, else None."""
        if table is None:
            return None
        if table not in self._pg_mig_rows:
            self._pg_mig_rows[table] = lint.table_rows(self.connection, table)
        rows = self._pg_mig_rows[table]
        return rows if rows is not None and rows >= lint.big_table_rows() else None

    def _pg_mig_jobs_possible(self):
        """_pg_mig_jobs_possible: outside a transaction (an atomic migration's is one)."""
        return not self.connection.in_atomic_block

    def _pg_mig_key(self, what):
        """_pg_mig_key: the job key of WHAT (e.g. 'index:NAME') of the operation that runs now."""
        step = current_step(self)
        if step is None or not sql.has_job_keys(self.connection):
            return None
        migration, index, _operation = step
        return "%s:%s" % (pg_ops.job_key(self.connection.alias, migration.app_label,
                                         migration.name, index), what)

    def _pg_mig_warn(self, table, rows, what):
        text = ("%s on %s (about %s rows) runs as plain DDL under lock_timeout with retries, "
                "not as a pg_mig job: its migration is atomic. Set atomic = False on the "
                "migration to run it as a pg_mig job." % (what, table, jobs.format_count(rows)))
        if self.collect_sql:   # sqlmigrate
            self.collected_sql.append("-- pg_mig: Warning: " + text)
            return
        sys.stderr.write("\nWarning: " + text + "\n")
        sys.stderr.flush()

    # -- the statements ---------------------------------------------------

    def execute(self, sql_, params=()):
        table = _statement_table(sql_)
        rows = self._pg_mig_size(table) if self._pg_mig_on() else None
        if rows is not None:
            job = self._pg_mig_job(sql_)
            if job is not None:
                if self._pg_mig_jobs_possible():
                    return job(table, rows)
                self._pg_mig_warn(table, rows, job.what)
        return self._pg_mig_statement(sql_, params, table, rows)

    def _pg_mig_job(self, statement):
        """_pg_mig_job: the job that does STATEMENT on a big table (a callable), or None."""
        if not isinstance(statement, Statement):
            return None
        if statement.template == self.sql_create_index:
            job = self._pg_mig_index_job(statement)
        elif statement.template == self.sql_create_fk:
            job = self._pg_mig_fk_job(statement)
        elif statement.template == self.sql_create_check:
            job = self._pg_mig_check_job(statement)
        else:
            job = None
        return job

    def _pg_mig_statement(self, statement, params, table, rows):
        """
        _pg_mig_statement runs Django's STATEMENT: on a big table (ROWS not
        None) under pg_mig's lock_timeout for its steps, in a transaction (a
        savepoint in an atomic migration) of its own, retried on a lock
        timeout, the session's lock_timeout restored after it.  In an
        operation of a non-atomic migration (self._pg_mig_track, see
        apps._run_once) the statement's number is written to
        django_pg_mig_done in its transaction, and a statement that a run
        before did already is not run again.
        """
        track = None if self.collect_sql else getattr(self, "_pg_mig_track", None)
        if track is not None:
            track["n"] += 1
            if track["n"] <= track["done"]:
                jobs.print_note("%s: done already by an earlier migrate, not run again"
                                % _first_line(statement), new_line=pg_ops._new_line(self))
                return None
        text = str(statement)
        concurrently = "CONCURRENTLY" in text.upper()   # waits that block nobody
        if rows is None or concurrently:
            if track is None or concurrently:
                result = super().execute(statement, params)
                if track is not None:
                    sql.record_statement(self.connection, track["place"], track["n"])
                return result
            with transaction.atomic(using=self.connection.alias):
                super().execute(statement, params)
                sql.record_statement(self.connection, track["place"], track["n"])
            return None
        lock_timeout, max_retries = sql.step_settings(self.connection, None, None)
        if self.collect_sql:
            self.collected_sql.append(
                "-- pg_mig: %s has about %s rows: the next statement runs under lock_timeout "
                "%s, retried up to %s times" % (table, jobs.format_count(rows), lock_timeout,
                                                max_retries))
            return super().execute(statement, params)
        parent = super()

        def attempt():
            with transaction.atomic(using=self.connection.alias):
                with self.connection.cursor() as cursor:
                    cursor.execute("SELECT pg_catalog.current_setting('lock_timeout'),"
                                   " pg_catalog.set_config('lock_timeout', %s, true)",
                                   [lock_timeout])
                    before = cursor.fetchone()[0]
                parent.execute(statement, params)
                with self.connection.cursor() as cursor:
                    cursor.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)",
                                   [before])
                if track is not None:
                    sql.record_statement(self.connection, track["place"], track["n"])
        doing = "DDL on %s" % table
        pg_ops.retry_on_lock(
            self.connection, attempt, doing, lock_timeout, max_retries,
            lambda attempts, message: (
                "%s did not get its lock within lock_timeout %s in %d attempt%s (%s): %s\n"
                "Run migrate again when the table is less busy (or with a longer "
                "pg_mig.default_lock_timeout)." % (doing, lock_timeout, attempts,
                                                   "" if attempts == 1 else "s", message, text)))

    def _pg_mig_show(self, kind, table, rows, call):
        """_pg_mig_show: what sqlmigrate prints for a job (collect_sql)."""
        self.collected_sql.append(
            "-- pg_mig: %s has about %s rows: a pg_mig job of kind %s instead of Django's "
            "statement" % (table, jobs.format_count(rows), kind))
        self.collected_sql.append(call + ";")

    def _pg_mig_call_text(self, function, args):
        """_pg_mig_call_text: the call of pg_mig's FUNCTION with ARGS, values quoted by the server."""
        names = [n for n, v in args if v is not None]
        values = [v for n, v in args if v is not None]
        literals = sql.quote_literals(self.connection, [
            ("{%s}" % ",".join('"%s"' % x.replace('"', '\\"') for x in v))
            if isinstance(v, (list, tuple)) else v for v in values])
        return "SELECT %s.%s(%s)" % (sql.extension_schema(self.connection), function, ", ".join(
            "%s => %s" % (n, lit) for n, lit in zip(names, literals)))

    # -- index ------------------------------------------------------------

    def _pg_mig_index_job(self, statement):
        parts = statement.parts
        columns = parts.get("columns")
        if not isinstance(columns, Columns) or (parts.get("extra") or "").strip():
            return None     # expressions, a tablespace: Django's statement
        name = _unquote(parts["name"])
        using = (parts.get("using") or "").strip()
        method = using[len("USING"):].strip() if using.upper().startswith("USING") else None
        condition = str(parts.get("condition") or "").strip()
        if condition.upper().startswith("WHERE"):
            condition = condition[len("WHERE"):].strip()
        include = parts.get("include")
        include = list(include.parts["columns"].columns) if isinstance(include, Statement) else None
        columns_text = str(columns)

        def run(table, rows):
            args = [("relation", self.quote_name(table)), ("columns", columns_text),
                    ("index_name", name), ("method", method or None),
                    ("where_clause", condition or None), ("include", include or None)]
            if self.collect_sql:
                return self._pg_mig_show("index", table, rows,
                                         self._pg_mig_call_text("mig_create_index", args))
            connection = self.connection
            pg_ops.run_job(
                self, self._pg_mig_key("index:" + name),
                "Creating index %s on %s" % (name, table),
                lambda key: sql.create_index(connection, self.quote_name(table), columns_text,
                                             name, False, method or None, condition or None,
                                             include, {}, "the index %s" % name, job_key=key))
        run.what = "CREATE INDEX %s" % name
        return run

    # -- foreign key ------------------------------------------------------

    def _pg_mig_fk_job(self, statement):
        parts = statement.parts
        name = _unquote(parts["name"])
        columns = list(parts["column"].columns)
        ref_table = parts["to_table"].table
        ref_columns = list(parts["to_column"].columns)

        def run(table, rows):
            args = [("relation", self.quote_name(table)), ("columns", columns),
                    ("ref_relation", self.quote_name(ref_table)), ("ref_columns", ref_columns),
                    ("constraint_name", name), ("orphans", "fail")]
            if self.collect_sql:
                self._pg_mig_show("foreign_key", table, rows,
                                  self._pg_mig_call_text("mig_add_foreign_key", args))
                self.collected_sql.append(
                    "-- then, under lock_timeout: ALTER TABLE %s ALTER CONSTRAINT %s%s;"
                    % (self.quote_name(table), self.quote_name(name),
                       self.connection.ops.deferrable_sql()))
                return
            connection = self.connection
            quoted = self.quote_name(table)
            doing = "Adding foreign key %s.%s -> %s" % (table, ", ".join(columns), ref_table)

            def there_already():
                state = sql.constraint(connection, quoted, name)
                if state is not None and state[0]:
                    return "the constraint %s is there and valid already, no job started" % name
                return None
            pg_ops.run_job(
                self, self._pg_mig_key("foreign_key:" + name), doing,
                lambda key: sql.add_foreign_key(connection, quoted, columns,
                                                self.quote_name(ref_table), ref_columns, name,
                                                "fail", {}, "the foreign key %s" % name,
                                                job_key=key),
                hint=lambda job_id: (
                    "Fix the cause (e.g. delete the orphan rows, or give them a value that is "
                    "there) and run migrate again: it resumes job %s." % job_id),
                skip=there_already)
            pg_ops.make_deferrable(connection, quoted, name, doing, {})
        run.what = "ADD CONSTRAINT %s FOREIGN KEY" % name
        return run

    # -- check constraint -------------------------------------------------

    def _pg_mig_check_job(self, statement):
        name = _unquote(statement.parts["name"])

        def run(table, rows):
            quoted = self.quote_name(table)
            add = str(statement) + " NOT VALID"
            if self.collect_sql:
                self._pg_mig_statement(add, None, table, rows)
                return self._pg_mig_show("validate", table, rows, self._pg_mig_call_text(
                    "mig_validate_constraint", [("relation", quoted), ("constraint_name", name)]))
            connection = self.connection
            if sql.constraint_validated(connection, quoted, name) is None:
                self._pg_mig_statement(add, None, table, rows)
            pg_ops.run_job(
                self, self._pg_mig_key("validate:" + name),
                "Validating constraint %s of %s" % (name, table),
                lambda key: sql.validate_constraint(connection, quoted, name, {},
                                                    "the constraint %s" % name, job_key=key),
                hint=lambda job_id: (
                    "Fix the rows that violate it and run migrate again: it resumes job %s."
                    % job_id),
                skip=lambda: ("the constraint %s is there and valid already, no job started"
                              % name) if sql.constraint_validated(connection, quoted, name) else None)
        run.what = "ADD CONSTRAINT %s CHECK" % name
        return run

    # -- not null ---------------------------------------------------------

    def _alter_column_null_sql(self, model, old_field, new_field):
        if not new_field.null and self._pg_mig_on():
            table = model._meta.db_table
            rows = self._pg_mig_size(table)
            if rows is not None:
                if self._pg_mig_jobs_possible():
                    self._pg_mig_pending.append((table, rows, new_field.column))
                    return None
                self._pg_mig_warn(table, rows, "SET NOT NULL of %s" % new_field.column)
        return super()._alter_column_null_sql(model, old_field, new_field)

    def alter_field(self, model, old_field, new_field, strict=False):
        if self._pg_mig_change_type(model, old_field, new_field):
            return
        self._pg_mig_pending = []
        super().alter_field(model, old_field, new_field, strict)
        pending, self._pg_mig_pending = self._pg_mig_pending, []
        for table, rows, column in pending:
            self._pg_mig_not_null(table, rows, column)

    def _pg_mig_not_null(self, table, rows, column):
        quoted = self.quote_name(table)
        if self.collect_sql:
            return self._pg_mig_show("not_null", table, rows, self._pg_mig_call_text(
                "mig_set_not_null", [("relation", quoted), ("column_name", column)]))
        connection = self.connection
        pg_ops.run_job(
            self, self._pg_mig_key("not_null:" + column),
            "Setting NOT NULL on %s.%s" % (table, column),
            lambda key: sql.set_not_null(connection, quoted, column, {},
                                         "SET NOT NULL of %s" % column, job_key=key),
            hint=lambda job_id: (
                "Fix the cause (e.g. give the NULL rows a value in an earlier migration) and "
                "run migrate again: it resumes job %s." % job_id))

    # -- type change ------------------------------------------------------

    def _pg_mig_change_type(self, model, old_field, new_field):
        """
        _pg_mig_change_type runs an AlterField that changes only the type of
        a column of a big table (AutoField -> BigAutoField, the change of
        DEFAULT_AUTO_FIELD, is one) as a change_type job, the columns that
        reference a primary key included (convert_referencing), and says
        whether it did.  A change PostgreSQL makes without a rewrite
        (varchar to a longer one or text), one with other changes (into or
        out of an auto field: the identity or the serial's sequence added
        or dropped), or a pg_mig without mig_change_type: Django's
        statements.
        """
        if not self._pg_mig_on() or old_field.column != new_field.column:
            return False
        old_type = pg_ops.column_type(self.connection, old_field)
        new_type = pg_ops.column_type(self.connection, new_field)
        if old_type == new_type or lint._catalog_only_type_change(old_type, new_type):
            return False
        for attr in ("null", "unique", "db_index", "primary_key"):
            if getattr(old_field, attr) != getattr(new_field, attr):
                return False
        if (old_field.remote_field is None) != (new_field.remote_field is None):
            return False
        # into or out of an auto field Django also adds or drops the identity
        # (or the serial's sequence): more than a type change
        if isinstance(old_field, AutoFieldMixin) != isinstance(new_field, AutoFieldMixin):
            return False
        table = model._meta.db_table
        rows = self._pg_mig_size(table)
        if rows is None:
            return False
        if not self._pg_mig_jobs_possible():
            self._pg_mig_warn(table, rows, "the type change of %s" % new_field.column)
            return False
        if not sql.function_exists(self.connection, "mig_change_type"):
            return False
        # the columns of other tables that reference this one change with it
        # (as Django's AlterField changes them)
        convert = any(not rel.many_to_many and getattr(rel, "field_name", None) == old_field.name
                      for rel in model._meta.related_objects)
        if self.collect_sql:
            self._pg_mig_show("change_type", table, rows, self._pg_mig_call_text(
                "mig_change_type", [("relation", self.quote_name(table)),
                                    ("column_name", new_field.column), ("new_type", new_type),
                                    ("cleanup", True),
                                    ("convert_referencing", True if convert else None)]))
            if convert:
                self._pg_mig_rename_referencing_fks(model, old_field)
            return True
        try:
            # cleanup: the old column dropped at the end, so the table ends as
            # Django's ALTER COLUMN TYPE leaves it
            pg_ops.run_change_type(self, table, new_field.column, new_type, None, convert, {},
                                   self._pg_mig_key("change_type:" + new_field.column),
                                   cleanup=True)
        except Refused as e:
            if getattr(e, "sqlstate", None) != "0A000":   # feature_not_supported
                raise
            # a case this pg_mig cannot change online (a partitioned table,
            # a dependent view, a pg_mig from before identity columns, ...):
            # Django's DDL
            sys.stderr.write(
                "\nWarning: the type change of %s.%s (about %s rows) runs as Django's DDL under "
                "lock_timeout with retries, not as a pg_mig job: pg_mig refused it: %s\n"
                % (table, new_field.column, jobs.format_count(rows), str(e).splitlines()[0]))
            sys.stderr.flush()
            return False
        if convert:
            self._pg_mig_rename_referencing_fks(model, old_field)
        return True

    def _pg_mig_rename_referencing_fks(self, model, old_field):
        """
        _pg_mig_rename_referencing_fks gives the foreign keys that reference
        OLD_FIELD, which the change_type job carried over under their names,
        the names Django's AlterField gives them when it drops and adds them
        again around a key's type change (suffix "_fk"), so the schema is
        plain Django's: a RENAME CONSTRAINT each (a catalog change, under
        lock_timeout with retries on a big table, counted as the operation's
        statements like Django's own), none when the name is that already.
        """
        for rel in model._meta.related_objects:
            if (rel.many_to_many or getattr(rel, "field_name", None) != old_field.name
                    or not rel.field.db_constraint):
                continue
            new_name = str(self._fk_constraint_name(rel.related_model, rel.field, "_fk"))
            for name in self._constraint_names(rel.related_model, [rel.field.column],
                                               foreign_key=True):
                if self.quote_name(name) != new_name:
                    self.execute("ALTER TABLE %s RENAME CONSTRAINT %s TO %s" % (
                        self.quote_name(rel.related_model._meta.db_table), self.quote_name(name),
                        new_name))

    # -- new fields: their index and foreign key now, as jobs --------------

    def add_field(self, model, field):
        table = model._meta.db_table
        rows = self._pg_mig_size(table) if self._pg_mig_on() else None
        if rows is None or not self._pg_mig_jobs_possible():
            return super().add_field(model, field)
        # the foreign key as a statement of its own (not inline in ADD
        # COLUMN), for the job
        self.sql_create_column_inline_fk = None
        before = len(self.deferred_sql)
        try:
            super().add_field(model, field)
        finally:
            del self.sql_create_column_inline_fk
        added = self.deferred_sql[before:]
        del self.deferred_sql[before:]
        for statement in added:
            if self._pg_mig_job(statement) is not None:
                self.execute(statement)
            else:
                self.deferred_sql.append(statement)


"""
django_pg_mig.operations -- migration operations that run each step of the
safe recipe as a pg_mig job.

    Backfill       mig_start_backfill   (state: none)
    DeleteRows     mig_start_delete     (state: none)
    SetNotNull     mig_set_not_null     (state: the field becomes null=False)
    ChangeType     mig_change_type      (state: as AlterField)
    AddIndex       mig_create_index     (state: the index is added)
    AddForeignKey  mig_add_foreign_key  (state: the field gets db_constraint=True)

Every operation starts its job through the migration's connection, then
(wait=True, the default) follows it to its end outside any transaction and
raises JobFailed unless it succeeded.  They belong in migrations with
``atomic = False``: a job started inside the migration's transaction is
invisible to pg_mig's worker until that transaction commits, so waiting for
it there would never end (the same reason Django's AddIndexConcurrently
refuses an atomic migration).

The state side reuses Django's own AlterField and AddIndex operations, so
``makemigrations`` sees exactly what it would after those.
"""

import random
import sys
import time
import weakref

from django.db import OperationalError, migrations, router, transaction
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.operations import base as _base
from django.db.migrations.operations.base import Operation

from . import expressions, jobs, sql
from .errors import FINAL_STATES, Interrupted, JobFailed, LockNotGranted, Refused

# Django 5.1+ marks each operation in makemigrations' output (+, -, ~, s);
# older versions have no categories.
_category = getattr(_base, "OperationCategory", None)


def _cat(name):
    return getattr(_category, name) if _category is not None else None


# The schema editors (one per migration) under whose "Applying ..." line
# something was printed already: only the first line ends migrate's line.
_printed_for = weakref.WeakSet()


def _new_line(schema_editor):
    """_new_line says whether this is the first line printed in this migration."""
    if schema_editor in _printed_for:
        return False
    _printed_for.add(schema_editor)
    return True


def job_key(alias, app_label, migration_name, index):
    """
    job_key is the key of the pg_mig job of one operation:
    'django:ALIAS:APP_LABEL:MIGRATION_NAME:INDEX' (INDEX: the operation's
    place in the migration's operations, 0 for the first).  Stable across
    runs of migrate, unique per database alias and step.
    """
    return "django:%s:%s:%s:%d" % (alias, app_label, migration_name, index)


def run_job(schema_editor, key, doing, start, hint=None, skip=None, wait=True, timeout=None):
    """
    run_job does one step's job: START(KEY) starts it and returns its id
    (with a key that a job holds already, pg_mig returns that job, resumed
    if it failed or was paused).  A succeeded job with the key means the
    step is done; a cancelled one stops the migration with a hint.  SKIP
    (without a job with the key): a callable that returns a note when the
    step's effect is there already.  Then the job is followed (WAIT) for at
    most TIMEOUT seconds.  Ctrl-C raises Interrupted.  KEY may be None (no
    job keys in this pg_mig, or no migration to name the step).
    """
    connection = schema_editor.connection
    job_id = None
    try:
        existing = sql.job_with_key(connection, key) if key is not None else None
        if existing is not None:
            job_id = existing["job_id"]
            if existing["state"] == "succeeded":
                jobs.print_note("%s: done already by pg_mig job %s" % (doing, job_id),
                                new_line=_new_line(schema_editor))
                return job_id
            if existing["state"] == "cancelled":
                raise JobFailed(job_id, "cancelled", None, doing, (
                    "To do this step anew, forget the job with \"manage.py mig_forget %s\" "
                    "and run migrate again." % job_id))
        elif skip is not None:
            note = skip()
            if note:
                jobs.print_note("%s: %s" % (doing, note), new_line=_new_line(schema_editor))
                return None
        job_id = start(key)
        if existing is not None:
            jobs.print_note("%s: going on with pg_mig job %s (was %s)"
                            % (doing, job_id, existing["state"]),
                            new_line=_new_line(schema_editor))
        follow_job(schema_editor, job_id, doing, hint, wait=wait, timeout=timeout)
    except KeyboardInterrupt:
        raise Interrupted(jobs.interrupted_message(job_id, doing)) from None
    return job_id


def follow_job(schema_editor, job_id, doing, hint=None, wait=True, timeout=None):
    """follow_job waits for job JOB_ID (unless not WAIT), raising JobFailed with HINT."""
    if callable(hint):
        hint = hint(job_id)
    if hint is None:
        hint = ("Fix the cause and run migrate again: it resumes job %s. Or give up on it "
                "with \"manage.py mig_cancel %s\"." % (job_id, job_id))
    if not wait:
        jobs.print_started(job_id, doing, new_line=_new_line(schema_editor))
        return
    jobs.wait_for_job(schema_editor.connection, job_id, doing,
                      timeout=timeout, hint=hint,
                      new_line=_new_line(schema_editor),
                      timeout_hint=("The job goes on in the server: run migrate again to "
                                    "follow it (it goes on with job %s)." % job_id))


# the backoff between attempts of a statement the package runs itself under
# lock_timeout, as pg_mig's steps
RETRY_BASE_SECONDS = 0.2
RETRY_MAX_SECONDS = 30.0


def retry_on_lock(connection, attempt, doing, lock_timeout, max_retries, gave_up):
    """
    retry_on_lock runs ATTEMPT() (which runs its statement under
    LOCK_TIMEOUT) again after a lock timeout or a deadlock, up to MAX_RETRIES
    times with jittered exponential backoff, as pg_mig's own steps are
    retried.  When no attempt gets the lock it raises LockNotGranted with
    GAVE_UP(attempts, message) as its text.
    """
    tries = 0
    while True:
        try:
            return attempt()
        except OperationalError as e:
            if sql.sqlstate(e) not in ("55P03", "40P01"):   # lock_not_available, deadlock
                raise
            message = sql.primary_message(e)
            if tries >= max_retries:
                raise LockNotGranted(gave_up(tries + 1, message))
            pause = min(RETRY_BASE_SECONDS * 2 ** tries, RETRY_MAX_SECONDS)
            pause *= 0.5 + random.random()
            tries += 1
            jobs.print_note("%s: %s; attempt %d of %d in %.1f s"
                            % (doing, message, tries, max_retries, pause))
            time.sleep(pause)


def make_deferrable(connection, table, name, doing, knobs):
    """
    make_deferrable alters the foreign key NAME of TABLE (made by a job) to
    what Django's backend makes (connection.ops.deferrable_sql()), under the
    job's lock_timeout and retried (retry_on_lock), unless it is so already.
    No other constraint of the table is touched.
    """
    attributes = connection.ops.deferrable_sql().strip()
    if not attributes:
        return
    deferred = "INITIALLY DEFERRED" in attributes.upper()
    lock_timeout, max_retries = sql.step_settings(
        connection, knobs.get("lock_timeout"), knobs.get("max_retries"))
    state = sql.constraint(connection, table, name)
    if state is None or (state[1] and state[2] == deferred):
        return
    retry_on_lock(
        connection,
        lambda: sql.alter_constraint(connection, table, name, attributes, lock_timeout),
        "%s: ALTER CONSTRAINT %s %s" % (doing, name, attributes), lock_timeout, max_retries,
        lambda attempts, message: (
            "%s: the constraint %s is valid but still NOT DEFERRABLE: ALTER "
            "CONSTRAINT ... %s did not get its lock on %s within lock_timeout "
            "%s in %d attempt%s (%s)\nRun migrate again when the table is less "
            "busy (or with a longer lock_timeout=... on the operation): the "
            "constraint is kept, and only the ALTER CONSTRAINT is tried again."
            % (doing, name, attributes, table, lock_timeout, attempts,
               "" if attempts == 1 else "s", message)))
    jobs.print_note("%s: constraint %s is %s, as Django makes its foreign keys"
                    % (doing, name, attributes))


class PgMigOperation(Operation):
    """
    The part every operation shares: refusing an atomic migration, finding
    the model and its table, the job key, starting a job or going on with
    the one the key names, following it, and releasing the key on the way
    back.
    """

    reduces_to_sql = False   # sqlmigrate lists it as an operation, runs nothing
    atomic = False
    verb = "Running pg_mig job on"
    # Backfill and DeleteRows change data: like RunSQL, they run on
    # unmanaged models too (only a router may say no)
    data_operation = False

    def __init__(self, model_name, wait=True, timeout=None, **knobs):
        self.model_name = model_name
        self.wait = wait
        self.timeout = timeout
        self.knobs = knobs

    @property
    def model_name_lower(self):
        return self.model_name.lower()

    def _refuse_in_transaction(self, schema_editor):
        if schema_editor.connection.in_atomic_block:
            raise jobs.NotSupported(
                "The %s operation cannot run in an atomic migration: the pg_mig "
                "job it starts inside the migration's transaction is invisible "
                "to pg_mig's background worker until that transaction commits, "
                "so the migration would wait for it forever. Set atomic = False "
                "on the migration (class Migration(migrations.Migration): "
                "atomic = False), and keep schema changes that must be atomic "
                "in a migration of their own." % self.__class__.__name__)

    def _model(self, app_label, schema_editor, state):
        """_model returns the model from STATE, or None when it is not migrated here."""
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            raise jobs.NotSupported("%s needs PostgreSQL with the pg_mig extension"
                                    % self.__class__.__name__)
        model = state.apps.get_model(app_label, self.model_name)
        if self.data_operation:
            # managed = False does not matter to data, as for RunSQL
            if model._meta.swapped or not router.allow_migrate_model(connection.alias, model):
                return None
            return model
        if not self.allow_migrate_model(connection.alias, model):
            return None
        return model

    @staticmethod
    def _table(schema_editor, model):
        # text for a regclass parameter, never pasted into SQL
        return schema_editor.connection.ops.quote_name(model._meta.db_table)

    # -- the job key ------------------------------------------------------

    def _place(self, app_label):
        """
        _place returns (app label, migration name, index) of this operation:
        what migrate's pre_migrate hook (apps.py) marked, else found in the
        loaded migration modules (a Migration's operations hold this very
        object), else None.
        """
        place = getattr(self, "_pg_mig_place", None)
        if place is not None and place[0] == app_label:
            return place
        for name, module in list(sys.modules.items()):
            try:
                cls = getattr(module, "Migration", None)
            except Exception:   # a module with lazy attributes that fail
                continue
            if not isinstance(cls, type) or not issubclass(cls, migrations.Migration):
                continue
            for index, operation in enumerate(cls.__dict__.get("operations") or ()):
                if operation is self:
                    return (app_label, name.rsplit(".", 1)[-1], index)
        return None

    def _job_key(self, app_label, connection, function):
        """
        _job_key is this step's job key (see job_key), or None when this
        database's pg_mig has no job keys (before 0.4) or the operation runs
        outside a migration.
        """
        if not (sql.has_argument(connection, function, "job_key") and sql.has_job_keys(connection)):
            return None
        place = self._place(app_label)
        if place is None:
            return None
        return job_key(connection.alias, *place)

    # -- forwards ---------------------------------------------------------

    def _follow(self, schema_editor, job_id, doing, hint=None):
        follow_job(schema_editor, job_id, doing, hint, wait=self.wait, timeout=self.timeout)

    def _run(self, schema_editor, app_label, function, doing, start, hint=None, skip=None):
        """
        _run does this step's job with run_job, under the key of this
        operation (see _job_key).
        """
        key = self._job_key(app_label, schema_editor.connection, function)
        return run_job(schema_editor, key, doing, start, hint=hint, skip=skip,
                       wait=self.wait, timeout=self.timeout)

    # -- backwards --------------------------------------------------------

    def _release(self, schema_editor, app_label, function, doing):
        """
        _release forgets (mig_forget) the job that holds this step's key, so
        that migrating forwards again does the step again.  An unfinished
        job is refused with a hint: it would go on doing the step.
        """
        connection = schema_editor.connection
        key = self._job_key(app_label, connection, function)
        if key is None:
            return
        job = sql.job_with_key(connection, key)
        if job is None:
            return
        if job["state"] not in FINAL_STATES:
            raise Refused(
                "%s: pg_mig job %s of this step is still %s\nWait for it with \"manage.py "
                "mig_wait %s\" or stop it with \"manage.py mig_cancel %s\", then migrate back "
                "again." % (doing, job["job_id"], job["state"], job["job_id"], job["job_id"]),
                returncode=1)
        sql.control(connection, "mig_forget", job["job_id"], what=doing)

    def _backwards(self, schema_editor, doing, run):
        """_backwards runs RUN() with Ctrl-C turned into Interrupted."""
        try:
            run()
        except KeyboardInterrupt:
            raise Interrupted("%s: interrupted; run migrate back again to finish the way back"
                              % doing) from None

    def state_forwards(self, app_label, state):
        pass


class ReverseSqlMixin:
    """
    Reversal of a data operation: reverse_sql (SQL text or a list of
    statements, like RunSQL's; '' or RunSQL.noop for nothing), or, with
    elidable=True, nothing (the data belongs to a column that reversing the
    migration before drops anyway).
    """

    def _reverse_data(self, schema_editor):
        statements = self.reverse_sql
        if statements is None:
            if self.elidable:
                return
            raise IrreversibleError("%s is not reversible" % self.describe())
        if isinstance(statements, str):
            statements = [statements]
        with schema_editor.connection.cursor() as cursor:
            for statement in statements:
                if statement:
                    cursor.execute(statement)


class Backfill(ReverseSqlMixin, PgMigOperation):
    """
    Backfill(model_name, set, where=None, wait=True, timeout=None,
             keep_old_values=False, reverse_sql=None, elidable=False, **knobs)

    Changes the model's rows with pg_mig's chunked backfill: set is a SQL
    SET list ("tracking_id = 'TRK-' || id") or a dict {field or column: SQL
    text or Django expression}; where is SQL text or a Q.  The knobs are
    mig_start_backfill's (batch_size=..., chunk_time='50ms', max_lag='10s',
    max_app_latency='20ms', ...).  Run again after a failure, it goes on with the same unfinished
    job from its checkpoint.
    """

    verb = "Backfilling"
    data_operation = True
    category = _cat("SQL")

    def __init__(self, model_name, set, where=None, wait=True, timeout=None,
                 keep_old_values=False, reverse_sql=None, elidable=False, **knobs):
        super().__init__(model_name, wait=wait, timeout=timeout, **knobs)
        self.set = set
        self.where = where
        self.keep_old_values = keep_old_values
        self.reverse_sql = reverse_sql
        self.elidable = elidable

    @property
    def reversible(self):
        return self.keep_old_values or self.reverse_sql is not None or self.elidable

    def describe(self):
        what = ", ".join(self.set) if isinstance(self.set, dict) else self.set
        return "Backfill %s with pg_mig: SET %s%s" % (
            self.model_name, what,
            " WHERE %s" % self.where if isinstance(self.where, str) else
            " WHERE %r" % (self.where,) if self.where is not None else "")

    @property
    def migration_name_fragment(self):
        if isinstance(self.set, dict):
            return "backfill_%s_%s" % (self.model_name_lower,
                                       "_".join(k.lower() for k in self.set))
        return "backfill_%s" % self.model_name_lower

    def _clauses(self, connection, model):
        return (expressions.set_sql(connection, model, self.set),
                expressions.where_sql(connection, model, self.where))

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, to_state)
        if model is None:
            return
        connection = schema_editor.connection
        table = self._table(schema_editor, model)
        set_clause, where_clause = self._clauses(connection, model)
        doing = "%s %s" % (self.verb, model._meta.db_table)
        hint = ("Fix the cause and run migrate again: it resumes job %s from its last "
                "committed chunk. Or give up on it with \"manage.py mig_cancel %s\".")
        if self._job_key(app_label, connection, "mig_start_backfill") is None:
            self._forwards_without_key(schema_editor, table, set_clause, where_clause, doing, hint)
            return

        def start(key):
            return sql.start_backfill(connection, table, set_clause, where_clause,
                                      self.keep_old_values, self.knobs, "Backfill", job_key=key)
        self._run(schema_editor, app_label, "mig_start_backfill", doing, start,
                  hint=lambda job_id: hint % (job_id, job_id))

    def _forwards_without_key(self, schema_editor, table, set_clause, where_clause, doing, hint):
        """A pg_mig without job keys (before 0.4): go on with an unfinished job of these clauses."""
        connection = schema_editor.connection
        job_id = None
        try:
            job_id = sql.unfinished_backfill(connection, table, set_clause, where_clause)
            if job_id is not None:
                state = sql.job_rows(connection, job_id)[0]["state"]
                if state in ("paused", "failed"):
                    sql.control(connection, "mig_resume", job_id)
                jobs.print_note("%s: going on with pg_mig job %s (was %s)"
                                % (doing, job_id, state), new_line=_new_line(schema_editor))
            else:
                job_id = sql.start_backfill(connection, table, set_clause, where_clause,
                                            self.keep_old_values, self.knobs, "Backfill")
            self._follow(schema_editor, job_id, doing, hint=hint % (job_id, job_id))
        except KeyboardInterrupt:
            raise Interrupted(jobs.interrupted_message(job_id, doing)) from None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, from_state)
        if model is None:
            return
        doing = "Reverting %s of %s" % (self.verb.lower(), model._meta.db_table)
        if not self.keep_old_values:
            def run():
                self._release(schema_editor, app_label, "mig_start_backfill", doing)
                self._reverse_data(schema_editor)
            self._backwards(schema_editor, doing, run)
            return
        connection = schema_editor.connection
        if not sql.function_exists(connection, "mig_revert"):
            raise IrreversibleError(
                "%s cannot be reversed: this database's pg_mig has no mig_revert(); "
                "update the extension to a version with undo" % self.describe())
        table = self._table(schema_editor, model)
        set_clause, where_clause = self._clauses(connection, model)
        revert_id = None
        try:
            # the backfill that holds the step's key; once its revert has
            # succeeded, the key is released and the revert job (key
            # KEY:revert:BACKFILL) says the way back is done
            key = self._job_key(app_label, connection, "mig_start_backfill")
            job_id = revert_key = None
            if key is not None:
                job = sql.job_with_key(connection, key)
                if job is not None:
                    job_id = job["job_id"]
                    revert_key = "%s:revert:%s" % (key, job_id)
                else:
                    done = sql.last_job_with_key_prefix(connection, key + ":revert:")
                    if done is not None and done["state"] == "succeeded":
                        jobs.print_note("%s: done already by pg_mig job %s" % (doing, done["job_id"]),
                                        new_line=_new_line(schema_editor))
                        return
            if job_id is None:
                job_id = sql.last_backfill(connection, table, set_clause, where_clause)
            if job_id is None:
                raise IrreversibleError(
                    "%s cannot be reversed: pg_mig has no succeeded backfill of %s "
                    "with these clauses to revert" % (self.describe(), model._meta.db_table))
            doing = "Reverting backfill %s of %s" % (job_id, model._meta.db_table)
            if not sql.has_argument(connection, "mig_revert", "job_key"):
                revert_key = None
            existing = sql.job_with_key(connection, revert_key) if revert_key else None
            revert_id = sql.revert(connection, job_id, self.knobs, "Backfill (reverse)",
                                   job_key=revert_key)
            if existing is not None:
                jobs.print_note("%s: going on with pg_mig job %s (was %s)"
                                % (doing, revert_id, existing["state"]),
                                new_line=_new_line(schema_editor))
            self._follow(schema_editor, revert_id, doing, hint=(
                "Fix the cause and migrate back again: it resumes job %s. Or give up on it "
                "with \"manage.py mig_cancel %s\"." % (revert_id, revert_id)))
        except KeyboardInterrupt:
            raise Interrupted(jobs.interrupted_message(revert_id, doing, (
                "migrate back again to follow it" if revert_id is None else
                "migrate back again to follow it (or stop it with \"manage.py mig_cancel %s\")"
                % revert_id))) from None


class DeleteRows(ReverseSqlMixin, PgMigOperation):
    """
    DeleteRows(model_name, where, wait=True, timeout=None, reverse_sql=None,
               elidable=False, **knobs)

    Deletes the model's rows matching where (SQL text or a Q) in chunks, with
    mig_start_delete.  Irreversible unless reverse_sql or elidable says so.
    """

    verb = "Deleting from"
    data_operation = True
    category = _cat("SQL")

    def __init__(self, model_name, where, wait=True, timeout=None,
                 reverse_sql=None, elidable=False, **knobs):
        super().__init__(model_name, wait=wait, timeout=timeout, **knobs)
        if where is None or where == "":
            raise ValueError("DeleteRows needs a where clause; to empty a table, "
                             "say so: where='true'")
        self.where = where
        self.reverse_sql = reverse_sql
        self.elidable = elidable

    @property
    def reversible(self):
        return self.reverse_sql is not None or self.elidable

    def describe(self):
        return "Delete rows of %s with pg_mig WHERE %s" % (
            self.model_name, self.where if isinstance(self.where, str) else repr(self.where))

    @property
    def migration_name_fragment(self):
        return "delete_%s_rows" % self.model_name_lower

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, to_state)
        if model is None:
            return
        connection = schema_editor.connection
        table = self._table(schema_editor, model)
        where_clause = expressions.where_sql(connection, model, self.where)
        self._run(schema_editor, app_label, "mig_start_delete",
                  "%s %s" % (self.verb, model._meta.db_table),
                  lambda key: sql.start_delete(connection, table, where_clause, self.knobs,
                                               "DeleteRows", job_key=key))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, from_state)
        doing = "Reverting the delete from %s" % (
            model._meta.db_table if model is not None else self.model_name)

        def run():
            if model is not None:
                self._release(schema_editor, app_label, "mig_start_delete", doing)
            self._reverse_data(schema_editor)
        self._backwards(schema_editor, doing, run)


def _altered_field(state, app_label, model_name, field_name, **changes):
    """_altered_field is a copy of the field in STATE with CHANGES to its arguments."""
    try:
        field = state.models[app_label, model_name.lower()].fields[field_name]
    except KeyError:
        raise ValueError("model %s.%s has no field %r" % (app_label, model_name, field_name))
    name, path, args, kwargs = field.deconstruct()
    kwargs.update(changes)
    return field, field.__class__(*args, **kwargs)


def _short_lock_statement(connection, run):
    """
    _short_lock_statement runs RUN(connection) in a transaction of its own
    with lock_timeout PG_MIG_REVERSE_LOCK_TIMEOUT (default 5s), so that a
    reversal's brief ACCESS EXCLUSIVE lock never queues the application
    behind a long transaction for longer than that.
    """
    from django.conf import settings
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)",
                           [getattr(settings, "PG_MIG_REVERSE_LOCK_TIMEOUT", "5s")])
        run(connection)


class SetNotNull(PgMigOperation):
    """
    SetNotNull(model_name, field_name, wait=True, timeout=None, **knobs)

    Makes a column NOT NULL without a long lock (mig_set_not_null: a NOT VALID
    check, validated without a write lock, then SET NOT NULL using it).  The
    field becomes null=False.  Reversed by DROP NOT NULL.
    """

    verb = "Setting NOT NULL on"
    category = _cat("ALTERATION")

    def __init__(self, model_name, field_name, wait=True, timeout=None, **knobs):
        super().__init__(model_name, wait=wait, timeout=timeout, **knobs)
        self.field_name = field_name

    def state_forwards(self, app_label, state):
        old, new = _altered_field(state, app_label, self.model_name, self.field_name, null=False)
        migrations.AlterField(self.model_name, self.field_name, new).state_forwards(app_label, state)

    def describe(self):
        return "Set NOT NULL on field %s of %s with pg_mig" % (self.field_name, self.model_name)

    @property
    def migration_name_fragment(self):
        return "%s_%s_not_null" % (self.model_name_lower, self.field_name.lower())

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, to_state)
        if model is None:
            return
        connection = schema_editor.connection
        table = self._table(schema_editor, model)
        column = model._meta.get_field(self.field_name).column
        self._run(schema_editor, app_label, "mig_set_not_null",
                  "%s %s.%s" % (self.verb, model._meta.db_table, column),
                  lambda key: sql.set_not_null(connection, table, column, self.knobs,
                                               "SetNotNull", job_key=key),
                  hint=lambda job_id: (
                      "Fix the cause (e.g. a Backfill of the NULL rows in an earlier "
                      "migration) and run migrate again: it resumes job %s." % job_id))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, from_state)
        if model is None:
            return
        table = self._table(schema_editor, model)
        column = model._meta.get_field(self.field_name).column
        doing = "Dropping NOT NULL of %s.%s" % (model._meta.db_table, column)

        def run():
            self._release(schema_editor, app_label, "mig_set_not_null", doing)
            _short_lock_statement(schema_editor.connection,
                                  lambda c: sql.drop_not_null(c, table, column))
        self._backwards(schema_editor, doing, run)


class AddIndex(PgMigOperation):
    """
    AddIndex(model_name, index, wait=True, timeout=None, **knobs)

    Builds a models.Index with CREATE INDEX CONCURRENTLY in pg_mig's worker
    (mig_create_index: waits for replica lag first, retries, leaves no
    invalid index behind).  Fields ('-field' for DESC), opclasses,
    condition, include and the method of contrib.postgres's index classes
    (GinIndex, BrinIndex, ...) are passed on; expression indexes are not
    supported.  Reversed by DROP INDEX CONCURRENTLY.
    """

    verb = "Creating index"
    category = _cat("ADDITION")

    def __init__(self, model_name, index, wait=True, timeout=None, **knobs):
        super().__init__(model_name, wait=wait, timeout=timeout, **knobs)
        if not index.name:
            raise ValueError("Indexes passed to AddIndex operations require a name "
                             "argument. %r doesn't have one." % index)
        if getattr(index, "expressions", None):
            raise jobs.NotSupported("django_pg_mig.AddIndex does not build expression "
                                    "indexes; give fields=[...]")
        self.index = index

    def state_forwards(self, app_label, state):
        migrations.AddIndex(self.model_name, self.index).state_forwards(app_label, state)

    def describe(self):
        return "Create index %s on field(s) %s of model %s with pg_mig" % (
            self.index.name, ", ".join(self.index.fields), self.model_name)

    @property
    def migration_name_fragment(self):
        return "%s_%s" % (self.model_name_lower, self.index.name.lower())

    def _method(self):
        try:
            from django.contrib.postgres.indexes import PostgresIndex
        except ImportError:   # psycopg not importable: no contrib.postgres
            return None
        if isinstance(self.index, PostgresIndex):
            return self.index.suffix
        return None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, to_state)
        if model is None:
            return
        connection = schema_editor.connection
        opclasses = list(getattr(self.index, "opclasses", ()) or ())
        names = [model._meta.get_field(name.lstrip("-")).column for name in self.index.fields]
        quoted = sql.quote_identifiers(connection, names + opclasses[:len(names)])
        columns = []
        for i, name in enumerate(self.index.fields):
            part = quoted[i]
            if i < len(opclasses):
                part += " " + quoted[len(names) + i]
            columns.append(part + (" DESC" if name.startswith("-") else ""))
        include = [model._meta.get_field(f).column for f in (self.index.include or ())]
        condition = expressions.where_sql(connection, model, self.index.condition)
        table = self._table(schema_editor, model)
        self._run(schema_editor, app_label, "mig_create_index",
                  "%s %s on %s" % (self.verb, self.index.name, model._meta.db_table),
                  lambda key: sql.create_index(connection, table, ", ".join(columns),
                                               self.index.name, False, self._method(),
                                               condition, include, self.knobs, "AddIndex",
                                               job_key=key))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, from_state)
        if model is None:
            return
        doing = "Dropping index %s of %s" % (self.index.name, model._meta.db_table)

        def run():
            self._release(schema_editor, app_label, "mig_create_index", doing)
            sql.drop_index_concurrently(schema_editor.connection,
                                        self._table(schema_editor, model), self.index.name)
        self._backwards(schema_editor, doing, run)


class AddForeignKey(PgMigOperation):
    """
    AddForeignKey(model_name, field_name, orphans='fail', wait=True,
                  timeout=None, **knobs)

    Adds the constraint of a ForeignKey that was added with
    db_constraint=False (mig_add_foreign_key: NOT VALID first, orphans
    walked in chunks, then VALIDATE).  orphans: 'fail', 'delete' or
    'set_null'.  The field gets db_constraint=True.  Reversed by dropping the
    constraint.

    pg_mig adds the constraint NOT DEFERRABLE; Django makes its own foreign
    keys with its backend's deferrable_sql() (DEFERRABLE INITIALLY DEFERRED
    on PostgreSQL).  So once the job has succeeded, the operation alters the
    constraint to that: ALTER CONSTRAINT takes an ACCESS EXCLUSIVE lock on
    the table, only to update the catalog, so it runs with the job's
    lock_timeout (pg_mig.default_lock_timeout unless given) and is retried
    up to max_retries times with jittered exponential backoff, as pg_mig's
    own steps are; waiting never holds the application up for longer than
    lock_timeout.  If no attempt gets the lock, the migration fails with
    LockNotGranted and the valid constraint stays; migrate run again finds
    it, starts no job, and tries only the ALTER again.
    """

    verb = "Adding foreign key"
    category = _cat("ALTERATION")

    def __init__(self, model_name, field_name, orphans="fail", wait=True, timeout=None,
                 **knobs):
        super().__init__(model_name, wait=wait, timeout=timeout, **knobs)
        if orphans not in ("fail", "delete", "set_null"):
            raise ValueError("orphans must be 'fail', 'delete' or 'set_null', not %r"
                             % (orphans,))
        self.field_name = field_name
        self.orphans = orphans

    def state_forwards(self, app_label, state):
        old, new = _altered_field(state, app_label, self.model_name, self.field_name,
                                  db_constraint=True)
        if not getattr(old, "remote_field", None) or not hasattr(old, "db_constraint"):
            raise ValueError("AddForeignKey: %s.%s is not a ForeignKey"
                             % (self.model_name, self.field_name))
        migrations.AlterField(self.model_name, self.field_name, new).state_forwards(app_label, state)

    def describe(self):
        return "Add foreign key constraint of field %s of %s with pg_mig (orphans: %s)" % (
            self.field_name, self.model_name, self.orphans)

    @property
    def migration_name_fragment(self):
        return "%s_%s_fk" % (self.model_name_lower, self.field_name.lower())

    def _constraint_name(self, schema_editor, model, field):
        """
        _constraint_name is the name the job gives the constraint: the one
        Django's schema editor gives a foreign key (TABLE_COLUMN_HASH_fk_
        REFTABLE_REFCOLUMN), so the operation knows the one constraint that
        is its own.
        """
        target = field.target_field
        to_table = target.model._meta.db_table.split(".")[-1].strip('"')
        return schema_editor._create_index_name(
            model._meta.db_table, [field.column],
            suffix="_fk_%s_%s" % (to_table, target.column))

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, to_state)
        if model is None:
            return
        connection = schema_editor.connection
        field = model._meta.get_field(self.field_name)
        ref = field.related_model
        table = self._table(schema_editor, model)
        ref_table = connection.ops.quote_name(ref._meta.db_table)
        name = self._constraint_name(schema_editor, model, field)
        doing = "%s %s.%s -> %s" % (self.verb, model._meta.db_table, field.column,
                                    ref._meta.db_table)

        def there_already():
            # an earlier run's job succeeded (and its key was forgotten, or
            # pg_mig has no keys), and the ALTER below did not
            state = sql.constraint(connection, table, name)
            if state is not None and state[0]:
                return "the constraint %s is there and valid already, no job started" % name
            return None

        job_id = self._run(
            schema_editor, app_label, "mig_add_foreign_key", doing,
            lambda key: sql.add_foreign_key(
                connection, table, [field.column], ref_table, [field.target_field.column],
                name, self.orphans, self.knobs, "AddForeignKey", job_key=key),
            hint=lambda job_id: (
                "Fix the cause (e.g. the orphan rows) and run migrate again: it resumes job %s."
                % job_id),
            skip=there_already)
        if not self.wait and job_id is not None:
            jobs.print_note(
                "%s: the constraint %s stays NOT DEFERRABLE (wait=False): once job %s has "
                "succeeded, run migrate again (or ALTER CONSTRAINT it%s) to make it what "
                "Django makes" % (doing, name, job_id, connection.ops.deferrable_sql()))
            return
        try:
            self._make_deferrable(connection, table, name, doing)
        except KeyboardInterrupt:
            raise Interrupted("%s: interrupted; the constraint %s is there, run migrate again "
                              "to finish" % (doing, name)) from None

    def _make_deferrable(self, connection, table, name, doing):
        make_deferrable(connection, table, name, doing, self.knobs)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, to_state)
        if model is None:
            return
        connection = schema_editor.connection
        field = model._meta.get_field(self.field_name)
        table = self._table(schema_editor, model)
        name = self._constraint_name(schema_editor, model, field)
        doing = "Dropping foreign key %s of %s" % (name, model._meta.db_table)

        def run():
            self._release(schema_editor, app_label, "mig_add_foreign_key", doing)
            # the job's own constraint, by its name (the server quotes it)
            _short_lock_statement(connection, lambda c: sql.drop_constraint(c, table, name))
        self._backwards(schema_editor, doing, run)


# the types a column of Django's auto fields has: a serial is its integer type
# with a sequence (Django < 4.1), an identity column the integer type itself
_SERIAL_TYPES = {"smallserial": "smallint", "serial": "integer", "bigserial": "bigint"}


def column_type(connection, field):
    """column_type: the SQL type of FIELD's column (a serial's integer type)."""
    db_type = field.db_parameters(connection=connection)["type"]
    return _SERIAL_TYPES.get(db_type.lower(), db_type)


class ChangeType(PgMigOperation):
    """
    ChangeType(model_name, field_name, field, using=None,
               convert_referencing=None, cleanup=False, wait=True, timeout=None,
               **knobs)

    Changes the type of a field's column online with pg_mig's change_type
    job (mig_change_type: a new column kept equal by a trigger, the rows
    walked, indexes and constraints copied, then swapped under short locks);
    the state changes as with AlterField(model_name, field_name, field).
    using: the SQL expression of the new value (default: the column cast).
    convert_referencing: also change the columns of other tables that
    reference it (default: when the field is the primary key, as Django's
    AlterField does).  The knobs are mig_change_type's (batch_size=...,
    max_lag=..., ...).  A serial's or identity's sequence becomes the new
    type too, as with AlterField.  Reversed by mig_revert of the job, or,
    when the job was cancelled or failed before its swap, by mig_forget of
    it (which drops what it built: the column kept its type).
    """

    verb = "Changing the type of"
    category = _cat("ALTERATION")

    def __init__(self, model_name, field_name, field, using=None, convert_referencing=None,
                 cleanup=False, wait=True, timeout=None, **knobs):
        super().__init__(model_name, wait=wait, timeout=timeout, **knobs)
        self.field_name = field_name
        self.field = field
        self.using = using
        self.convert_referencing = convert_referencing
        self.cleanup = cleanup

    def deconstruct(self):
        kwargs = {"model_name": self.model_name, "field_name": self.field_name,
                  "field": self.field}
        for name in ("using", "convert_referencing"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        if self.cleanup:
            kwargs["cleanup"] = True
        if not self.wait:
            kwargs["wait"] = False
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        kwargs.update(self.knobs)
        return (self.__class__.__name__, [], kwargs)

    def state_forwards(self, app_label, state):
        migrations.AlterField(self.model_name, self.field_name, self.field).state_forwards(
            app_label, state)

    def describe(self):
        return "Change the type of field %s of %s with pg_mig" % (self.field_name, self.model_name)

    @property
    def migration_name_fragment(self):
        return "%s_%s_type" % (self.model_name_lower, self.field_name.lower())

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, to_state)
        if model is None:
            return
        field = model._meta.get_field(self.field_name)
        convert = self.convert_referencing
        if convert is None:
            convert = field.primary_key
        key = self._job_key(app_label, schema_editor.connection, "mig_change_type")
        run_change_type(schema_editor, model._meta.db_table, field.column,
                        column_type(schema_editor.connection, field), self.using, convert,
                        self.knobs, key, wait=self.wait, timeout=self.timeout,
                        cleanup=self.cleanup)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._refuse_in_transaction(schema_editor)
        model = self._model(app_label, schema_editor, from_state)
        if model is None:
            return
        connection = schema_editor.connection
        doing = "Changing back the type of %s.%s" % (
            model._meta.db_table, model._meta.get_field(self.field_name).column)

        def run():
            key = self._job_key(app_label, connection, "mig_change_type")
            job = sql.job_with_key(connection, key) if key is not None else None
            if job is None:
                raise IrreversibleError(
                    "%s cannot be reversed: no pg_mig change_type job holds its key %s"
                    % (self.describe(), key))
            if not sql.swapped(connection, job["job_id"]) and job["state"] != "succeeded":
                # given up before its swap (or to be): the column still has
                # its old type; forgetting the job drops what it built
                if job["state"] not in FINAL_STATES:
                    raise Refused(
                        "%s: pg_mig job %s of this step is still %s and has not swapped the "
                        "columns\nStop it with \"manage.py mig_cancel %s\" (the column keeps its "
                        "type), then migrate back again." % (doing, job["job_id"], job["state"],
                                                             job["job_id"]),
                        returncode=1)
                sql.control(connection, "mig_forget", job["job_id"], what=doing)
                return
            revert_key = "%s:revert:%s" % (key, job["job_id"])
            run_job(schema_editor, revert_key, doing,
                    lambda k: sql.revert(connection, job["job_id"], {}, "ChangeType (reverse)",
                                         job_key=k),
                    wait=True, timeout=self.timeout)
            sql.control(connection, "mig_forget", job["job_id"], what=doing)
        self._backwards(schema_editor, doing, run)


def run_change_type(schema_editor, table, column, new_type, using, convert_referencing, knobs,
                    key, wait=True, timeout=None, cleanup=False):
    """
    run_change_type runs the change_type job of TABLE.COLUMN to NEW_TYPE
    under KEY (see run_job), then widens the column's sequence, if it has
    one, to the new type (what Django's AlterField to BigAutoField does).
    """
    connection = schema_editor.connection
    quoted = connection.ops.quote_name(table)
    doing = "Changing %s.%s to %s" % (table, column, new_type)
    run_job(schema_editor, key, doing,
            lambda k: sql.change_type(connection, quoted, column, new_type, using,
                                      convert_referencing,
                                      dict(knobs, **({"cleanup": True} if cleanup else {})),
                                      "ChangeType", job_key=k),
            wait=wait, timeout=timeout)
    if wait:
        lock_timeout, max_retries = sql.step_settings(connection, knobs.get("lock_timeout"),
                                                      knobs.get("max_retries"))
        retry_on_lock(
            connection,
            lambda: sql.widen_serial_sequence(connection, quoted, column, new_type, lock_timeout),
            "%s: ALTER SEQUENCE" % doing, lock_timeout, max_retries,
            lambda attempts, message: (
                "%s: the column is %s, but its sequence did not get its lock within "
                "lock_timeout %s in %d attempts (%s)\nRun migrate again when the table is "
                "less busy." % (doing, new_type, lock_timeout, attempts, message)))

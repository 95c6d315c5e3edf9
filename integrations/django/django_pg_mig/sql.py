"""
django_pg_mig.sql -- every statement the package sends to PostgreSQL.

Each function takes a Django database connection (``schema_editor.connection``
in a migration, ``connections[alias]`` in a command) and calls pg_mig's SQL
API with the values as query parameters; nothing here pastes a value into SQL
text.  The only names put into SQL text are pg_mig's schema (read from
pg_extension, quoted by the server's quote_ident) and argument names, which
come from the function's own argument list in pg_proc (a knob not in it is
refused) and are quoted by the connection.

pg_mig's functions are called schema-qualified, so that no object earlier in
the session's search_path can capture them.
"""

import datetime

from django.db import DatabaseError

from .errors import NotSupported, Refused


class MissingFunction(NotSupported):
    """pg_mig in this database lacks a function (or an argument) the package needs."""


# The columns of mig_jobs the package reads, in this order.  Columns that a
# given pg_mig version does not have (kind, step and kept_bytes before 0.3)
# come back as NULL, see job_rows().
JOB_COLUMNS = (
    "job_id", "relation", "kind", "step", "state", "rows_done", "rows_total",
    "progress", "rows_per_sec", "eta_seconds", "batch_size", "throttled",
    "last_error", "owner", "kept_bytes", "job_key",
    # 0.4 monitoring: the job's lag limit and its throttled time
    "max_lag_bytes", "throttled_seconds",
)


def _cached(connection, name, compute):
    """
    _cached returns compute() once per database session: the value is kept
    on the Django connection for as long as its driver connection is the same
    one (a reconnect looks again).
    """
    raw = id(connection.connection) if connection.connection is not None else None
    cache = getattr(connection, "_pg_mig_cache", None)
    if cache is None or cache[0] != raw:
        cache = (raw, {})
        connection._pg_mig_cache = cache
    if name not in cache[1]:
        value = compute()
        if value is None:
            return None     # not there (yet): look again next time
        cache[1][name] = value
    return cache[1][name]


def extension_schema(connection):
    """
    extension_schema returns the schema pg_mig is installed in, quoted by the
    server (quote_ident), looked up once per session in pg_extension.
    """
    def lookup():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
                " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                " WHERE e.extname OPERATOR(pg_catalog.=) 'pg_mig'")
            row = cursor.fetchone()
        return row[0] if row else None
    connection.ensure_connection()
    schema = _cached(connection, "schema", lookup)
    if schema is None:
        raise NotSupported(
            "the pg_mig extension is not installed in database %r; run "
            "\"migctl install\" or CREATE EXTENSION pg_mig first"
            % connection.settings_dict.get("NAME"))
    return schema


def function_exists(connection, name):
    """function_exists says whether pg_mig's schema has a function NAME."""
    return _function(connection, name) is not None


def _function(connection, name):
    """
    _function returns (qualified name, {argument: (quoted name, qualified
    type)}) of pg_mig's function NAME (the one with the most arguments), or
    None if it does not exist.  Every name in it is quoted by the server
    (quote_ident) and qualified with its schema, the types too (pg_catalog.int4,
    pg_catalog._name for name[]), so that nothing earlier in search_path can
    capture the call or a cast.
    """
    def lookup():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
                "       OPERATOR(pg_catalog.||) pg_catalog.quote_ident(p.proname),"
                "       a.name, pg_catalog.quote_ident(a.name),"
                "       pg_catalog.quote_ident(tn.nspname) OPERATOR(pg_catalog.||) '.'"
                "       OPERATOR(pg_catalog.||) pg_catalog.quote_ident(t.typname)"
                "  FROM (SELECT p.oid FROM pg_catalog.pg_proc p"
                "          JOIN pg_catalog.pg_extension e"
                "            ON e.extnamespace OPERATOR(pg_catalog.=) p.pronamespace"
                "         WHERE e.extname OPERATOR(pg_catalog.=) 'pg_mig'"
                "           AND p.proname OPERATOR(pg_catalog.=) %s::pg_catalog.name"
                "         ORDER BY p.pronargs DESC LIMIT 1) f"
                "  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) f.oid"
                "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace"
                "  CROSS JOIN LATERAL ROWS FROM ("
                "       pg_catalog.unnest(p.proargnames[1:p.pronargs]),"
                "       pg_catalog.unnest(p.proargtypes::pg_catalog.oid[])) AS a(name, type)"
                "  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.type"
                "  JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.typnamespace",
                [name])
            rows = cursor.fetchall()
        if not rows:
            return None
        return rows[0][0], {r[1]: (r[2], r[3]) for r in rows}
    connection.ensure_connection()
    return _cached(connection, "function " + name, lookup)


def function_arguments(connection, name):
    """function_arguments returns the argument names of pg_mig's function NAME, or None."""
    f = _function(connection, name)
    return None if f is None else list(f[1])


def has_argument(connection, function, argument):
    """has_argument says whether pg_mig's FUNCTION takes ARGUMENT (e.g. job_key)."""
    f = _function(connection, function)
    return f is not None and argument in f[1]


def _missing(name, what):
    return MissingFunction(
        "this database's pg_mig has no %s, which %s needs; update the "
        "extension (ALTER EXTENSION pg_mig UPDATE, or \"migctl install\") to a "
        "version that has it" % (name if "(" in name else name + "()", what))


def _call(connection, function, fixed, knobs, what, job_id=None):
    """
    _call runs SELECT schema.function(arg => %s::schema.type, ...) with the
    fixed arguments (a list of (name, value) pairs, None values left out) and
    the knobs (a dict), and returns the single value it returns.  Names and
    types come from pg_proc, quoted by the server, so every value is cast to
    exactly what the function takes, whatever the driver sends.  A refusal
    of the server raises errors.Refused, its hint in Django's terms (JOB_ID:
    the job the call is about, for the hint).
    """
    f = _function(connection, function)
    if f is None:
        raise _missing(function, what)
    qualified, args = f
    fixed_names = {name for name, _ in fixed}
    fixed = [(name, value) for name, value in fixed if value is not None]
    unknown = sorted(k for k in knobs if k not in args or k in fixed_names)
    if unknown:
        raise TypeError(
            "%s: unknown option%s %s; %s() takes %s"
            % (what, "s" if len(unknown) > 1 else "", ", ".join(unknown),
               function, ", ".join(a for a in args if a not in fixed_names)))
    parts = []
    params = []
    for name, value in fixed + sorted(knobs.items()):
        if name not in args:
            raise _missing(function + "(" + name + " => ...)", what)
        parts.append("%s => %%s::%s" % args[name])
        params.append(_adapt(value))
    statement = "SELECT %s(%s)" % (qualified, ", ".join(parts))
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()[0]
    except DatabaseError as e:
        raise Refused.from_database_error(e, what=what, job_id=job_id) from e


def _adapt(value):
    """_adapt turns a Python timedelta into an interval text; the rest as is."""
    if isinstance(value, datetime.timedelta):
        return "%d microseconds" % (value // datetime.timedelta(microseconds=1))
    return value


def start_backfill(connection, table, set_clause, where_clause, keep_old_values,
                   knobs, what, job_key=None):
    return _call(connection, "mig_start_backfill",
                 [("relation", table), ("set_clause", set_clause),
                  ("where_clause", where_clause),
                  ("keep_old_values", True if keep_old_values else None),
                  ("job_key", job_key)], knobs, what)


def start_delete(connection, table, where_clause, knobs, what, job_key=None):
    return _call(connection, "mig_start_delete",
                 [("relation", table), ("where_clause", where_clause),
                  ("job_key", job_key)], knobs, what)


def set_not_null(connection, table, column, knobs, what, job_key=None):
    return _call(connection, "mig_set_not_null",
                 [("relation", table), ("column_name", column), ("job_key", job_key)],
                 knobs, what)


def create_index(connection, table, columns, name, unique, method,
                 where_clause, include, knobs, what, job_key=None):
    return _call(connection, "mig_create_index",
                 [("relation", table), ("columns", columns),
                  ("index_name", name), ("unique", unique or None),
                  ("method", method), ("where_clause", where_clause),
                  ("include", include or None), ("job_key", job_key)], knobs, what)


def add_foreign_key(connection, table, columns, ref_table, ref_columns,
                    constraint_name, orphans, knobs, what, job_key=None):
    return _call(connection, "mig_add_foreign_key",
                 [("relation", table), ("columns", columns),
                  ("ref_relation", ref_table), ("ref_columns", ref_columns),
                  ("constraint_name", constraint_name),
                  ("orphans", orphans), ("job_key", job_key)], knobs, what)


def change_type(connection, table, column, new_type, using_expr, convert_referencing,
                knobs, what, job_key=None):
    return _call(connection, "mig_change_type",
                 [("relation", table), ("column_name", column), ("new_type", new_type),
                  ("using_expr", using_expr),
                  ("convert_referencing", True if convert_referencing else None),
                  ("job_key", job_key)], knobs, what)


def widen_serial_sequence(connection, table, column, new_type, lock_timeout):
    """
    widen_serial_sequence makes the sequence behind TABLE.COLUMN (a serial's
    or an identity's, pg_get_serial_sequence) of NEW_TYPE (bigint, smallint,
    integer) where it is narrower, as Django's AlterField to BigAutoField
    does, in a transaction of its own under LOCK_TIMEOUT; nothing without a
    sequence.  Names are quoted by the server.
    """
    from django.db import transaction
    if new_type not in ("smallint", "integer", "bigint"):
        return
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)", [lock_timeout])
            cursor.execute(
                "SELECT s.seqrelid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_sequence s"
                " WHERE s.seqrelid OPERATOR(pg_catalog.=) pg_catalog.pg_get_serial_sequence("
                "   %s::pg_catalog.regclass::pg_catalog.text, %s::pg_catalog.text)::pg_catalog.regclass"
                "   AND s.seqtypid OPERATOR(pg_catalog.<>) %s::pg_catalog.regtype",
                [table, column, new_type])
            row = cursor.fetchone()
            if row is not None:
                _server_statement(cursor, "ALTER SEQUENCE %s AS " + new_type,
                                  _regclass(row[0]))


def validate_constraint(connection, table, name, knobs, what, job_key=None):
    return _call(connection, "mig_validate_constraint",
                 [("relation", table), ("constraint_name", name), ("job_key", job_key)],
                 knobs, what)


def revert(connection, job_id, knobs, what, job_key=None):
    return _call(connection, "mig_revert", [("job_id", job_id), ("job_key", job_key)],
                 knobs, what, job_id=job_id)


CONTROL_FUNCTIONS = ("mig_pause", "mig_resume", "mig_cancel", "mig_forget")


def control(connection, function, job_id, what=None):
    """control runs mig_pause, mig_resume, mig_cancel or mig_forget on a job."""
    if function not in CONTROL_FUNCTIONS:
        raise ValueError("unknown job control function %r" % function)
    _call(connection, function, [("job_id", job_id)], {},
          what or "manage.py " + function, job_id=job_id)


def _job_columns(connection):
    """_job_columns: the columns of this pg_mig's mig_jobs view."""
    def lookup():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.attname FROM pg_catalog.pg_attribute a"
                " WHERE a.attrelid OPERATOR(pg_catalog.=)"
                "       (%s OPERATOR(pg_catalog.||) '.mig_jobs')::pg_catalog.regclass"
                "   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped",
                [extension_schema(connection)])
            return frozenset(r[0] for r in cursor.fetchall())
    return _cached(connection, "mig_jobs columns", lookup)


def _select_jobs(connection, where, params):
    """_select_jobs: the rows of mig_jobs matching WHERE, as dicts of JOB_COLUMNS, in job order."""
    have = _job_columns(connection)
    exprs = {
        "relation": "j.relation::pg_catalog.text",
        "eta_seconds": "pg_catalog.date_part('epoch', j.eta)::pg_catalog.int8",
    }
    select = []
    for col in JOB_COLUMNS:
        src = "eta" if col == "eta_seconds" else col
        # the names are this module's constants, every one a plain lower-case identifier
        select.append(exprs.get(col, "j." + col) if src in have else "NULL")
    statement = "SELECT %s FROM %s.mig_jobs j" % (", ".join(select), extension_schema(connection))
    if where:
        statement += " WHERE " + where
    with connection.cursor() as cursor:
        cursor.execute(statement + " ORDER BY j.job_id", params)
        return [dict(zip(JOB_COLUMNS, r)) for r in cursor.fetchall()]


def job_rows(connection, job_id=None):
    """
    job_rows returns the jobs of mig_jobs (one, or all in job order) as
    dicts with the keys of JOB_COLUMNS.
    """
    if job_id is None:
        return _select_jobs(connection, None, [])
    return _select_jobs(connection, "j.job_id OPERATOR(pg_catalog.=) %s::pg_catalog.int8",
                        [job_id])


def has_job_keys(connection):
    """has_job_keys says whether this pg_mig knows job keys (0.4: mig_jobs.job_key)."""
    return "job_key" in _job_columns(connection)


def job_with_key(connection, job_key):
    """job_with_key returns the job that holds JOB_KEY now (a dict of JOB_COLUMNS), or None."""
    rows = _select_jobs(connection, "j.job_key OPERATOR(pg_catalog.=) %s::pg_catalog.text",
                        [job_key])
    return rows[-1] if rows else None


def swapped(connection, job_id):
    """
    swapped says whether change_type job JOB_ID has swapped its columns (its
    step swap is done, mig_job_events says): before, the column still has
    its old type, and forgetting the job drops what it built.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM %s.mig_job_events e"
            " WHERE e.job_id OPERATOR(pg_catalog.=) %%s::pg_catalog.int8"
            " AND e.event OPERATOR(pg_catalog.=) 'step'"
            " AND e.detail OPERATOR(pg_catalog.~) '^swap: (already )?done')"
            % extension_schema(connection), [job_id])
        return cursor.fetchone()[0]


def last_job_with_key_prefix(connection, prefix):
    """last_job_with_key_prefix returns the newest job whose key starts with PREFIX, or None."""
    rows = _select_jobs(
        connection,
        "pg_catalog.left(j.job_key, pg_catalog.length(%s::pg_catalog.text))"
        " OPERATOR(pg_catalog.=) %s::pg_catalog.text", [prefix, prefix])
    return rows[-1] if rows else None


def max_lag_bytes(connection):
    """max_lag_bytes is the largest lag of any standby or slot, as migctl shows it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(pg_catalog.max(lag_bytes), 0)"
                       " FROM %s.mig_replicas()" % extension_schema(connection))
        return int(cursor.fetchone()[0])


def unfinished_backfill(connection, table, set_clause, where_clause):
    """
    unfinished_backfill returns the id of an unfinished (queued, running,
    paused or failed) backfill of TABLE with exactly these clauses, or None:
    a migration run again after a failure goes on with that job (pg_mig
    without job keys, before 0.4).
    """
    rows = _select_jobs(
        connection,
        "j.relation OPERATOR(pg_catalog.=) %s::pg_catalog.regclass"
        " AND j.state OPERATOR(pg_catalog.=) ANY ('{queued,running,paused,failed}'::pg_catalog.text[])"
        " AND j.set_clause OPERATOR(pg_catalog.=) %s::pg_catalog.text"
        " AND j.where_clause IS NOT DISTINCT FROM %s::pg_catalog.text"
        + (" AND j.kind OPERATOR(pg_catalog.=) 'backfill'"
           if "kind" in _job_columns(connection) else ""),
        [table, set_clause, where_clause])
    return rows[-1]["job_id"] if rows else None


def last_backfill(connection, table, set_clause, where_clause):
    """
    last_backfill returns the id of the latest succeeded backfill of TABLE
    with exactly these clauses (the one a reversed Backfill reverts when
    pg_mig has no job keys, or the backfill was started without one), or None.
    """
    rows = _select_jobs(
        connection,
        "j.relation OPERATOR(pg_catalog.=) %s::pg_catalog.regclass"
        " AND j.state OPERATOR(pg_catalog.=) 'succeeded' AND j.kind OPERATOR(pg_catalog.=) 'backfill'"
        " AND j.set_clause OPERATOR(pg_catalog.=) %s::pg_catalog.text"
        " AND j.where_clause IS NOT DISTINCT FROM %s::pg_catalog.text",
        [table, set_clause, where_clause])
    return rows[-1]["job_id"] if rows else None


def quote_literals(connection, values):
    """
    quote_literals returns each value as an SQL literal, quoted by the server
    (quote_nullable of its text form), for clauses compiled by Django whose
    parameters must become part of the clause text pg_mig stores.
    """
    if not values:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s" % ", ".join(
            ["pg_catalog.quote_nullable(%s::pg_catalog.text)"] * len(values)),
            [_adapt(v) for v in values])
        return list(cursor.fetchone())


def quote_identifiers(connection, names):
    """
    quote_identifiers returns each name as a quoted identifier made by the
    server ("name", an embedded " doubled): always quoted, as Django writes
    names, so that clause texts pg_mig keeps read as Django's own.
    """
    if not names:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s" % ", ".join(
            ["'\"' OPERATOR(pg_catalog.||) pg_catalog.replace(%s::pg_catalog.text, '\"', '\"\"')"
             " OPERATOR(pg_catalog.||) '\"'"] * len(names)), list(names))
        return list(cursor.fetchone())


def constraint(connection, table, name):
    """
    constraint returns (validated, deferrable, initially deferred) of the
    foreign key NAME of TABLE (text for regclass), or None if there is none.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.convalidated, c.condeferrable, c.condeferred"
            "  FROM pg_catalog.pg_constraint c"
            " WHERE c.contype OPERATOR(pg_catalog.=) 'f'"
            "   AND c.conrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass"
            "   AND c.conname OPERATOR(pg_catalog.=) %s::pg_catalog.name", [table, name])
        row = cursor.fetchone()
    return tuple(row) if row else None


# The operations of non-atomic migrations that ended (django_pg_mig.apps):
# a table of the project's, next to django_migrations, made on first use.
DONE_TABLE = "django_pg_mig_done"


def _done_table(connection):
    def create():
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS %s (app text NOT NULL, migration text NOT NULL,"
                           " operation integer NOT NULL, statements integer NOT NULL DEFAULT 0,"
                           " done boolean NOT NULL DEFAULT false,"
                           " at timestamptz NOT NULL DEFAULT pg_catalog.now(),"
                           " PRIMARY KEY (app, migration, operation))"
                           % connection.ops.quote_name(DONE_TABLE))
        return True
    _cached(connection, "done table", create)
    return connection.ops.quote_name(DONE_TABLE)


_PLACE = (" WHERE app OPERATOR(pg_catalog.=) %s AND migration OPERATOR(pg_catalog.=) %s"
          " AND operation OPERATOR(pg_catalog.=) %s")


def step_state(connection, place):
    """
    step_state returns (statements run, ended) of the operation PLACE (app,
    migration, index) of a non-atomic migration: (0, False) when it never ran.
    """
    table = _done_table(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statements, done FROM " + table + _PLACE, list(place))
        row = cursor.fetchone()
    return (0, False) if row is None else (row[0], row[1])


def _upsert_step(connection, place, column, value):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO %s AS d (app, migration, operation, %s) VALUES (%%s, %%s, %%s, %%s)"
                       " ON CONFLICT (app, migration, operation) DO UPDATE SET %s = excluded.%s,"
                       " at = pg_catalog.now()" % (_done_table(connection), column, column, column),
                       list(place) + [value])


def record_statement(connection, place, n):
    """record_statement writes that operation PLACE ran its first N statements."""
    _upsert_step(connection, place, "statements", n)


def mark_step_done(connection, place, done):
    """mark_step_done records (DONE) that operation PLACE ended, or forgets it."""
    if done:
        _upsert_step(connection, place, "done", True)
        return
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM " + _done_table(connection) + _PLACE, list(place))


def constraint_validated(connection, table, name):
    """
    constraint_validated returns None when TABLE (text for regclass) has no
    constraint NAME, else whether it is validated.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.convalidated FROM pg_catalog.pg_constraint c"
            " WHERE c.conrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass"
            "   AND c.conname OPERATOR(pg_catalog.=) %s::pg_catalog.name", [table, name])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _server_statement(cursor, template, *args):
    """
    _server_statement runs the statement that the server's format(TEMPLATE,
    ARGS...) builds: every name in it is quoted by the server (%I, or a
    regclass through %s), nothing is pasted by the client.  TEMPLATE is a
    constant of this module.
    """
    cursor.execute("SELECT pg_catalog.format(%%s::pg_catalog.text, %s)"
                   % ", ".join(a[1] for a in args), [template] + [a[0] for a in args])
    cursor.execute(cursor.fetchone()[0])


def _regclass(table):
    return (table, "%s::pg_catalog.regclass")


def _text(value):
    return (value, "%s::pg_catalog.text")


def step_settings(connection, lock_timeout, max_retries):
    """
    step_settings returns (lock_timeout, max_retries) for a statement the
    package runs itself after a job: the values given (lock_timeout an
    interval as text or timedelta), else pg_mig's defaults for its own
    steps (pg_mig.default_lock_timeout, pg_mig.default_max_retries), else
    1s and 10.  lock_timeout comes back in lock_timeout's own syntax
    ('1500ms'), at least 1 ms (0 would mean no timeout).  (GREATEST skips
    a NULL: the value given is looked at alone first, so that none given
    means the default, not 1 ms.)
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(CASE WHEN t.given IS NOT NULL THEN"
            "         GREATEST(1, pg_catalog.ceil(pg_catalog.date_part('epoch', t.given)"
            "                     * 1000)::pg_catalog.int8)::pg_catalog.text || 'ms' END,"
            "         pg_catalog.current_setting('pg_mig.default_lock_timeout', true), '1s'),"
            "       coalesce(%s::pg_catalog.int4,"
            "         pg_catalog.current_setting('pg_mig.default_max_retries', true)::pg_catalog.int4, 10)"
            " FROM (SELECT %s::pg_catalog.interval) t(given)",
            [max_retries, _adapt(lock_timeout)])
        return cursor.fetchone()


# What ALTER CONSTRAINT may be given: the deferrable_sql() of Django's backends.
CONSTRAINT_ATTRIBUTES = ("DEFERRABLE INITIALLY DEFERRED", "DEFERRABLE INITIALLY IMMEDIATE",
                         "DEFERRABLE", "NOT DEFERRABLE")


def alter_constraint(connection, table, name, attributes, lock_timeout):
    """
    alter_constraint runs ALTER TABLE TABLE ALTER CONSTRAINT NAME ATTRIBUTES
    ('DEFERRABLE INITIALLY DEFERRED') in a transaction of its own with
    lock_timeout LOCK_TIMEOUT, the names quoted by the server.  The statement
    takes an ACCESS EXCLUSIVE lock on TABLE for a catalog update only (no
    scan); the timeout keeps the application from queueing behind a wait for
    it for longer than that.  A lock timeout raises Django's OperationalError
    (SQLSTATE 55P03).
    """
    from django.db import transaction
    if attributes not in CONSTRAINT_ATTRIBUTES:
        raise ValueError("unexpected constraint attributes %r" % (attributes,))
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)",
                           [lock_timeout])
            _server_statement(cursor, "ALTER TABLE %s ALTER CONSTRAINT %I " + attributes,
                              _regclass(table), _text(name))


def sqlstate(error):
    """sqlstate is the SQLSTATE of a database error Django raised, or None."""
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def primary_message(error):
    """
    primary_message is the server's primary message of a database error
    Django raised, without the DETAIL and CONTEXT lines the driver's text
    carries (PostgreSQL 19 adds "waiting for AccessExclusiveLock on relation
    ..." to a lock timeout); the error's text for any other error.
    """
    diag = getattr(error.__cause__, "diag", None)
    message = getattr(diag, "message_primary", None)
    return message or str(error).strip()


def drop_constraint(connection, table, name):
    """drop_constraint drops the constraint NAME of TABLE, if it is there."""
    with connection.cursor() as cursor:
        _server_statement(cursor, "ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I",
                          _regclass(table), _text(name))


def drop_not_null(connection, table, column):
    with connection.cursor() as cursor:
        _server_statement(cursor, "ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL",
                          _regclass(table), _text(column))


def drop_index_concurrently(connection, table, name):
    """drop_index_concurrently drops the index NAME in TABLE's schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            "   ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
            " WHERE c.oid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass", [table])
        schema = cursor.fetchone()[0]
        _server_statement(cursor, "DROP INDEX CONCURRENTLY IF EXISTS %I.%I",
                          _text(schema), _text(name))

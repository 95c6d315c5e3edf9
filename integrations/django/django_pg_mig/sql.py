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

from .errors import NotSupported


class MissingFunction(NotSupported):
    """pg_mig in this database lacks a function (or an argument) the package needs."""


# The columns of mig_jobs the package reads, in this order.  Columns that a
# given pg_mig version does not have (kind, step and kept_bytes before 0.3)
# come back as NULL, see job_rows().
JOB_COLUMNS = (
    "job_id", "relation", "kind", "step", "state", "rows_done", "rows_total",
    "progress", "rows_per_sec", "eta_seconds", "batch_size", "throttled",
    "last_error", "owner", "kept_bytes",
    # 0.4 monitoring: the job's lag limit and its throttled time
    "max_lag_bytes", "throttled_seconds",
)


def extension_schema(connection):
    """extension_schema returns the quoted schema pg_mig is installed in."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
            " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_mig'")
        row = cursor.fetchone()
    if row is None:
        raise NotSupported(
            "the pg_mig extension is not installed in database %r; run "
            "\"migctl install\" or CREATE EXTENSION pg_mig first"
            % connection.settings_dict.get("NAME"))
    return row[0]


def function_exists(connection, name):
    """function_exists says whether pg_mig's schema has a function NAME."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p"
            " JOIN pg_catalog.pg_extension e ON e.extnamespace = p.pronamespace"
            " WHERE e.extname = 'pg_mig' AND p.proname = %s)", [name])
        return cursor.fetchone()[0]


def function_arguments(connection, name):
    """
    function_arguments returns {argument name: SQL type} of pg_mig's
    function NAME (the one with the most arguments), or None if it does not
    exist.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.name, pg_catalog.format_type(a.type, NULL)"
            "  FROM (SELECT p.oid FROM pg_catalog.pg_proc p"
            "          JOIN pg_catalog.pg_extension e ON e.extnamespace = p.pronamespace"
            "         WHERE e.extname = 'pg_mig' AND p.proname = %s"
            "         ORDER BY p.pronargs DESC LIMIT 1) f"
            "  JOIN pg_catalog.pg_proc p ON p.oid = f.oid"
            "  CROSS JOIN LATERAL ROWS FROM ("
            "       pg_catalog.unnest(p.proargnames[1:p.pronargs]),"
            "       pg_catalog.unnest(p.proargtypes::pg_catalog.oid[])) AS a(name, type)",
            [name])
        rows = cursor.fetchall()
    if not rows:
        return None
    return dict(rows)


def _missing(name, what):
    return MissingFunction(
        "this database's pg_mig has no %s, which %s needs; update the "
        "extension (ALTER EXTENSION pg_mig UPDATE, or \"migctl install\") to a "
        "version that has it" % (name if "(" in name else name + "()", what))


def _call(connection, function, fixed, knobs, what):
    """
    _call runs SELECT schema.function(arg => %s::type, ...) with the fixed
    arguments (a list of (name, value) pairs, None values left out) and the
    knobs (a dict), and returns the single value it returns.  Argument types
    come from pg_proc, so every value is cast to exactly what the function
    takes, whatever the driver sends.
    """
    args = function_arguments(connection, function)
    if args is None:
        raise _missing(function, what)
    fixed_names = {name for name, _ in fixed}
    fixed = [(name, value) for name, value in fixed if value is not None]
    unknown = sorted(k for k in knobs if k not in args or k in fixed_names)
    if unknown:
        raise TypeError(
            "%s: unknown option%s %s; %s() takes %s"
            % (what, "s" if len(unknown) > 1 else "", ", ".join(unknown),
               function, ", ".join(a for a in args if a not in fixed_names)))
    qn = connection.ops.quote_name
    parts = []
    params = []
    for name, value in fixed + sorted(knobs.items()):
        if name not in args:
            raise _missing(function + "(" + name + " => ...)", what)
        parts.append("%s => %%s::%s" % (qn(name), args[name]))
        params.append(_adapt(value))
    sql = "SELECT %s.%s(%s)" % (extension_schema(connection), qn(function),
                                ", ".join(parts))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _adapt(value):
    """_adapt turns a Python timedelta into an interval text; the rest as is."""
    if isinstance(value, datetime.timedelta):
        return "%d microseconds" % (value // datetime.timedelta(microseconds=1))
    return value


def start_backfill(connection, table, set_clause, where_clause, keep_old_values,
                   knobs, what):
    return _call(connection, "mig_start_backfill",
                 [("relation", table), ("set_clause", set_clause),
                  ("where_clause", where_clause),
                  ("keep_old_values", True if keep_old_values else None)], knobs, what)


def start_delete(connection, table, where_clause, knobs, what):
    return _call(connection, "mig_start_delete",
                 [("relation", table), ("where_clause", where_clause)],
                 knobs, what)


def set_not_null(connection, table, column, knobs, what):
    return _call(connection, "mig_set_not_null",
                 [("relation", table), ("column_name", column)], knobs, what)


def create_index(connection, table, columns, name, unique, method,
                 where_clause, include, knobs, what):
    return _call(connection, "mig_create_index",
                 [("relation", table), ("columns", columns),
                  ("index_name", name), ("unique", unique or None),
                  ("method", method), ("where_clause", where_clause),
                  ("include", include or None)], knobs, what)


def add_foreign_key(connection, table, columns, ref_table, ref_columns,
                    constraint_name, orphans, knobs, what):
    return _call(connection, "mig_add_foreign_key",
                 [("relation", table), ("columns", columns),
                  ("ref_relation", ref_table), ("ref_columns", ref_columns),
                  ("constraint_name", constraint_name),
                  ("orphans", orphans)], knobs, what)


def revert(connection, job_id, knobs, what):
    return _call(connection, "mig_revert", [("job_id", job_id)], knobs, what)


def control(connection, function, job_id):
    """control runs mig_pause, mig_resume or mig_cancel on a job."""
    if function not in ("mig_pause", "mig_resume", "mig_cancel"):
        raise ValueError("unknown job control function %r" % function)
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s.%s(%%s::pg_catalog.int8)"
                       % (extension_schema(connection),
                          connection.ops.quote_name(function)), [job_id])


def job_rows(connection, job_id=None):
    """
    job_rows returns the jobs of mig_jobs (one, or all in job order) as
    dicts with the keys of JOB_COLUMNS.
    """
    schema = extension_schema(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_catalog.pg_attribute a"
            " WHERE a.attrelid = (%s || '.mig_jobs')::pg_catalog.regclass"
            " AND a.attnum > 0 AND NOT a.attisdropped", [schema])
        have = {r[0] for r in cursor.fetchall()}
        exprs = {
            "relation": "j.relation::pg_catalog.text",
            "eta_seconds": "extract(epoch FROM j.eta)::pg_catalog.int8",
        }
        select = []
        for col in JOB_COLUMNS:
            src = "eta" if col == "eta_seconds" else col
            select.append(exprs.get(col, "j." + connection.ops.quote_name(col))
                          if src in have else "NULL")
        sql = "SELECT %s FROM %s.mig_jobs j" % (", ".join(select), schema)
        params = []
        if job_id is not None:
            sql += " WHERE j.job_id = %s::pg_catalog.int8"
            params.append(job_id)
        cursor.execute(sql + " ORDER BY j.job_id", params)
        return [dict(zip(JOB_COLUMNS, r)) for r in cursor.fetchall()]


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
    a migration run again after a failure goes on with that job.
    """
    schema = extension_schema(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_catalog.pg_attribute a"
            " WHERE a.attrelid = (%s || '.mig_jobs')::pg_catalog.regclass"
            " AND a.attname = 'kind' AND NOT a.attisdropped", [schema])
        has_kind = cursor.fetchone() is not None
        cursor.execute(
            "SELECT j.job_id FROM %s.mig_jobs j"
            " WHERE j.relation = %%s::pg_catalog.regclass"
            "   AND j.state IN ('queued', 'running', 'paused', 'failed')"
            "   AND j.set_clause = %%s AND j.where_clause IS NOT DISTINCT FROM %%s"
            "%s ORDER BY j.job_id DESC LIMIT 1"
            % (schema, " AND j.kind = 'backfill'" if has_kind else ""),
            [table, set_clause, where_clause])
        row = cursor.fetchone()
    return row[0] if row else None


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


def foreign_key_names(connection, table, column, ref_table):
    """foreign_key_names lists the foreign keys of TABLE(COLUMN) to REF_TABLE."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conname FROM pg_catalog.pg_constraint c"
            " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid"
            "  AND a.attnum = c.conkey[1]"
            " WHERE c.contype = 'f' AND c.conrelid = %s::pg_catalog.regclass"
            "   AND c.confrelid = %s::pg_catalog.regclass"
            "   AND pg_catalog.cardinality(c.conkey) = 1 AND a.attname = %s"
            " ORDER BY c.conname", [table, ref_table, column])
        return [r[0] for r in cursor.fetchall()]


def foreign_keys(connection, table, column, ref_table):
    """
    foreign_keys lists the foreign keys of TABLE(COLUMN) to REF_TABLE as
    (name, validated, deferrable, initially deferred) tuples.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conname, c.convalidated, c.condeferrable, c.condeferred"
            " FROM pg_catalog.pg_constraint c"
            " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid"
            "  AND a.attnum = c.conkey[1]"
            " WHERE c.contype = 'f' AND c.conrelid = %s::pg_catalog.regclass"
            "   AND c.confrelid = %s::pg_catalog.regclass"
            "   AND pg_catalog.cardinality(c.conkey) = 1 AND a.attname = %s"
            " ORDER BY c.conname", [table, ref_table, column])
        return [tuple(r) for r in cursor.fetchall()]


def step_settings(connection, lock_timeout, max_retries):
    """
    step_settings returns (lock_timeout, max_retries) for a statement the
    package runs itself after a job: the values given (lock_timeout an
    interval as text or timedelta), else pg_mig's defaults for its own
    steps (pg_mig.default_lock_timeout, pg_mig.default_max_retries), else
    1s and 10.  lock_timeout comes back in lock_timeout's own syntax
    ('1500ms'), at least 1 ms (0 would mean no timeout).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(GREATEST(1, pg_catalog.ceil(pg_catalog.date_part("
            "           'epoch', %s::pg_catalog.interval) * 1000)::pg_catalog.int8)::pg_catalog.text || 'ms',"
            "         pg_catalog.current_setting('pg_mig.default_lock_timeout', true), '1s'),"
            "       coalesce(%s::pg_catalog.int4,"
            "         pg_catalog.current_setting('pg_mig.default_max_retries', true)::pg_catalog.int4, 10)",
            [_adapt(lock_timeout), max_retries])
        return cursor.fetchone()


def alter_constraint(connection, table, name, attributes, lock_timeout):
    """
    alter_constraint runs ALTER TABLE TABLE ALTER CONSTRAINT NAME ATTRIBUTES
    ('DEFERRABLE INITIALLY DEFERRED') in a transaction of its own with
    lock_timeout LOCK_TIMEOUT.  The statement takes an ACCESS EXCLUSIVE lock
    on TABLE for a catalog update only (no scan); the timeout keeps the
    application from queueing behind a wait for it for longer than that.
    A lock timeout raises Django's OperationalError (SQLSTATE 55P03).
    """
    from django.db import transaction
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)",
                           [lock_timeout])
            cursor.execute("ALTER TABLE %s ALTER CONSTRAINT %s %s"
                           % (table, connection.ops.quote_name(name), attributes))


def sqlstate(error):
    """sqlstate is the SQLSTATE of a database error Django raised, or None."""
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def drop_constraint(connection, table, name):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s"
                       % (table, connection.ops.quote_name(name)))


def drop_not_null(connection, table, column):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL"
                       % (table, connection.ops.quote_name(column)))


def drop_index_concurrently(connection, table, name):
    """drop_index_concurrently drops the index NAME in TABLE's schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_catalog.quote_ident(n.nspname)"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            "   ON n.oid = c.relnamespace WHERE c.oid = %s::pg_catalog.regclass",
            [table])
        schema = cursor.fetchone()[0]
        cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS %s.%s"
                       % (schema, connection.ops.quote_name(name)))


def last_backfill(connection, table, set_clause, where_clause):
    """
    last_backfill returns the id of the latest succeeded backfill of TABLE
    with exactly these clauses (the one a reversed Backfill reverts), or None.
    """
    schema = extension_schema(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT j.job_id FROM %s.mig_jobs j"
            " WHERE j.relation = %%s::pg_catalog.regclass AND j.state = 'succeeded'"
            "   AND j.kind = 'backfill'"
            "   AND j.set_clause = %%s AND j.where_clause IS NOT DISTINCT FROM %%s"
            " ORDER BY j.job_id DESC LIMIT 1" % schema,
            [table, set_clause, where_clause])
        row = cursor.fetchone()
    return row[0] if row else None

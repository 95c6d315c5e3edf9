"""
django_pg_mig.expressions -- clauses given as Django objects (a Q for a
where clause, F / Value / Concat / any expression for an assigned value,
an Index's condition) compiled to the SQL text that pg_mig stores.

They are compiled by Django's own SQL compiler for the migration's
connection, the way Django compiles an Index's condition: a Query on the
model whose columns carry no table alias (pg_mig runs the clause against
the table itself or, for a partitioned table, each of its partitions).  The
parameters the compiler produces are quoted as literals by the server
(sql.quote_literals) and put in their places, because pg_mig keeps the
clause as text and runs it later, in its worker.
"""

from django.db.models import Q
from django.db.models.sql import Query

from . import sql


def _inline(connection, text, params):
    """_inline puts the quoted PARAMS into TEXT's %s placeholders."""
    # the text is written for cursor.execute(text, params): "%%" is a "%"
    return text % tuple(sql.quote_literals(connection, list(params)))


def where_sql(connection, model, where):
    """where_sql returns a where clause (SQL text or a Q) as SQL text."""
    if where is None or isinstance(where, str):
        return where
    if not isinstance(where, Q):
        raise TypeError("where must be SQL text or a Q object, not %r" % (where,))
    query = Query(model=model, alias_cols=False)
    node = query.build_where(where)
    compiler = query.get_compiler(connection=connection)
    text, params = node.as_sql(compiler, connection)
    return _inline(connection, text, params)


def value_sql(connection, model, value):
    """value_sql returns an assigned value (SQL text or an expression) as SQL text."""
    if isinstance(value, str):
        return value
    if not hasattr(value, "resolve_expression"):
        raise TypeError("a value of set must be SQL text or a Django expression "
                        "(F, Value, Concat, ...), not %r" % (value,))
    query = Query(model=model, alias_cols=False)
    resolved = value.resolve_expression(query, allow_joins=False, for_save=True)
    compiler = query.get_compiler(connection=connection)
    text, params = compiler.compile(resolved)
    return _inline(connection, text, params)


def set_sql(connection, model, set_):
    """
    set_sql returns a SET list: SQL text as it is, or from a dict
    {field name or column: SQL text or expression} the list
    '"column" = value, ...' in the dict's order.
    """
    if isinstance(set_, str):
        return set_
    if not isinstance(set_, dict) or not set_:
        raise TypeError("set must be SQL text (a SET list) or a non-empty dict "
                        "of column -> value, not %r" % (set_,))
    columns = sql.quote_identifiers(connection, [column_of(model, key) for key in set_])
    parts = []
    for column, value in zip(columns, set_.values()):
        parts.append("%s = %s" % (column, value_sql(connection, model, value)))
    return ", ".join(parts)


def column_of(model, name):
    """column_of maps a field name (or a column name) to the column name."""
    for field in model._meta.concrete_fields:
        if name in (field.name, field.attname):
            return field.column
    for field in model._meta.concrete_fields:
        if name == field.column:
            return field.column
    raise ValueError("model %s has no field or column %r"
                     % (model._meta.label, name))

"""
django_pg_mig.backends.postgresql.base -- Django's PostgreSQL backend with
the schema editor of django_pg_mig (everything else is Django's own).
"""

from django.db.backends.postgresql import base

from .schema import DatabaseSchemaEditor


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor

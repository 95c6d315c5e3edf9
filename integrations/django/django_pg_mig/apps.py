"""django_pg_mig.apps -- the Django app, so that its management commands exist."""

from django.apps import AppConfig


class PgMigConfig(AppConfig):
    name = "django_pg_mig"
    verbose_name = "pg_mig"

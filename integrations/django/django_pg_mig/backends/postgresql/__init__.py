"""
django_pg_mig.backends.postgresql -- Django's PostgreSQL backend whose
schema editor runs the unsafe DDL of big tables as pg_mig jobs:

    DATABASES = {"default": {"ENGINE": "django_pg_mig.backends.postgresql", ...}}

See django_pg_mig.backends.postgresql.schema.
"""

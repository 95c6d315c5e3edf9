"""django_pg_mig.backends -- database backends (see backends.postgresql)."""

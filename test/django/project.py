"""The Django project every test module of test/django writes: its files
and the environment manage.py runs in (run.sh runs the modules from this
folder, so they import it as `project`)."""
import os
import textwrap

SRC = os.environ["PGMIG_SOURCE_DIR"]
DRIVER = os.environ.get("PGMIG_DRIVER", "psycopg2")


def write_project(directory, files, who, **env):
    """Writes files (path -> text, dedented) under directory and returns
    manage.py's environment: the project and the package on PYTHONPATH and,
    for psycopg2, psycopg 3 hidden (Django >= 4.2 takes it when it can
    import it); env adds variables."""
    for path, text in files.items():
        full = os.path.join(directory, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(textwrap.dedent(text).lstrip())
    paths = [directory, os.path.join(SRC, "integrations", "django")]
    if DRIVER == "psycopg2":
        hide = os.path.join(directory, "_hide_psycopg")
        os.makedirs(hide)
        with open(os.path.join(hide, "psycopg.py"), "w") as f:
            f.write("raise ImportError('hidden by %s to test psycopg2')\n" % who)
        paths.insert(0, hide)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONDONTWRITEBYTECODE="1", **env)

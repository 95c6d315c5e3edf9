"""
bench/django_beside.py -- the same makemigrations output applied by plain
Django and by django_pg_mig's backend while an application writes: the
project of test/django/test_backend.py (models v1, then v2: a nullable
field, null=False, db_index, Meta.indexes, two foreign keys, a
CheckConstraint, an index on a small table), 0001 and 0002 written once by
makemigrations, each applied on a database of its own with ROWS orders
(default 2,000,000; "big" is the default PG_MIG_BIG_TABLE_ROWS, 1,000,000).

The application is pgbench at a fixed rate (--rate, default 200
transactions/s, 4 clients), each transaction updating one order, adding
one, and logging its start (now()) and its end (clock_timestamp(), just
before the commit) in app_writes: a transaction that waits for a lock the
migration holds or queues for waits inside it.  Reported, for the time
`manage.py migrate` ran: its wall time, the longest application
transaction that ended in it or began in it, the rate the writers
committed at (against the rate before), per method.

Run by bench/django_run.sh --beside inside a sandbox (PGHOST, PRIMARY_PORT
set); rewrites the section "Beside an application" of RESULTS-django.md.
Timings are never asserted.
"""

import argparse
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
os.environ.setdefault("PGMIG_SOURCE_DIR", SRC)
os.environ.setdefault("PGMIG_DB", "bench_beside")
sys.path.insert(0, os.path.join(SRC, "test", "django"))
import test_backend as backend  # noqa: E402  (the project's models and settings)
from project import write_project  # noqa: E402

HEADING = "## Beside an application: makemigrations' output, plain Django and the backend"

WRITER = r"""
\set id random(1, :rows)
BEGIN;
UPDATE bigapp_order SET qty = qty + 1 WHERE id = :id;
INSERT INTO bigapp_order (amount, code, qty) VALUES (:id, 'w', 1);
INSERT INTO app_writes (began) VALUES (now());
END;
"""

METHODS = {
    "plain": ("Django's backend (django.db.backends.postgresql)", "proj.plain_settings"),
    "package": ("django_pg_mig's backend", "proj.settings"),
}


def psql(sql, db):
    return backend.psql(sql, db=db)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000000)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS-django.md"))
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="pgmig-django-beside.")
    conn = {"host": os.environ["PGHOST"], "port": os.environ["PRIMARY_PORT"], "options": {}}
    settings = (backend.SETTINGS % dict(conn, db="bench_package")).replace(', "autoapp"', "")
    settings = settings.replace("PG_MIG_BIG_TABLE_ROWS = 5000\n", "")
    files = {
        "manage.py": backend.MANAGE,
        "proj/__init__.py": "",
        "proj/settings.py": settings,
        "proj/plain_settings.py": backend.PLAIN_SETTINGS % {"db": "bench_plain"},
        "bigapp/__init__.py": "",
        "bigapp/migrations/__init__.py": "",
        "bigapp/models.py": backend.MODELS_V1,
        "writer.sql": WRITER,
    }
    env = write_project(work, files, "django_beside.py", PGMIG_DEPRECATIONS_IN=backend.DEPRECATIONS_IN)

    def manage(*args, settings="proj.settings"):
        r = subprocess.run([sys.executable, "manage.py"] + list(args), cwd=work,
                           env=dict(env, DJANGO_SETTINGS_MODULE=settings),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("manage.py %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    for m in METHODS:
        psql("DROP DATABASE IF EXISTS bench_%s" % m, "postgres")
        psql("CREATE DATABASE bench_%s" % m, "postgres")
        psql("CREATE EXTENSION pg_mig", "bench_" + m)
    manage("makemigrations", "bigapp")
    with open(os.path.join(work, "bigapp", "models.py"), "w") as f:
        f.write(textwrap.dedent(backend.MODELS_V2).lstrip())
    manage("makemigrations", "bigapp", "--name", "changes", "--noinput")

    results = {}
    for m, (_label, settings_module) in METHODS.items():
        db = "bench_" + m
        manage("migrate", "bigapp", "0001", settings=settings_module)
        sys.stderr.write("%s: filling %s rows\n" % (m, format(a.rows, ",")))
        psql("INSERT INTO bigapp_customer (name) SELECT 'c' || g FROM generate_series(1, 10) g;"
             "INSERT INTO bigapp_coupon (code) SELECT 'k' || g FROM generate_series(1, 5) g;"
             "INSERT INTO bigapp_order (amount, code, qty, customer_id)"
             " SELECT g, 'C' || g, 1, g %% 10 + 1 FROM generate_series(1, %d) g;"
             "CREATE TABLE app_writes (began timestamptz NOT NULL,"
             " at timestamptz NOT NULL DEFAULT clock_timestamp());"
             "ANALYZE bigapp_customer; ANALYZE bigapp_coupon" % a.rows, db)
        psql("VACUUM ANALYZE bigapp_order", db)
        psql("CHECKPOINT", db)
        writers = subprocess.Popen(
            [shutil.which("pgbench") or "pgbench", "-n", "-c", "4", "-j", "2", "-R", str(a.rate),
             "-T", "36000", "-D", "rows=%d" % a.rows, "-f", os.path.join(work, "writer.sql"),
             "-h", os.environ["PGHOST"], "-p", os.environ["PRIMARY_PORT"], "-U", "postgres", db],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(10)
            before = psql("SELECT clock_timestamp()", db)
            time.sleep(10)
            start = psql("SELECT clock_timestamp()", db)
            sys.stderr.write("%s: migrate\n" % m)
            manage("migrate", "bigapp", settings=settings_module)
            end = psql("SELECT clock_timestamp()", db)
            time.sleep(5)
        finally:
            # (SIGTERM: a shell that starts the bench in the background
            # leaves SIGINT ignored)
            os.killpg(writers.pid, signal.SIGTERM)
            writers.wait()
        row = psql(
            "SELECT extract(epoch FROM '{end}'::timestamptz - '{start}'),"
            " (SELECT extract(epoch FROM max(at - began)) FROM app_writes"
            "   WHERE at >= '{start}' AND began <= '{end}'),"
            " (SELECT count(*) FROM app_writes WHERE at >= '{start}' AND at < '{end}'),"
            " (SELECT count(*) FROM app_writes WHERE at >= '{before}' AND at < '{start}')"
            " / extract(epoch FROM '{start}'::timestamptz - '{before}')"
            .format(start=start, end=end, before=before), db).split("|")
        total, wait, during, rate_before = float(row[0]), float(row[1]), int(row[2]), float(row[3])
        jobs = psql("SELECT string_agg(kind, ', ' ORDER BY job_id) FROM mig_jobs", db)
        results[m] = (total, wait, during / total, rate_before, jobs)
        sys.stderr.write("%s: %r\n" % (m, results[m]))

    for m in METHODS:
        psql("DROP DATABASE IF EXISTS bench_%s WITH (FORCE)" % m, "postgres")
    shutil.rmtree(work, ignore_errors=True)
    write(a, results)


def write(a, results):
    import django
    version = psql("SELECT version()", "postgres")
    lines = [
        HEADING, "",
        "Written by `bench/django_run.sh --beside` on %s UTC." % datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
        "",
        "- machine: %d cores, %s %s; Django %s (the host's), psycopg2; %s; one streaming standby"
        % (os.cpu_count(), platform.system(), platform.release(), django.get_version(), version),
        "- the project of `test/django/test_backend.py`: 0002 as `makemigrations` writes it"
        " (`atomic = False`, from the package's `makemigrations`): a nullable field, a new"
        " `ForeignKey` (column, index, constraint), `null=False`, a constraint on an existing"
        " `ForeignKey`, `db_index`, `Meta.indexes` (the orders table and the small customers"
        " one), a `CheckConstraint`; the same files applied by both backends, each on a database"
        " of its own with %s orders (big: the default `PG_MIG_BIG_TABLE_ROWS`, 1,000,000)"
        % format(a.rows, ","),
        "- the application: pgbench, 4 clients at %d transactions/s in all, each transaction"
        " updating one order and adding one; its wait is a transaction's time from its start to"
        " just before its commit (lock waits are inside it), for the transactions that ended or"
        " began while `migrate` ran; one round" % a.rate,
        "",
        "| applied by | `migrate` took | longest application wait | writers' rate during | before | pg_mig jobs |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for m, (label, _s) in METHODS.items():
        total, wait, rate, rate_before, jobs = results[m]
        lines.append("| %s | %.1f s | %.2f s | %.0f/s | %.0f/s | %s |"
                     % (label, total, wait, rate, rate_before, jobs or "none"))
    plain, package = results["plain"], results["package"]
    lines += [
        "",
        "The writers stood still for up to %.1f s at a time while Django's own backend ran 0002"
        " (each index build, `SET NOT NULL` and constraint validation holds a lock that stops"
        " writes for as long as it scans the table), and got %.0f %% of their rate; under the"
        " package the longest wait was %.2f s and the rate %.0f %% of what it was before."
        " The package's `migrate` takes %.1f× as long: it runs each unsafe step as a pg_mig job"
        " (`CONCURRENTLY` scans the table twice, constraints are added `NOT VALID` and validated"
        " by a job, every job paced and waiting for the replica), and resumes where it stopped"
        " if it dies. One round on a machine of %d cores (load average %.0f at the end):"
        " the ratios are what to read, not the seconds."
        % (plain[1], 100 * plain[2] / plain[3], package[1], 100 * package[2] / package[3],
           package[0] / plain[0], os.cpu_count(), os.getloadavg()[0]),
        "",
    ]
    text = ""
    if os.path.exists(a.out):
        with open(a.out) as f:
            text = f.read()
        if HEADING in text:
            text = text[:text.index(HEADING)]
        text = text.rstrip("\n") + "\n\n"
    with open(a.out, "w") as f:
        f.write(text + "\n".join(lines))
    sys.stderr.write("wrote %s\n" % a.out)


if __name__ == "__main__":
    main()

"""
bench/django_bench.py -- what a Django team would write instead of
django_pg_mig's Backfill, against Backfill through ``manage.py migrate``, on
the table of pgmig_bench (``orders``, id bigint primary key, 5 more columns,
the new nullable ``tracking_id`` set to 'TRK-' || id where it is NULL).

    (h) Django: iterator(chunk_size=2000) + save(update_fields=...), one row per transaction
    (i) Django: bulk_update of 2,000 objects per transaction (keyset pages)
    (j) Django: QuerySet.update() over primary-key ranges of 10,000
    (k) django_pg_mig Backfill through manage.py migrate (pg_mig's defaults)

Run by bench/django_run.sh inside a sandbox (PGHOST, PRIMARY_PORT, STANDBY_PORT
set).  Each method runs as its own manage.py process on a fresh identical
table (VACUUM (FREEZE, ANALYZE) and CHECKPOINT before, the standby caught
up), in rotated order each round; medians are reported.  Measured: rows/s
over the process's wall time (Django's start-up included, for every method),
the longest transaction of the method's sessions (or of the pg_mig worker)
sampled every 20 ms in pg_stat_activity, the peak standby byte lag every
100 ms, the client process's peak RSS (ru_maxrss), and for (k) the worker's
peak private memory.  (h) and (i) are slow enough that they run on the
first --subset-h / --subset-i rows only (as pgmig_bench's (d)); their rate
is still rows/s.  For (k) the job's own rate (its started_at to
finished_at in mig_jobs) is reported too.  Every
run is checked: every row in the method's range set, none outside it.
Timings are never asserted.
"""

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
PY = "/usr/bin/python3"

METHODS = {
    "h": "(h) Django: iterator(chunk_size=2000) + save(update_fields=...)",
    "i": "(i) Django: bulk_update, 2,000 objects per call",
    "j": "(j) Django: QuerySet.update() over pk ranges of 10,000",
    "k": "(k) django_pg_mig Backfill via manage.py migrate",
}

MODELS = """
from django.db import models


class Order(models.Model):
    id = models.BigIntegerField(primary_key=True)
    customer_id = models.IntegerField()
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.TextField()
    created_at = models.DateTimeField()
    note = models.TextField(null=True)
    tracking_id = models.TextField(null=True)

    class Meta:
        db_table = "orders"
"""

INITIAL = """
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.CreateModel(name="Order", fields=[
        ("id", models.BigIntegerField(primary_key=True, serialize=False)),
        ("customer_id", models.IntegerField()),
        ("amount", models.DecimalField(max_digits=10, decimal_places=2)),
        ("status", models.TextField()),
        ("created_at", models.DateTimeField()),
        ("note", models.TextField(null=True)),
        ("tracking_id", models.TextField(null=True)),
    ], options={"db_table": "orders"})]
"""

BACKFILL = """
from django.db import migrations
from django_pg_mig.operations import Backfill


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0001_initial")]
    operations = [Backfill("order", set="tracking_id = 'TRK-' || id", where="tracking_id IS NULL",
                           elidable=True)]
"""

# The Django ways, as a team would write them.
COMMAND = '''
from django.core.management.base import BaseCommand
from django.db.models import TextField, Value
from django.db.models.functions import Cast, Concat

from shop.models import Order


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("method")
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, method, limit, **options):
        qs = Order.objects.filter(tracking_id__isnull=True)
        if limit:
            qs = qs.filter(id__lte=limit)
        if method == "h":
            for o in qs.order_by("id").iterator(chunk_size=2000):
                o.tracking_id = "TRK-%d" % o.id
                o.save(update_fields=["tracking_id"])
        elif method == "i":
            last = 0
            while True:
                objs = list(qs.filter(id__gt=last).order_by("id")[:2000])
                if not objs:
                    break
                for o in objs:
                    o.tracking_id = "TRK-%d" % o.id
                Order.objects.bulk_update(objs, ["tracking_id"], batch_size=2000)
                last = objs[-1].id
        elif method == "j":
            top = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
            value = Concat(Value("TRK-"), Cast("id", output_field=TextField()))
            for lo in range(0, top, 10000):
                qs.filter(id__gt=lo, id__lte=lo + 10000).update(tracking_id=value)
'''

SETTINGS = """
SECRET_KEY = "bench"
INSTALLED_APPS = ["django_pg_mig", "shop"]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "postgres", "USER": "postgres", "HOST": %(host)r, "PORT": %(port)r,
    "OPTIONS": {"application_name": "bench_django"},
}}
USE_TZ = True
PG_MIG_PROGRESS = False
"""

MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


def connect(port=None):
    c = psycopg2.connect(host=os.environ["PGHOST"], port=port or os.environ["PRIMARY_PORT"],
                         user="postgres", dbname="postgres", application_name="bench_driver")
    c.autocommit = True
    return c


def scalar(c, sql, params=None):
    with c.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


class Sampler:
    """Samples the longest open transaction, the standby lag and the worker's memory."""

    def __init__(self):
        self.stop_ = threading.Event()
        self.max_xact_ms = 0.0
        self.peak_lag = 0
        self.worker_rss_kb = 0
        self.thread = threading.Thread(target=self.loop)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_.set()
        self.thread.join()

    def loop(self):
        c = connect()
        tick = 0
        while not self.stop_.is_set():
            with c.cursor() as cur:
                cur.execute("SELECT pid, extract(epoch FROM clock_timestamp() - xact_start) * 1000, backend_type"
                            " FROM pg_stat_activity WHERE xact_start IS NOT NULL"
                            " AND (application_name = 'bench_django' OR backend_type = 'pg_mig worker')")
                for pid, ms, kind in cur.fetchall():
                    self.max_xact_ms = max(self.max_xact_ms, float(ms))
                    if kind == "pg_mig worker" and tick % 5 == 0:
                        self.worker_rss_kb = max(self.worker_rss_kb, rss_anon_kb(pid))
                if tick % 5 == 0:
                    cur.execute("SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)"
                                " FROM pg_stat_replication")
                    self.peak_lag = max(self.peak_lag, int(cur.fetchone()[0]))
            tick += 1
            time.sleep(0.02)
        c.close()


def rss_anon_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def make_table(c, rows):
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS orders")
        cur.execute("CREATE TABLE orders (id bigint NOT NULL, customer_id int NOT NULL,"
                    " amount numeric(10,2) NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL,"
                    " note text) WITH (autovacuum_enabled = false)")
        cur.execute("INSERT INTO orders SELECT g, (g * 7919) %% 100000, ((g * 31) %% 100000) / 100.0,"
                    " (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g %% 4],"
                    " '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second', md5(g::text)"
                    " FROM generate_series(1, %s::bigint) g", [rows])
        cur.execute("ALTER TABLE orders ADD PRIMARY KEY (id)")
        cur.execute("ALTER TABLE orders ADD COLUMN tracking_id text")
        cur.execute("VACUUM (FREEZE, ANALYZE) orders")
        cur.execute("CHECKPOINT")
        cur.execute("SELECT pg_current_wal_lsn()")
        lsn = cur.fetchone()[0]
    for _ in range(6000):
        if scalar(c, "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= %s::pg_lsn", [lsn]):
            return
        time.sleep(0.05)
    raise RuntimeError("the standby did not catch up")


class Project:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pgmig-django-bench-project.")
        files = {
            "manage.py": MANAGE,
            "proj/__init__.py": "",
            "proj/settings.py": SETTINGS % {"host": os.environ["PGHOST"], "port": os.environ["PRIMARY_PORT"]},
            "shop/__init__.py": "",
            "shop/models.py": MODELS,
            "shop/migrations/__init__.py": "",
            "shop/migrations/0001_initial.py": INITIAL,
            "shop/migrations/0002_backfill_order_tracking_id.py": BACKFILL,
            "shop/management/__init__.py": "",
            "shop/management/commands/__init__.py": "",
            "shop/management/commands/bench_method.py": COMMAND,
        }
        for path, text in files.items():
            full = os.path.join(self.dir, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(textwrap.dedent(text).lstrip())
        self.env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
                        PYTHONPATH=os.pathsep.join([self.dir, os.path.join(SRC, "integrations", "django")]))

    def manage(self, *args):
        """manage runs manage.py ARGS; returns (seconds, peak RSS in kB)."""
        start = time.monotonic()
        p = subprocess.Popen([PY, "manage.py"] + list(args), cwd=self.dir, env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        if p.returncode != 0:
            raise RuntimeError("manage.py %s failed:\n%s" % (" ".join(args), out.decode()))
        return seconds, usage.ru_maxrss

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run(project, c, method, rows, subsets):
    make_table(c, rows)
    scalar(c, "SELECT count(*) FROM pg_class")  # the session is alive
    with c.cursor() as cur:
        cur.execute("DELETE FROM django_migrations WHERE app = 'shop'")
        cur.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0001_initial', now())")
    wal0 = scalar(c, "SELECT pg_current_wal_lsn()")
    limit = subsets.get(method)
    with Sampler() as s:
        if method == "k":
            seconds, rss = project.manage("migrate", "shop", "0002")
        else:
            seconds, rss = project.manage("bench_method", method, *(["--limit", str(limit)] if limit else []))
    wal = scalar(c, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [wal0])
    top = limit or rows
    wrong = scalar(c, "SELECT count(*) FROM orders WHERE CASE WHEN id <= %s THEN tracking_id IS DISTINCT FROM"
                      " 'TRK-' || id ELSE tracking_id IS NOT NULL END", [top])
    if wrong:
        raise RuntimeError("method %s left %d rows wrong" % (method, wrong))
    job_seconds = 0.0
    if method == "k":
        job_seconds = float(scalar(c, "SELECT extract(epoch FROM finished_at - started_at) FROM mig_jobs"
                                      " ORDER BY job_id DESC LIMIT 1"))
    return {"rows": top, "seconds": seconds, "rate": top / seconds, "xact": s.max_xact_ms,
            "lag": s.peak_lag, "rss": rss, "worker_rss": s.worker_rss_kb, "wal": float(wal),
            "job_rate": top / job_seconds if job_seconds else 0.0}


def size(n):
    n = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return ("%.0f %s" if unit == "bytes" or n >= 10 else "%.1f %s") % (n, unit)
        n /= 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000000)
    ap.add_argument("--subset-h", type=int, default=20000, help="rows for (h), the per-row method")
    ap.add_argument("--subset-i", type=int, default=200000, help="rows for (i), bulk_update")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="5,000 rows (1,000 for (h)), one round")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS-django.md"))
    a = ap.parse_args()
    if a.quick:
        a.rows, a.subset_h, a.subset_i, a.rounds = 5000, 1000, 2000, 1
    c = connect()
    scalar(c, "SELECT count(*) FROM pg_extension")
    with c.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_mig")
    project = Project()
    try:
        project.manage("migrate", "shop", "0001", "--fake")  # creates django_migrations
        results = {m: [] for m in METHODS}
        order = list(METHODS)
        for r in range(a.rounds):
            for m in order[r % len(order):] + order[:r % len(order)]:
                res = run(project, c, m, a.rows, {"h": a.subset_h, "i": a.subset_i})
                results[m].append(res)
                sys.stderr.write("  %s round %d: %d rows in %.2f s, %.0f rows/s, xact %.0f ms, lag %s, rss %d kB\n"
                                 % (m, r + 1, res["rows"], res["seconds"], res["rate"], res["xact"],
                                    size(res["lag"]), res["rss"]))
    finally:
        project.remove()
    med = {m: {k: statistics.median(x[k] for x in v) for k in v[0]} for m, v in results.items()}
    k = med["k"]
    import django
    lines = [
        "# Django ways vs django_pg_mig's Backfill",
        "",
        "Written by `bench/django_run.sh` on %s UTC." % datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
        "",
        "- machine: %d cores, Linux %s; Django %s, psycopg2 %s, Python %s" % (
            os.cpu_count(), platform.release(), django.get_version(), psycopg2.__version__.split()[0],
            platform.python_version()),
        "- server: %s; one streaming standby on the same machine" % scalar(c, "SELECT version()"),
        "- table: pgmig_bench's `orders` (id bigint primary key, 5 more columns), %s rows; every method sets "
        "`tracking_id = 'TRK-' || id` where it is NULL; (h) on the first %s rows only, (i) on the "
        "first %s" % ("{:,}".format(a.rows), "{:,}".format(a.subset_h), "{:,}".format(a.subset_i)),
        "- %d round(s), methods rotated, a fresh identical table per run, medians; rows/s over the whole "
        "`manage.py` process (Django's start-up included for every method)" % a.rounds,
        "",
        "| method | rows/s | Backfill is faster by | WAL | longest transaction | peak standby lag | client peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m, label in METHODS.items():
        r = med[m]
        lines.append("| %s | %s | %s | %s | %.0f ms | %s | %.0f MB |" % (
            label, "{:,.0f}".format(r["rate"]), "-" if m == "k" else "%.1f×" % (k["rate"] / r["rate"]),
            size(r["wal"]), r["xact"], size(r["lag"]), r["rss"] / 1024.0))
    lines += [
        "",
        "(k) through `migrate` includes Django's start-up and the client's polling (every 0.5 s); "
        "the job itself, from its `started_at` to its `finished_at`, ran at %s rows/s. "
        % "{:,.0f}".format(k["job_rate"]) +
        "Longest transaction: the method's open transactions (application_name `bench_django`, or the "
        "pg_mig worker for (k)) sampled every 20 ms in `pg_stat_activity`, a lower bound within 20 ms. "
        "Client peak RSS: the `manage.py` process's `ru_maxrss`; for (k) that is `migrate` waiting, and "
        "the pg_mig worker's peak private memory (RssAnon) was %.1f MB. Peak standby lag: "
        "`pg_current_wal_lsn() - replay_lsn` every 100 ms." % (k["worker_rss"] / 1024.0),
        "",
        "## What this says",
        "",
        "- Backfill changes rows %.0f× as fast as the per-row loop (h) and %.0f× as fast as "
        "`bulk_update` (i): those two are what most Django data migrations are." % (
            k["rate"] / med["h"]["rate"], k["rate"] / med["i"]["rate"]),
        "- Against (j), `QuerySet.update()` over primary-key ranges, the fastest way Django has, "
        "Backfill is at %.2f× in rows/s (per round: (j) %s, (k) %s rows/s on this shared machine); "
        "both are set-based UPDATEs of thousands of rows per transaction and write the same WAL. "
        "What (j) does "
        "not have is the rest of pg_mig: it stops for good at a crash or a deploy (Backfill resumes "
        "from its checkpoint, exactly once), it never waits for a replica (Backfill pauses while one "
        "is `max_lag` behind; here the default 64 MB `max_lag_bytes` let the lag reach %s), and it "
        "cannot be paused, slowed or watched from another session while it runs." % (k["rate"] / med["j"]["rate"],
                   ", ".join("{:,.0f}".format(x["rate"]) for x in results["j"]),
                   ", ".join("{:,.0f}".format(x["rate"]) for x in results["k"]), size(k["lag"])),
        "- Client memory is flat for every method (the per-row loop reads with `iterator()`); "
        "pg_mig's worker stays at a few MB whatever the table size.",
        "",
    ]
    # the section bench/django_beside.py writes stays
    kept = ""
    if os.path.exists(a.out):
        with open(a.out) as f:
            old = f.read()
        if "\n## Beside an application" in old:
            kept = "\n" + old[old.index("\n## Beside an application") + 1:]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + kept)
    sys.stderr.write("wrote %s\n" % a.out)


if __name__ == "__main__":
    main()

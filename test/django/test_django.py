"""
test/django/test_django.py -- django_pg_mig against a real sandbox primary +
standby (started by run.sh, which exports PGHOST/PGPORT/STANDBY_PORT and
PGMIG_DB).  setUpClass writes a Django project with three apps:

  shop    the seed's recipe on one table: AddField, Backfill (SQL text, and
          F / Q compiled by Django), SetNotNull, AddIndex, AddForeignKey with
          orphans 'fail' then 'delete', and the way back (migrate shop 0001)
  ledger  a backfill that fails on some rows, then goes on after the fix; a
          job started with wait=False that the management commands pause,
          resume, cancel and wait for; an atomic migration that is refused
  undo    Backfill(keep_old_values=True) and its reversal
  purge   DeleteRows with a Q whose values need quoting

The tests run in name order, each step on the state the one before left.
A step whose pg_mig function is not in this database (checked in pg_proc
when the step runs) fakes its migration and is skipped with a message that
names the function, so the chain goes on and the gap shows in the summary.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

from project import write_project

SRC = os.environ["PGMIG_SOURCE_DIR"]
DB = os.environ["PGMIG_DB"]
DRIVER = os.environ.get("PGMIG_DRIVER", "psycopg2")
MIGCTL = os.environ.get("MIGCTL", "")
# the python that runs manage.py: a command line (run.sh --trixie: the chroot's)
PY = shlex.split(os.environ.get("PGMIG_DJANGO_PYTHON", "/usr/bin/python3"))
# the database's OPTIONS in the settings (JSON): {"server_side_binding": true}
# for psycopg 3's server-side parameters
OPTIONS = json.loads(os.environ.get("PGMIG_DJANGO_OPTIONS") or "{}")
# the Django version manage.py must run ("4.2"), when run.sh says
EXPECT_DJANGO = os.environ.get("PGMIG_EXPECT_DJANGO")
# Deprecation warnings are errors in manage.py (see MANAGE) when raised in
# code of the modules this regular expression matches: the package's own
# by default; run.sh --trixie says "" (all: Django 4.2 itself on Python
# 3.13 has none, while Django 3.2 on Python 3.11 imports cgi).  What Django
# 4.2 warns about (RemovedInDjango50Warning, RemovedInDjango51Warning) is
# gone in 5.x, what 3.2 warns about is gone in 4.x.
DEPRECATIONS_IN = os.environ.get("PGMIG_DEPRECATIONS_IN", r"django_pg_mig(\.|$)")

ROWS = 20000

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django_pg_mig", "shop", "ledger", "undo", "purge", "rerun"]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": %(db)r, "USER": "postgres", "HOST": %(host)r, "PORT": %(port)r,
    "OPTIONS": %(options)r,
}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PG_MIG_PROGRESS_INTERVAL = 0.5
"""

MANAGE = """
import os, sys, warnings
for category in (DeprecationWarning, PendingDeprecationWarning):
    warnings.filterwarnings("error", category=category, module=os.environ["PGMIG_DEPRECATIONS_IN"])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

ID = "('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID'))"

FILES = {
    "shop/models.py": """
        from django.db import models


        class Customer(models.Model):
            name = models.CharField(max_length=50)


        class Coupon(models.Model):
            code = models.CharField(max_length=20)


        class Shipment(models.Model):
            # a foreign key Django makes itself: what AddForeignKey must end like
            customer = models.ForeignKey(Customer, models.PROTECT)


        class Order(models.Model):
            created_at = models.DateTimeField()
            amount = models.IntegerField()
            customer = models.ForeignKey(Customer, models.PROTECT, null=True)
            coupon = models.ForeignKey(Coupon, models.CASCADE, null=True)
            tracking_id = models.CharField(max_length=32)

            class Meta:
                indexes = [models.Index(fields=["created_at"], name="idx_created_at")]
        """,
    "shop/migrations/0001_initial.py": """
        from django.db import migrations, models
        import django.db.models.deletion


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [
                migrations.CreateModel(name='Customer', fields=[%(id)s, ('name', models.CharField(max_length=50))]),
                migrations.CreateModel(name='Coupon', fields=[%(id)s, ('code', models.CharField(max_length=20))]),
                migrations.CreateModel(name='Shipment', fields=[%(id)s, ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='shop.customer'))]),
                migrations.CreateModel(name='Order', fields=[
                    %(id)s,
                    ('created_at', models.DateTimeField()),
                    ('amount', models.IntegerField()),
                    ('customer', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, to='shop.customer')),
                    ('coupon', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.CASCADE, to='shop.coupon')),
                ]),
            ]
        """ % {"id": ID},
    "shop/migrations/0002_order_tracking_id.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [('shop', '0001_initial')]
            operations = [
                migrations.AddField('order', 'tracking_id', models.CharField(max_length=32, null=True)),
            ]
        """,
    "shop/migrations/0003_backfill_order_tracking_id.py": """
        from django.db import migrations
        from django.db.models import F, Q
        from django_pg_mig.operations import Backfill


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('shop', '0002_order_tracking_id')]
            operations = [
                Backfill('order', set={'tracking_id': "'TRK-' || id"}, where='tracking_id IS NULL',
                         batch_size=500, chunk_time=None, sleep='50ms', elidable=True),
                Backfill('order', set={'amount': F('amount') + 1000}, where=Q(amount__lt=100),
                         reverse_sql='UPDATE shop_order SET amount = amount - 1000 WHERE amount >= 1000'),
            ]
        """,
    "shop/migrations/0004_order_tracking_id_not_null.py": """
        from django.db import migrations
        from django_pg_mig.operations import SetNotNull


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('shop', '0003_backfill_order_tracking_id')]
            operations = [SetNotNull('order', 'tracking_id')]
        """,
    "shop/migrations/0005_order_idx_created_at.py": """
        from django.db import migrations, models
        from django_pg_mig.operations import AddIndex


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('shop', '0004_order_tracking_id_not_null')]
            operations = [AddIndex('order', models.Index(fields=['created_at'], name='idx_created_at'))]
        """,
    "shop/migrations/0006_order_customer_fk.py": """
        from django.db import migrations
        from django_pg_mig.operations import AddForeignKey


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('shop', '0005_order_idx_created_at')]
            operations = [AddForeignKey('order', 'customer', orphans='fail', lock_timeout='100ms', max_retries=1)]
        """,
    "shop/migrations/0007_order_coupon_fk.py": """
        from django.db import migrations
        from django_pg_mig.operations import AddForeignKey


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('shop', '0006_order_customer_fk')]
            operations = [AddForeignKey('order', 'coupon', orphans='delete', batch_size=1000)]
        """,
    "ledger/models.py": """
        from django.db import models


        class Entry(models.Model):
            n = models.IntegerField()
            ratio = models.IntegerField(null=True)
            extra = models.IntegerField(null=True)
        """,
    "ledger/migrations/0001_initial.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [
                migrations.CreateModel(name='Entry', fields=[
                    %(id)s,
                    ('n', models.IntegerField()),
                    ('ratio', models.IntegerField(null=True)),
                ]),
            ]
        """ % {"id": ID},
    "ledger/migrations/0002_backfill_entry_ratio.py": """
        from django.db import migrations
        from django_pg_mig.operations import Backfill


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('ledger', '0001_initial')]
            operations = [Backfill('entry', set='ratio = 100000 / (n - 500)', batch_size=100,
                                   chunk_time=None, elidable=True)]
        """,
    "ledger/migrations/0003_backfill_entry_slow.py": """
        import datetime
        from django.db import migrations
        from django_pg_mig.operations import Backfill


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('ledger', '0002_backfill_entry_ratio')]
            operations = [Backfill('entry', set='ratio = ratio + 1', wait=False, batch_size=10,
                                   chunk_time=None, sleep=datetime.timedelta(milliseconds=500),
                                   elidable=True)]
        """,
    "ledger/migrations/0004_entry_extra.py": """
        from django.db import migrations, models
        from django_pg_mig.operations import Backfill


        class Migration(migrations.Migration):
            dependencies = [('ledger', '0003_backfill_entry_slow')]
            operations = [
                migrations.AddField('entry', 'extra', models.IntegerField(null=True)),
                Backfill('entry', set='extra = n'),
            ]
        """,
    "undo/models.py": """
        from django.db import models


        class Thing(models.Model):
            v = models.IntegerField()
        """,
    "undo/migrations/0001_initial.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [migrations.CreateModel(name='Thing', fields=[%(id)s, ('v', models.IntegerField())])]
        """ % {"id": ID},
    "undo/migrations/0002_backfill_thing_v.py": """
        from django.db import migrations
        from django_pg_mig.operations import Backfill


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('undo', '0001_initial')]
            operations = [Backfill('thing', set='v = v * 2', keep_old_values=True)]
        """,
    "purge/models.py": """
        from django.db import models


        class Event(models.Model):
            kind = models.CharField(max_length=20)
        """,
    "purge/migrations/0001_initial.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [migrations.CreateModel(name='Event', fields=[%(id)s, ('kind', models.CharField(max_length=20))])]
        """ % {"id": ID},
    "purge/migrations/0002_delete_event_rows.py": """
        from django.db import migrations
        from django.db.models import Q
        from django_pg_mig.operations import DeleteRows


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('purge', '0001_initial')]
            operations = [DeleteRows('event', where=Q(kind='debug') | Q(kind__startswith="it's 100%"),
                                     batch_size=50)]
        """,
    "rerun/models.py": """
        from django.db import models


        class Account(models.Model):
            amount = models.IntegerField()


        class Legacy(models.Model):
            # a big legacy table Django does not manage
            n = models.IntegerField()

            class Meta:
                managed = False
                db_table = 'rerun_legacy'


        class Owner(models.Model):
            name = models.CharField(max_length=20)


        class Item(models.Model):
            code = models.CharField(max_length=20)
            owner = models.ForeignKey(Owner, models.PROTECT, null=True)

            class Meta:
                indexes = [models.Index(fields=['code'], name='rerun_item_code')]
        """,
    "rerun/migrations/0001_initial.py": """
        from django.db import migrations, models
        import django.db.models.deletion


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [
                migrations.CreateModel(name='Account', fields=[%(id)s, ('amount', models.IntegerField())]),
                migrations.CreateModel(name='Legacy', fields=[%(id)s, ('n', models.IntegerField())],
                                       options={'managed': False, 'db_table': 'rerun_legacy'}),
                migrations.RunSQL('CREATE TABLE rerun_legacy (id bigint PRIMARY KEY, n integer NOT NULL)',
                                  'DROP TABLE rerun_legacy'),
                migrations.CreateModel(name='Owner', fields=[%(id)s, ('name', models.CharField(max_length=20))]),
                migrations.CreateModel(name='Item', fields=[
                    %(id)s,
                    ('code', models.CharField(max_length=20, null=True)),
                    ('owner', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, to='rerun.owner')),
                ]),
            ]
        """ % {"id": ID},
    # Not idempotent: every row exactly +1, however often migrate is
    # interrupted.  The RunSQLs wait while the test holds advisory lock
    # 4201 (before the job) or 4202 (after it), so that Ctrl-C can hit
    # exactly there.
    "rerun/migrations/0002_bump.py": """
        from django.db import migrations
        from django_pg_mig.operations import Backfill


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('rerun', '0001_initial')]
            operations = [
                migrations.RunSQL('SELECT pg_advisory_xact_lock_shared(4201)', migrations.RunSQL.noop),
                Backfill('account', set='amount = amount + 1', keep_old_values=True,
                         batch_size=50, chunk_time=None, sleep='100ms'),
                migrations.RunSQL('SELECT pg_advisory_xact_lock_shared(4202)', migrations.RunSQL.noop),
            ]
        """,
    "rerun/migrations/0003_legacy.py": """
        from django.db import migrations
        from django_pg_mig.operations import Backfill, DeleteRows


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('rerun', '0002_bump')]
            operations = [
                Backfill('legacy', set='n = n * 2', elidable=True),
                DeleteRows('legacy', where='n > 150', elidable=True),
            ]
        """,
    "rerun/migrations/0004_item_code_not_null.py": """
        from django.db import migrations
        from django_pg_mig.operations import SetNotNull


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('rerun', '0003_legacy')]
            operations = [SetNotNull('item', 'code')]
        """,
    "rerun/migrations/0005_item_code_index.py": """
        from django.db import migrations, models
        from django_pg_mig.operations import AddIndex


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('rerun', '0004_item_code_not_null')]
            operations = [AddIndex('item', models.Index(fields=['code'], name='rerun_item_code'))]
        """,
    "rerun/migrations/0006_item_owner_fk.py": """
        from django.db import migrations
        from django_pg_mig.operations import AddForeignKey


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [('rerun', '0005_item_code_index')]
            operations = [AddForeignKey('item', 'owner', orphans='fail')]
        """,
}

NAMES = """
from django.db import migrations, models
from django.db.models import F, Q
from django_pg_mig.operations import AddForeignKey, AddIndex, Backfill, DeleteRows, SetNotNull
for op in [Backfill('order', set={'tracking_id': "'TRK-' || id"}, where='tracking_id IS NULL'),
           Backfill('order', set="amount = amount + 1"),
           DeleteRows('event', where="kind = 'debug'"),
           SetNotNull('order', 'tracking_id'),
           AddIndex('order', models.Index(fields=['created_at'], name='idx_created_at')),
           AddForeignKey('order', 'customer', orphans='delete')]:
    m = migrations.Migration('x', 'shop')
    m.operations = [op]
    print('%s | %s' % (op.describe(), m.suggest_name()))
"""

DRIVER_PROBE = """
import django
from django.db import connection
connection.ensure_connection()
print("django", django.get_version())
print("database", connection.Database.__name__)
print("connection", type(connection.connection).__module__)
try:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3
except ImportError:   # Django < 4.2: psycopg2 only
    is_psycopg3 = False
print("psycopg3", is_psycopg3)
with connection.cursor() as cursor:   # psycopg 3: ClientCursor, or Cursor with server-side binding
    print("cursor", ",".join(c.__module__.split(".")[0] + "." + c.__name__ for c in type(cursor.cursor).__mro__
                             if c.__module__.split(".")[0] in ("psycopg", "psycopg2")))
import warnings
for module in ("django_pg_mig.operations", "django.db.models"):
    try:
        warnings.warn_explicit("probe", DeprecationWarning, "probe.py", 1, module=module)
        print("deprecations_in_%s warnings" % module)
    except DeprecationWarning:
        print("deprecations_in_%s errors" % module)
"""


def psql(sql, standby=False):
    port = os.environ["STANDBY_PORT" if standby else "PRIMARY_PORT"]
    r = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-p", port, "-d", DB, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("psql failed: %s\n%s" % (sql, r.stderr))
    return r.stdout.strip()


def has_function(name):
    return psql("SELECT count(*) FROM pg_proc p JOIN pg_extension e ON e.extnamespace = p.pronamespace"
                " WHERE e.extname = 'pg_mig' AND p.proname = '%s'" % name) != "0"


def has_argument(function, argument):
    return psql("SELECT count(*) FROM pg_proc p JOIN pg_extension e ON e.extnamespace = p.pronamespace"
                " WHERE e.extname = 'pg_mig' AND p.proname = '%s' AND '%s' = ANY (p.proargnames)"
                % (function, argument)) != "0"


def fk_attributes(table, ref):
    """fk_attributes: what PostgreSQL says of the foreign keys of TABLE to REF."""
    return psql("SELECT string_agg(format('deferrable=%%s deferred=%%s on_update=%%s on_delete=%%s match=%%s valid=%%s',"
                " condeferrable, condeferred, confupdtype, confdeltype, confmatchtype, convalidated), '; ')"
                " FROM pg_constraint WHERE contype = 'f' AND conrelid = '%s'::regclass"
                " AND confrelid = '%s'::regclass" % (table, ref))


class LockHolder:
    """
    LockHolder: a psql session that holds an ACCESS SHARE lock on TABLE in an
    open transaction (as a long report would), until close().
    """

    def __init__(self, table):
        env = dict(os.environ, PGAPPNAME="test_django lock holder")
        self.proc = subprocess.Popen(["psql", "-XAtq", "-p", os.environ["PRIMARY_PORT"], "-d", DB],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
        self.proc.stdin.write("BEGIN;\nSELECT count(*) FROM %s;\n" % table)
        self.proc.stdin.flush()
        for _ in range(600):
            if psql("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE a.application_name = 'test_django lock holder' AND l.granted"
                    " AND l.relation = '%s'::regclass AND l.mode = 'AccessShareLock'" % table) == "1":
                return
            time.sleep(0.1)
        raise AssertionError("the lock holder did not get its lock on %s" % table)

    def close(self):
        self.proc.stdin.write("COMMIT;\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def job_count():
    return int(psql("SELECT count(*) FROM mig_jobs"))


class AdvisoryLock:
    """AdvisoryLock: a psql session that holds advisory lock KEY until release()."""

    def __init__(self, key):
        self.key = key
        self.proc = subprocess.Popen(["psql", "-XAtq", "-p", os.environ["PRIMARY_PORT"], "-d", DB],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write("SELECT pg_advisory_lock(%d);\nSELECT 'locked';\n" % key)
        self.proc.stdin.flush()
        self.proc.stdout.readline()    # the void of pg_advisory_lock
        assert self.proc.stdout.readline().strip() == "locked"

    def waiting(self):
        """waiting says whether another session waits for the lock."""
        return psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND objid = %d" % self.key) != "0"

    def release(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
            self.proc.stdout.close()
            self.proc = None


def wait_until(what, check):
    """wait_until polls CHECK() until it is true (giving up after five minutes)."""
    deadline = time.monotonic() + 300
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("waited five minutes for: %s" % what)
        time.sleep(0.05)


def key_job(key, column="state"):
    """key_job: COLUMN of the job that holds JOB_KEY KEY, '' if none."""
    return psql("SELECT %s FROM mig_jobs WHERE job_key = '%s'" % (column, key))


def key_jobs(prefix):
    """key_jobs: how many jobs have a job_key starting with PREFIX."""
    return int(psql("SELECT count(*) FROM mig_jobs WHERE left(job_key, length('%s')) = '%s'"
                    % (prefix, prefix)))


def table_cells(text):
    """table_cells splits a table of columns two spaces apart (migctl's layout) into cells."""
    lines = text.splitlines()
    starts = [m.start() for m in re.finditer(r"(?:(?<=  )|^)\S", lines[0])]
    rows = []
    for line in lines:
        rows.append([line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])])
    return rows


def wait_standby():
    """wait_standby waits until the standby has replayed all the primary has written."""
    lsn = psql("SELECT pg_current_wal_insert_lsn()")  # the insert position: workers commit asynchronously
    for _ in range(600):
        if psql("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn, standby=True) == "t":
            return
        time.sleep(0.1)
    raise AssertionError("the standby did not replay up to %s" % lsn)


class DjangoPgMigTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pgmig-django-project.")
        files = dict(FILES)
        files["manage.py"] = MANAGE
        files["proj/__init__.py"] = ""
        files["proj/settings.py"] = SETTINGS % {
            "db": DB, "host": os.environ["PGHOST"], "port": os.environ["PRIMARY_PORT"],
            "options": OPTIONS}
        for app in ("shop", "ledger", "undo", "purge", "rerun"):
            files["%s/__init__.py" % app] = ""
            files["%s/migrations/__init__.py" % app] = ""
        cls.env = write_project(cls.dir, files, 'test_django.py', PGMIG_DEPRECATIONS_IN=DEPRECATIONS_IN)
        psql("CREATE EXTENSION IF NOT EXISTS pg_mig")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def manage(self, *args, ok=True):
        r = subprocess.run(PY + ["manage.py"] + list(args), cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=600)
        r.output = r.stdout + r.stderr
        if ok is True and r.returncode != 0:
            self.fail("manage.py %s exited %d:\n%s" % (" ".join(args), r.returncode, r.output))
        if ok is False and r.returncode == 0:
            self.fail("manage.py %s succeeded but should not have:\n%s" % (" ".join(args), r.output))
        return r

    def background(self, *args):
        """
        background starts manage.py ARGS in a process group of its own and
        returns the process (see interrupt).  SIGINT is set to its default
        first: a shell that starts a command in the background (ctest or
        run.sh under '&') leaves it ignored, and Python then installs no
        KeyboardInterrupt.
        """
        return subprocess.Popen(PY + ["manage.py"] + list(args), cwd=self.dir, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def interrupt(self, proc, then=None):
        """
        interrupt sends Ctrl-C (SIGINT, to the process group, as a terminal
        does: run.sh --trixie's manage.py runs under pgchroot.sh) to PROC,
        runs THEN(), and returns (rc, out, err).
        """
        os.killpg(proc.pid, signal.SIGINT)
        if then is not None:
            then()
        out, err = proc.communicate(timeout=600)
        sys.stdout.write("\n" + out + err)
        return proc.returncode, out, err

    def fake_if_missing(self, function, target, what):
        """fake_if_missing fakes migration TARGET and skips when FUNCTION is not there."""
        if has_function(function):
            return
        self.manage("migrate", "shop", target, "--fake")
        self.skipTest("%s() is not in this database's pg_mig (pg_proc): %s not tested, "
                      "migration %s faked" % (function, what, target))

    # -- shop: the recipe ------------------------------------------------

    def test_00_driver(self):
        # what manage.py really runs: Django's version, the driver module of
        # the backend, and the module of the connection object it opened
        r = self.manage("shell", "-v", "0", "-c", DRIVER_PROBE)   # -v 0: Django 5.2 says what it imported
        sys.stdout.write("\n" + r.stdout)
        facts = dict(line.split(" ", 1) for line in r.stdout.splitlines())
        self.assertEqual(facts["database"], DRIVER)
        self.assertEqual(facts["connection"].split(".")[0], DRIVER)
        if EXPECT_DJANGO is not None:
            self.assertEqual(".".join(facts["django"].split(".")[:2]), EXPECT_DJANGO)
        if DRIVER == "psycopg":
            self.assertEqual(facts["psycopg3"], "True")
            # parameters bound by the client (Django's default), or by the server
            cursors = facts["cursor"].split(",")
            if OPTIONS.get("server_side_binding"):
                self.assertNotIn("psycopg.ClientCursor", cursors)
                self.assertIn("psycopg.Cursor", cursors)
            else:
                self.assertIn("psycopg.ClientCursor", cursors)
        self.assertEqual(facts["deprecations_in_django_pg_mig.operations"], "errors")
        self.assertEqual(facts["deprecations_in_django.db.models"],
                         "errors" if DEPRECATIONS_IN == "" else "warnings")

    def test_01_initial(self):
        self.manage("migrate", "shop", "0001")
        psql("INSERT INTO shop_customer (id, name) SELECT i, 'c' || i FROM generate_series(1, 50) i;"
             "INSERT INTO shop_coupon (id, code) SELECT i, 'k' || i FROM generate_series(1, 10) i;"
             "INSERT INTO shop_order (id, created_at, amount, customer_id, coupon_id)"
             " SELECT i, timestamptz '2024-01-01' + i * interval '1 minute', i %% 150, i %% 60 + 1,"
             "        CASE WHEN i %% 7 = 0 THEN NULL ELSE i %% 12 + 1 END"
             "   FROM generate_series(1, %d) i" % ROWS)

    def test_02_add_field_and_backfill(self):
        before = job_count()
        r = self.manage("migrate", "shop", "0003")
        sys.stdout.write("\n" + r.stdout)
        self.assertIn("Applying shop.0003_backfill_order_tracking_id...", r.stdout)
        # progress while it runs (500-row chunks 50 ms apart last > 2 s), then done
        self.assertRegex(r.stdout, r"\n  Backfilling shop_order: .*rows.*\n")
        self.assertRegex(r.stdout, r"  Backfilling shop_order: done, 20,000 rows, in \d+:\d\d\n")
        self.assertEqual(psql("SELECT count(*) FROM shop_order WHERE tracking_id IS DISTINCT FROM 'TRK-' || id"), "0")
        # F('amount') + 1000 where Q(amount__lt=100), compiled by Django
        self.assertEqual(psql("SELECT count(*) FROM shop_order WHERE amount >= 1000"),
                         str(sum(1 for i in range(1, ROWS + 1) if i % 150 < 100)))
        self.assertEqual(psql("SELECT count(*) FROM shop_order WHERE amount <> (id % 150) + CASE WHEN id % 150 < 100 THEN 1000 ELSE 0 END"), "0")
        self.assertEqual(psql("SELECT set_clause || ' | ' || where_clause FROM mig_jobs ORDER BY job_id DESC LIMIT 1"),
                         '"amount" = ("amount" + \'1000\') | "amount" < \'100\'')
        self.assertEqual(psql("SELECT string_agg(state, ',') FROM mig_jobs WHERE job_id > %d" % before),
                         "succeeded,succeeded")

    def test_03_set_not_null(self):
        self.fake_if_missing("mig_set_not_null", "0004", "SetNotNull")
        r = self.manage("migrate", "shop", "0004")
        sys.stdout.write("\n" + r.stdout)
        self.assertIn("Applying shop.0004_order_tracking_id_not_null...", r.stdout)
        self.assertEqual(psql("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'shop_order'::regclass"
                              " AND attname = 'tracking_id'"), "t")
        self.assertEqual(psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'shop_order'::regclass"
                              " AND contype = 'c'"), "0")

    def test_04_add_index(self):
        self.fake_if_missing("mig_create_index", "0005", "AddIndex")
        r = self.manage("migrate", "shop", "0005")
        sys.stdout.write("\n" + r.stdout)
        self.assertEqual(psql("SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                              " WHERE i.indexrelid = 'idx_created_at'::regclass"),
                         "t|CREATE INDEX idx_created_at ON public.shop_order USING btree (created_at)")

    def test_05_foreign_key_orphans_fail(self):
        self.fake_if_missing("mig_add_foreign_key", "0006", "AddForeignKey(orphans='fail')")
        before = job_count()
        r = self.manage("migrate", "shop", "0006", ok=False)
        sys.stdout.write("\n" + r.stdout + r.stderr)
        job = psql("SELECT job_id FROM mig_jobs ORDER BY job_id DESC LIMIT 1")
        self.assertEqual(job_count(), before + 1)
        error = psql("SELECT last_error FROM mig_jobs WHERE job_id = %s" % job)
        self.assertTrue(error)
        # pg_mig's text, with its way out in Django's terms
        self.assertIn("pg_mig job %s (Adding foreign key shop_order.customer_id -> shop_customer) ended failed: %s"
                      % (job, error.split(":")[0]), r.stderr)
        self.assertNotIn("mig_add_foreign_key()", r.stderr)
        self.assertIn('AddForeignKey(..., orphans="delete")', r.stderr)
        self.assertEqual(psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'shop_order'::regclass"
                              " AND contype = 'f'"), "0")
        # the way out: fix the orphans, migrate again (the failed job goes on)
        psql("UPDATE shop_order SET customer_id = NULL WHERE customer_id > 50")
        # A transaction that reads the table (ACCESS SHARE) does not hold the
        # job up, but ALTER CONSTRAINT's ACCESS EXCLUSIVE lock waits for it:
        # both attempts (lock_timeout 100ms, max_retries 1) time out, the
        # migration fails and leaves the valid constraint, NOT DEFERRABLE.
        before = job_count()
        holder = LockHolder("shop_order")
        try:
            r = self.manage("migrate", "shop", "0006", ok=False)
        finally:
            holder.close()
        sys.stdout.write("\n" + r.stdout + r.stderr)
        self.assertIn("going on with pg_mig job %s (was failed)" % job, r.stdout)
        self.assertEqual(job_count(), before)
        self.assertEqual(psql("SELECT state FROM mig_jobs WHERE job_id = %s" % job), "succeeded")
        self.assertEqual(fk_attributes("shop_order", "shop_customer"),
                         "deferrable=f deferred=f on_update=a on_delete=a match=s valid=t")
        name = psql("SELECT conname FROM pg_constraint WHERE conrelid = 'shop_order'::regclass"
                    " AND contype = 'f' AND confrelid = 'shop_customer'::regclass")
        self.assertRegex(r.stdout, r"ALTER CONSTRAINT %s DEFERRABLE INITIALLY DEFERRED: canceling statement "
                                   r"due to lock timeout.*; attempt 1 of 1 in \d+\.\d s\n" % name)
        self.assertIn("LockNotGranted: Adding foreign key shop_order.customer_id -> shop_customer: the constraint "
                      "%s is valid but still NOT DEFERRABLE: ALTER CONSTRAINT ... DEFERRABLE INITIALLY DEFERRED "
                      "did not get its lock on \"shop_order\" within lock_timeout 100ms in 2 attempts" % name,
                      r.stderr)
        self.assertEqual(psql("SELECT count(*) FROM django_migrations WHERE app = 'shop'"
                              " AND name = '0006_order_customer_fk'"), "0")
        # the lock gone, migrate again: no second job, only the ALTER
        r = self.manage("migrate", "shop", "0006")
        sys.stdout.write("\n" + r.stdout)
        self.assertIn("done already by pg_mig job %s" % job, r.stdout)
        self.assertIn("constraint %s is DEFERRABLE INITIALLY DEFERRED, as Django makes its foreign keys" % name,
                      r.stdout)
        self.assertEqual(job_count(), before)
        # the same constraint Django's own migration made for Shipment.customer
        self.assertEqual(fk_attributes("shop_order", "shop_customer"),
                         fk_attributes("shop_shipment", "shop_customer"))
        self.assertEqual(fk_attributes("shop_shipment", "shop_customer"),
                         "deferrable=t deferred=t on_update=a on_delete=a match=s valid=t")

    def test_06_foreign_key_orphans_delete(self):
        self.fake_if_missing("mig_add_foreign_key", "0007", "AddForeignKey(orphans='delete')")
        orphans = int(psql("SELECT count(*) FROM shop_order WHERE coupon_id > 10"))
        self.assertEqual(orphans, sum(1 for i in range(1, ROWS + 1) if i % 7 and i % 12 + 1 > 10))
        total = int(psql("SELECT count(*) FROM shop_order"))
        r = self.manage("migrate", "shop", "0007")
        sys.stdout.write("\n" + r.stdout)
        self.assertEqual(int(psql("SELECT count(*) FROM shop_order")), total - orphans)
        self.assertEqual(psql("SELECT count(*) FROM shop_order WHERE coupon_id > 10"), "0")
        self.assertEqual(fk_attributes("shop_order", "shop_coupon"),
                         fk_attributes("shop_shipment", "shop_customer"))

    def test_07_standby(self):
        wait_standby()
        for standby in (False, True):
            facts = psql(
                "SELECT (SELECT count(*) FROM shop_order WHERE tracking_id = 'TRK-' || id),"
                " (SELECT count(*) FROM shop_order WHERE amount >= 1000),"
                " (SELECT attnotnull FROM pg_attribute WHERE attrelid = 'shop_order'::regclass AND attname = 'tracking_id'),"
                " (SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('idx_created_at') AND indisvalid),"
                " (SELECT count(*) FROM pg_constraint WHERE conrelid = 'shop_order'::regclass AND contype = 'f' AND convalidated)",
                standby=standby)
            if standby:
                self.assertEqual(facts, primary)
            primary = facts
        self.assertTrue(primary.startswith(psql("SELECT count(*) FROM shop_order") + "|"))

    def test_08_makemigrations_check(self):
        r = self.manage("makemigrations", "--check", "--dry-run")
        self.assertIn("No changes detected", r.stdout)

    def test_09_sqlmigrate_starts_nothing(self):
        before = job_count()
        r = self.manage("sqlmigrate", "shop", "0003")
        self.assertIn("-- Backfill order with pg_mig: SET tracking_id WHERE tracking_id IS NULL", r.stdout)
        self.assertEqual(job_count(), before)

    def test_09_names(self):
        r = self.manage("shell", "-v", "0", "-c", NAMES)
        self.assertEqual(r.stdout.splitlines(), [
            "Backfill order with pg_mig: SET tracking_id WHERE tracking_id IS NULL | backfill_order_tracking_id",
            "Backfill order with pg_mig: SET amount = amount + 1 | backfill_order",
            "Delete rows of event with pg_mig WHERE kind = 'debug' | delete_event_rows",
            "Set NOT NULL on field tracking_id of order with pg_mig | order_tracking_id_not_null",
            "Create index idx_created_at on field(s) created_at of model order with pg_mig | order_idx_created_at",
            "Add foreign key constraint of field customer of order with pg_mig (orphans: delete) | order_customer_fk",
        ])

    # -- ledger: failure, commands, atomic --------------------------------

    def test_10_failing_backfill(self):
        self.manage("migrate", "ledger", "0001")
        psql("INSERT INTO ledger_entry (id, n) SELECT i, i FROM generate_series(1, 1000) i")
        before = job_count()
        r = self.manage("migrate", "ledger", "0002", ok=False)
        self.assertEqual(job_count(), before + 1)
        job = psql("SELECT job_id FROM mig_jobs ORDER BY job_id DESC LIMIT 1")
        error = psql("SELECT last_error FROM mig_jobs WHERE job_id = %s" % job)
        self.assertTrue(error.startswith("division by zero"), error)
        self.assertEqual(psql("SELECT state FROM mig_jobs WHERE job_id = %s" % job), "failed")
        self.assertIn("JobFailed: pg_mig job %s (Backfilling ledger_entry) ended failed: %s" % (job, error),
                      r.stderr)
        self.assertIn("run migrate again: it resumes job %s" % job, r.stderr)
        self.assertEqual(self.manage("mig_wait", job, ok=False).returncode, 1)
        status = json.loads(self.manage("mig_status", job, "--json").stdout)
        self.assertEqual([(s["job_id"], s["state"], s["last_error"]) for s in status],
                         [(int(job), "failed", error)])
        # fix the row and migrate again: the same job goes on from its checkpoint
        psql("UPDATE ledger_entry SET n = 2000 WHERE n = 500")
        r = self.manage("migrate", "ledger", "0002")
        self.assertIn("going on with pg_mig job %s (was failed)" % job, r.stdout)
        self.assertEqual(job_count(), before + 1)
        self.assertEqual(psql("SELECT state FROM mig_jobs WHERE job_id = %s" % job), "succeeded")
        self.assertEqual(psql("SELECT count(*) FROM ledger_entry WHERE ratio IS DISTINCT FROM 100000 / (n - 500)"), "0")
        self.__class__.succeeded_job = job

    def test_11_management_commands(self):
        r = self.manage("migrate", "ledger", "0003")
        m = re.search(r"Backfilling ledger_entry: started pg_mig job (\d+), not waiting for it", r.stdout)
        self.assertTrue(m, r.stdout)
        job = m.group(1)
        self.assertIn(psql("SELECT state FROM mig_jobs WHERE job_id = %s" % job), ("queued", "running"))
        self.assertEqual(psql("SELECT sleep FROM mig_jobs WHERE job_id = %s" % job), "00:00:00.5")
        # 100 chunks 500 ms apart cannot be done in half a second: exit 4 as migctl wait
        r = self.manage("mig_wait", job, "--timeout", "0.5", ok=False)
        self.assertEqual(r.returncode, 4, r.output)
        # a timeout, said as one, the job's id once
        self.assertRegex(r.stderr, r"JobTimeout: pg_mig job %s \(backfill of ledger_entry\) is still (queued|running)"
                                   r" after 0\.5 s\nThe job goes on in the server: wait for it again with "
                                   r"\"manage.py mig_wait %s\"" % (job, job))
        self.assertNotIn("JobFailed", r.stderr)
        self.assertEqual(self.manage("mig_pause", job).stdout.strip(), "job %s: paused" % job)
        self.assertEqual(psql("SELECT state FROM mig_jobs WHERE job_id = %s" % job), "paused")
        table = self.manage("mig_status", job).stdout.splitlines()
        self.assertEqual(len(table), 2)
        # (the job has the key of its operation: a KEY column, as migctl status shows it)
        self.assertEqual(table[0].split(), ["JOB", "TABLE", "KIND", "STATE", "PROGRESS", "ROWS", "ROWS/S",
                                            "ETA", "BATCH", "LAG", "THROTTLED", "STEP", "KEPT", "KEY"])
        self.assertEqual(table[1].split()[:4], [job, "ledger_entry", "backfill", "paused"])
        self.assertRegex(self.manage("mig_resume", job).stdout.strip(), r"^job %s: (queued|running)$" % job)
        self.assertEqual(self.manage("mig_cancel", job).stdout.strip(), "job %s: cancelled" % job)
        r = self.manage("mig_wait", job, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("pg_mig job %s (backfill of ledger_entry) ended cancelled" % job, r.stderr)
        r = self.manage("mig_wait", self.succeeded_job)
        self.assertEqual(r.stdout.strip().splitlines()[-1], "succeeded")
        r = self.manage("mig_status", "999999", ok=False)
        self.assertIn("pg_mig job 999999 does not exist", r.stderr)
        r = self.manage("mig_pause", self.succeeded_job, ok=False)
        self.assertIn("already", r.stderr)
        # the hint in Django's terms, not "Start a new job with mig_start_backfill()"
        self.assertNotIn("mig_start_backfill", r.stderr)
        self.assertIn("\"manage.py mig_status %s\" shows how" % self.succeeded_job, r.stderr)

    def test_12_status_matches_migctl(self):
        if not os.access(MIGCTL, os.X_OK):
            self.skipTest("migctl not built at %r: mig_status not compared with it" % MIGCTL)
        env = dict(os.environ, PGDATABASE=DB)
        # Every column migctl prints, mig_status prints the same, in the same
        # order (mig_status adds KIND and STEP when the jobs have kinds,
        # whether or not this migctl shows them yet).
        for attempt in range(3):   # the LAG column moves while WAL is written
            wait_standby()
            ours = table_cells(self.manage("mig_status").stdout)
            theirs = table_cells(subprocess.run([MIGCTL, "status"], env=env, capture_output=True,
                                                text=True).stdout)
            shared = [h for h in ours[0] if h in theirs[0]]
            if [h for h in theirs[0] if h in shared] != shared:
                self.fail("mig_status has the columns %s, migctl status %s" % (ours[0], theirs[0]))
            pick = lambda rows, hs: [[r[hs.index(h)] for h in shared] for r in rows]
            if pick(ours[1:], ours[0]) == pick(theirs[1:], theirs[0]):
                break
        self.assertEqual(set(theirs[0]) - set(ours[0]), set())
        self.assertEqual(pick(ours[1:], ours[0]), pick(theirs[1:], theirs[0]))
        self.assertEqual(len(ours), job_count() + 1)
        ours = json.loads(self.manage("mig_status", "--json").stdout)
        theirs = json.loads(subprocess.run([MIGCTL, "status", "--json"], env=env,
                                           capture_output=True, text=True).stdout)
        self.assertEqual(len(ours), len(theirs))
        for o, t in zip(ours, theirs):
            # the lag moves; a failed job's error ends with a hint, which
            # each layer words in its own terms (migctl's commands here)
            for key in set(o) & set(t) - {"lag_bytes", "last_error"}:
                self.assertEqual((o["job_id"], key, o[key]), (o["job_id"], key, t[key]))
            if o["last_error"] is not None:
                self.assertEqual(o["last_error"].split(". ")[0], t["last_error"].split(". ")[0])
            self.assertEqual(set(t) - set(o), set())

    def test_13_atomic_migration_refused(self):
        before = job_count()
        r = self.manage("migrate", "ledger", "0004", ok=False)
        self.assertIn("The Backfill operation cannot run in an atomic migration", r.stderr)
        self.assertIn("Set atomic = False on the migration", r.stderr)
        self.assertEqual(job_count(), before)
        # the AddField before it was rolled back with the migration's transaction
        self.assertEqual(psql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'ledger_entry'::regclass"
                              " AND attname = 'extra'"), "0")

    # -- the way back ---------------------------------------------------

    def test_14_reverse(self):
        r = self.manage("migrate", "shop", "0001")
        for m in ("0007_order_coupon_fk", "0006_order_customer_fk", "0005_order_idx_created_at",
                  "0004_order_tracking_id_not_null", "0003_backfill_order_tracking_id", "0002_order_tracking_id"):
            self.assertIn("Unapplying shop.%s... OK" % m, r.stdout)
        self.assertEqual(psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'shop_order'::regclass"
                              " AND contype = 'f'"), "0")
        self.assertEqual(psql("SELECT to_regclass('idx_created_at') IS NULL"), "t")
        self.assertEqual(psql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'shop_order'::regclass"
                              " AND attname = 'tracking_id' AND NOT attisdropped"), "0")
        self.assertEqual(psql("SELECT count(*) FROM shop_order WHERE amount <> id % 150"), "0")
        self.assertEqual(psql("SELECT max(name) FROM django_migrations WHERE app = 'shop'"), "0001_initial")
        # and forwards again, now that every step has been there and back
        self.manage("migrate", "shop", "0003")

    def test_15_keep_old_values(self):
        self.manage("migrate", "undo", "0001")
        psql("INSERT INTO undo_thing (v) SELECT i FROM generate_series(1, 100) i")
        if not has_argument("mig_start_backfill", "keep_old_values"):
            r = self.manage("migrate", "undo", "0002", ok=False)
            self.assertIn("this database's pg_mig has no mig_start_backfill(keep_old_values => ...), "
                          "which Backfill needs", r.stderr)
            self.assertEqual(psql("SELECT sum(v) FROM undo_thing"), "5050")
            self.skipTest("mig_start_backfill has no keep_old_values in this pg_mig: the refusal is "
                          "tested, Backfill(keep_old_values=True) and its reversal are not")
        self.manage("migrate", "undo", "0002")
        self.assertEqual(psql("SELECT sum(v) FROM undo_thing"), "10100")
        if not has_function("mig_revert"):
            r = self.manage("migrate", "undo", "0001", ok=False)
            self.assertIn("this database's pg_mig has no mig_revert()", r.stderr)
            self.skipTest("mig_revert() is not in this pg_mig: the reversal's refusal is tested, not the revert")
        self.manage("migrate", "undo", "0001")
        self.assertEqual(psql("SELECT sum(v) FROM undo_thing"), "5050")

    def test_16_delete_rows(self):
        self.manage("migrate", "purge", "0001")
        psql("INSERT INTO purge_event (kind) SELECT (ARRAY['debug', 'info', 'it''s 100% done', 'its 100'])[i % 4 + 1]"
             " FROM generate_series(1, 1000) i")
        if not has_function("mig_start_delete"):
            r = self.manage("migrate", "purge", "0002", ok=False)
            self.assertIn("this database's pg_mig has no mig_start_delete(), which DeleteRows needs", r.stderr)
            self.assertEqual(psql("SELECT count(*) FROM purge_event"), "1000")
            self.skipTest("mig_start_delete() is not in this database's pg_mig (pg_proc): the refusal is "
                          "tested, DeleteRows is not")
        self.manage("migrate", "purge", "0002")
        self.assertEqual(psql("SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) || ' ' || count(*)"
                              " FROM purge_event"), "info,its 100 500")
        # Django's LIKE pattern, its parameter quoted by the server into the clause
        self.assertIn("LIKE E'it''s 100\\\\%%'",
                      psql("SELECT where_clause FROM mig_jobs ORDER BY job_id DESC LIMIT 1"))

    # -- rerun: every step exactly once, however migrate is interrupted ---

    BUMP_KEY = "django:default:rerun:0002_bump:1"
    ACCOUNTS = 3000

    def amounts(self):
        """amounts: 'rows whose amount is id + 0 | + 1 | + other'."""
        return psql("SELECT count(*) FILTER (WHERE amount = id) || '|' || count(*) FILTER (WHERE amount = id + 1)"
                    " || '|' || count(*) FILTER (WHERE amount NOT IN (id, id + 1)) FROM rerun_account")

    def test_20_interrupted_before_the_job(self):
        self.manage("migrate", "rerun", "0001")
        psql("INSERT INTO rerun_account (id, amount) SELECT i, i FROM generate_series(1, %d) i" % self.ACCOUNTS)
        before = job_count()
        lock = AdvisoryLock(4201)
        try:
            proc = self.background("migrate", "rerun", "0002")
            wait_until("migrate waits before the Backfill", lock.waiting)
            rc, out, err = self.interrupt(proc, then=lock.release)
        finally:
            lock.release()
        self.assertNotEqual(rc, 0)
        self.assertEqual(job_count(), before)
        self.assertEqual(self.amounts(), "%d|0|0" % self.ACCOUNTS)

    def test_21_interrupted_during_the_walk_and_after_it(self):
        before = job_count()
        after = AdvisoryLock(4202)
        try:
            proc = self.background("migrate", "rerun", "0002")
            wait_until("the backfill has done a chunk",
                       lambda: (key_job(self.BUMP_KEY, "rows_done") or "0") != "0")
            job = key_job(self.BUMP_KEY, "job_id")
            # paused in the middle, then Ctrl-C: one line, exit 130, no traceback
            psql("SELECT mig_pause(%s)" % job)
            wait_until("the job is paused", lambda: key_job(self.BUMP_KEY) == "paused")
            rc, out, err = self.interrupt(proc)
            self.assertEqual(rc, 130, out + err)
            self.assertIn("pg_mig job %s goes on in the server; run migrate again to follow it" % job, err)
            self.assertNotIn("Traceback", err)
            self.assertNotIn("KeyboardInterrupt", err)
            # again: the paused job is resumed and followed to its end, then
            # Ctrl-C while migrate waits after it
            proc = self.background("migrate", "rerun", "0002")
            wait_until("migrate waits after the Backfill", after.waiting)
            self.assertEqual(key_job(self.BUMP_KEY), "succeeded")
            rc, out, err = self.interrupt(proc, then=after.release)
            self.assertIn("Backfilling rerun_account: going on with pg_mig job %s (was paused)" % job, out)
            self.assertNotEqual(rc, 0)
        finally:
            after.release()
        self.assertEqual(psql("SELECT count(*) FROM django_migrations WHERE app = 'rerun' AND name = '0002_bump'"),
                         "0")
        # and again: the step is done, no second job
        r = self.manage("migrate", "rerun", "0002")
        sys.stdout.write("\n" + r.stdout)
        self.assertIn("Backfilling rerun_account: done already by pg_mig job %s" % job, r.stdout)
        self.assertEqual(job_count(), before + 1)
        self.assertEqual(self.amounts(), "0|%d|0" % self.ACCOUNTS)

    def test_22_interrupted_during_the_reverse(self):
        job = key_job(self.BUMP_KEY, "job_id")
        prefix = self.BUMP_KEY + ":revert:"
        proc = self.background("migrate", "rerun", "0001")
        wait_until("the revert has done a chunk",
                   lambda: psql("SELECT coalesce(max(rows_done), 0) FROM mig_jobs WHERE job_key = '%s%s'"
                                % (prefix, job)) != "0")
        revert = key_job(prefix + job, "job_id")
        psql("SELECT mig_pause(%s)" % revert)
        wait_until("the revert is paused", lambda: key_job(prefix + job) == "paused")
        rc, out, err = self.interrupt(proc)
        self.assertEqual(rc, 130, out + err)
        self.assertIn("pg_mig job %s goes on in the server" % revert, err)
        self.assertNotIn("Traceback", err)
        # migrate back again: the same revert goes on; the key is released
        r = self.manage("migrate", "rerun", "0001")
        sys.stdout.write("\n" + r.stdout)
        self.assertIn("going on with pg_mig job %s (was paused)" % revert, r.stdout)
        self.assertEqual(key_jobs(prefix), 1)
        self.assertEqual(key_job(self.BUMP_KEY), "")
        self.assertEqual(self.amounts(), "%d|0|0" % self.ACCOUNTS)
        # forwards again: the step is done again, exactly once
        before = job_count()
        self.manage("migrate", "rerun", "0002")
        self.assertEqual(job_count(), before + 1)
        self.assertNotEqual(key_job(self.BUMP_KEY, "job_id"), job)
        self.assertEqual(self.amounts(), "0|%d|0" % self.ACCOUNTS)

    def test_23_unmanaged_model(self):
        psql("INSERT INTO rerun_legacy (id, n) SELECT i, i FROM generate_series(1, 100) i")
        r = self.manage("migrate", "rerun", "0003")
        sys.stdout.write("\n" + r.stdout)
        # n * 2 on every row, then the rows above 150 deleted: the table really changed
        self.assertEqual(psql("SELECT count(*) || ' ' || sum(n) FROM rerun_legacy"),
                         "75 %d" % sum(2 * i for i in range(1, 76)))
        self.assertEqual(key_job("django:default:rerun:0003_legacy:0"), "succeeded")
        self.assertEqual(key_job("django:default:rerun:0003_legacy:1"), "succeeded")

    def test_24_set_not_null_again_after_failure(self):
        psql("INSERT INTO rerun_owner (id, name) SELECT i, 'o' || i FROM generate_series(1, 10) i;"
             "INSERT INTO rerun_item (id, code, owner_id) SELECT i, CASE WHEN i % 50 <> 0 THEN 'c' || i END,"
             " i % 12 FROM generate_series(1, 1000) i")
        key = "django:default:rerun:0004_item_code_not_null:0"
        r = self.manage("migrate", "rerun", "0004", ok=False)
        sys.stdout.write("\n" + r.stdout + r.stderr)
        job = key_job(key, "job_id")
        self.assertEqual(key_job(key), "failed")
        self.assertNotIn("Traceback", r.stderr)
        self.assertNotIn("mig_start_backfill", r.stderr)
        self.assertIn("run migrate again: it resumes job %s" % job, r.stderr)
        psql("UPDATE rerun_item SET code = 'none' WHERE code IS NULL")
        r = self.manage("migrate", "rerun", "0004")
        sys.stdout.write("\n" + r.stdout)
        self.assertIn("going on with pg_mig job %s (was failed)" % job, r.stdout)
        self.assertEqual(key_job(key, "job_id"), job)
        self.assertEqual(key_job(key), "succeeded")
        self.assertEqual(psql("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'rerun_item'::regclass"
                              " AND attname = 'code'"), "t")

    def test_25_add_index_again_after_interrupt(self):
        key = "django:default:rerun:0005_item_code_index:0"
        before = job_count()
        proc = self.background("migrate", "rerun", "0005")
        wait_until("the index job is there", lambda: key_job(key) != "")
        rc, out, err = self.interrupt(proc)
        self.assertNotIn("Traceback", err)
        r = self.manage("migrate", "rerun", "0005")
        sys.stdout.write("\n" + r.stdout + r.stderr)
        self.assertEqual(job_count(), before + 1)
        self.assertEqual(key_job(key), "succeeded")
        self.assertEqual(psql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'rerun_item_code'::regclass"), "t")

    def test_26_add_foreign_key_again_after_failure(self):
        key = "django:default:rerun:0006_item_owner_fk:0"
        before = job_count()
        r = self.manage("migrate", "rerun", "0006", ok=False)
        sys.stdout.write("\n" + r.stdout + r.stderr)
        job = key_job(key, "job_id")
        self.assertEqual(key_job(key), "failed")
        self.assertNotIn("Traceback", r.stderr)
        # the way out in Django's words, not SQL's
        self.assertNotIn("mig_add_foreign_key()", r.stderr)
        self.assertIn('AddForeignKey(..., orphans="delete")', r.stderr)
        self.assertIn("run migrate again: it resumes job %s" % job, r.stderr)
        psql("UPDATE rerun_item SET owner_id = NULL WHERE owner_id NOT IN (SELECT id FROM rerun_owner)")
        r = self.manage("migrate", "rerun", "0006")
        sys.stdout.write("\n" + r.stdout)
        self.assertIn("going on with pg_mig job %s (was failed)" % job, r.stdout)
        self.assertEqual(job_count(), before + 1)
        self.assertEqual(key_job(key), "succeeded")
        self.assertEqual(fk_attributes("rerun_item", "rerun_owner"),
                         "deferrable=t deferred=t on_update=a on_delete=a match=s valid=t")
        # job control on the finished foreign-key job: the hint in Django's terms
        r = self.manage("mig_pause", job, ok=False)
        self.assertIn("already", r.stderr)
        self.assertNotIn("mig_add_foreign_key", r.stderr)
        self.assertNotIn("mig_start_backfill", r.stderr)
        self.assertIn("\"manage.py mig_status %s\" shows how" % job, r.stderr)

    def test_27_foreign_key_touches_only_its_own_constraint(self):
        # back (the job's constraint dropped, its key forgotten), then a
        # table owner's constraints on the column, one named to break out
        # of a quoted identifier pasted by the client
        self.manage("migrate", "rerun", "0005")
        self.assertEqual(key_job("django:default:rerun:0006_item_owner_fk:0"), "")
        self.assertEqual(psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'rerun_item'::regclass"
                              " AND contype = 'f'"), "0")
        evil = 'a";CREATE ROLE mig_pwned SUPERUSER;--'
        owner = DB + "_owner"   # roles are the cluster's: one per database of run.sh
        psql("CREATE ROLE %s;"
             "ALTER TABLE rerun_item OWNER TO %s;"
             "GRANT REFERENCES ON rerun_owner TO %s;"
             "SET ROLE %s;" % (owner, owner, owner, owner) +
             "ALTER TABLE rerun_item ADD CONSTRAINT a FOREIGN KEY (owner_id) REFERENCES rerun_owner (id);"
             "ALTER TABLE rerun_item ADD CONSTRAINT \"%s\" FOREIGN KEY (owner_id) REFERENCES rerun_owner (id);"
             "RESET ROLE" % evil.replace('"', '""'))
        theirs = ("SELECT string_agg(conname || ' ' || condeferrable, ', ' ORDER BY conname) FROM pg_constraint"
                  " WHERE conrelid = 'rerun_item'::regclass AND conname IN ('a', '%s')" % evil.replace("'", "''"))
        self.assertEqual(psql(theirs), "a false, %s false" % evil)
        r = self.manage("migrate", "rerun", "0006")
        sys.stdout.write("\n" + r.stdout)
        self.assertEqual(psql(theirs), "a false, %s false" % evil)
        self.assertEqual(psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'rerun_item'::regclass"
                              " AND contype = 'f' AND condeferrable"), "1")
        self.manage("migrate", "rerun", "0005")
        self.assertEqual(psql(theirs), "a false, %s false" % evil)
        self.assertEqual(psql("SELECT count(*) FROM pg_roles WHERE rolname = 'mig_pwned'"), "0")
        self.manage("migrate", "rerun", "0006")
        self.assertEqual(psql("SELECT count(*) FROM pg_roles WHERE rolname = 'mig_pwned'"), "0")



if __name__ == "__main__":
    unittest.main(verbosity=2)

"""
test/django/test_backend.py -- the django_pg_mig.backends.postgresql backend
("safe by default") against a real sandbox (run by run.sh, with the
environment of test_django).  The project's migrations are written by
makemigrations, not by hand: models v1 are migrated, the orders table is
filled (20,000 rows; "big" is PG_MIG_BIG_TABLE_ROWS = 5000 here) with
orders whose customer is not there, then the models change the way a team
changes them (a nullable field, null=False, db_index, Meta.indexes, a
ForeignKey that gets its constraint over orphans, a new ForeignKey, a
CheckConstraint, an index on a small table) and makemigrations writes 0002.

migrate is killed (SIGKILL) while a job waits, run again (it stops at the
orphans, with a hint), and once more after the orphans are fixed: every
step ran once, each unsafe one as a pg_mig job of its kind, and the schema
is what plain Django makes of the same migrations (pg_catalog compared with
a database migrated by Django's own backend).
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

from project import write_project

SRC = os.environ["PGMIG_SOURCE_DIR"]
DB = os.environ["PGMIG_DB"]
PLAIN_DB = DB + "_plain"
DRIVER = os.environ.get("PGMIG_DRIVER", "psycopg2")
PY = shlex.split(os.environ.get("PGMIG_DJANGO_PYTHON", "/usr/bin/python3"))
OPTIONS = json.loads(os.environ.get("PGMIG_DJANGO_OPTIONS") or "{}")
DEPRECATIONS_IN = os.environ.get("PGMIG_DEPRECATIONS_IN", r"django_pg_mig(\.|$)")

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django_pg_mig", "bigapp", "autoapp"]
DATABASES = {"default": {
    "ENGINE": "django_pg_mig.backends.postgresql",
    "NAME": %(db)r, "USER": "postgres", "HOST": %(host)r, "PORT": %(port)r,
    "OPTIONS": %(options)r,
}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PG_MIG_BIG_TABLE_ROWS = 5000
PG_MIG_PROGRESS_INTERVAL = 0.5
"""

# the same project on Django's own backend, in another database
PLAIN_SETTINGS = """
from proj.settings import *  # noqa
DATABASES = {"default": dict(DATABASES["default"], ENGINE="django.db.backends.postgresql",
                             NAME=%(db)r)}
"""

MANAGE = """
import os, sys, warnings
for category in (DeprecationWarning, PendingDeprecationWarning):
    warnings.filterwarnings("error", category=category, module=os.environ["PGMIG_DEPRECATIONS_IN"])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

MODELS_V1 = """
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=50)


class Coupon(models.Model):
    code = models.CharField(max_length=20)


class Order(models.Model):
    amount = models.IntegerField(null=True)
    code = models.CharField(max_length=20, null=True)
    qty = models.IntegerField(default=1)
    customer = models.ForeignKey(Customer, models.DO_NOTHING, null=True, db_constraint=False,
                                 db_index=False)
"""

MODELS_V2 = """
import django
from django.db import models

# CheckConstraint's check= is condition= since Django 5.1 (check= warns)
CHECK = "condition" if django.VERSION >= (5, 1) else "check"


class Customer(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        indexes = [models.Index(fields=["name"], name="big_customer_name")]


class Coupon(models.Model):
    code = models.CharField(max_length=20)


class Order(models.Model):
    amount = models.IntegerField()
    code = models.CharField(max_length=20, null=True)
    qty = models.IntegerField(default=1, db_index=True)
    customer = models.ForeignKey(Customer, models.DO_NOTHING, null=True, db_index=False)
    coupon = models.ForeignKey(Coupon, models.CASCADE, null=True)
    note = models.TextField(null=True)

    class Meta:
        indexes = [models.Index(fields=["code"], name="big_order_code")]
        constraints = [models.CheckConstraint(name="big_order_qty", **{CHECK: models.Q(qty__gte=0)})]
"""

# DEFAULT_AUTO_FIELD was AutoField: the key and a column that references it
AUTO_V1 = """
from django.db import models


class Account(models.Model):
    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=20)


class Entry(models.Model):
    id = models.AutoField(primary_key=True)
    account = models.ForeignKey(Account, models.CASCADE)
"""

AUTO_V2 = AUTO_V1.replace("models.AutoField", "models.BigAutoField")

# a key that stops being an auto field: Django drops its identity (or the
# serial's sequence) as it changes the type, so it is no type change only
AUTO_V3 = AUTO_V2 + """

class Tag(models.Model):
    id = models.AutoField(primary_key=True)
"""
AUTO_V4 = AUTO_V3.replace("id = models.AutoField(primary_key=True)",
                          "id = models.BigIntegerField(primary_key=True)")

# a third app's index that makemigrations writes, in a migration that stays
# atomic (as one that cannot be edited), and one that opts out
MODELS_V3 = MODELS_V2.replace(
    'indexes = [models.Index(fields=["code"], name="big_order_code")]',
    'indexes = [models.Index(fields=["code"], name="big_order_code"),'
    ' models.Index(fields=["amount"], name="big_order_amount")]')
MODELS_V4 = MODELS_V3.replace(
    ' models.Index(fields=["amount"], name="big_order_amount")]',
    ' models.Index(fields=["amount"], name="big_order_amount"),'
    ' models.Index(fields=["note"], name="big_order_note")]')

MODELS_V5 = MODELS_V4.replace("amount = models.IntegerField()", "amount = models.BigIntegerField()")

# ChangeType written by hand (the operation, not the backend)
CHANGE_TYPE_MIGRATION = """
from django.db import migrations, models
from django_pg_mig.operations import ChangeType


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("bigapp", "0004_note_index")]
    operations = [ChangeType("order", "amount", models.BigIntegerField(), batch_size=5000)]
"""

KEY = "django:default:bigapp:0002_changes:"


def psql(sql, db=DB):
    r = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-p", os.environ["PRIMARY_PORT"],
                        "-d", db, "-c", sql], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("psql failed: %s\n%s" % (sql, r.stderr))
    return r.stdout.strip()


def schema(db, app="bigapp"):
    """schema: what pg_catalog says of the tables of APP in DB (text to compare)."""
    return psql("""
        SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
          SELECT format('column %s.%s %s notnull=%s default=%s identity=%s', c.relname, a.attname,
                        format_type(a.atttypid, a.atttypmod), a.attnotnull,
                        pg_get_expr(d.adbin, d.adrelid), a.attidentity)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE c.relname LIKE 'APP\\_%' AND c.relkind = 'r' AND a.attnum > 0
             AND NOT a.attisdropped
          UNION ALL
          SELECT format('index %s %s valid=%s', i.indexname, i.indexdef, x.indisvalid)
            FROM pg_indexes i JOIN pg_class ic ON ic.relname = i.indexname
            JOIN pg_index x ON x.indexrelid = ic.oid
           WHERE i.tablename LIKE 'APP\\_%'
          UNION ALL
          SELECT format('constraint %s.%s %s %s deferrable=%s deferred=%s valid=%s', c.relname,
                        k.conname, k.contype, pg_get_constraintdef(k.oid), k.condeferrable,
                        k.condeferred, k.convalidated)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
           WHERE c.relname LIKE 'APP\\_%'
          UNION ALL
          SELECT format('sequence %s %s', s.seqrelid::regclass, format_type(s.seqtypid, NULL))
            FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
           WHERE c.relname LIKE 'APP\\_%') s(x)""".replace("APP", app), db)


class BackendTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pgmig-django-backend.")
        conn = {"host": os.environ["PGHOST"], "port": os.environ["PRIMARY_PORT"],
                "options": OPTIONS}
        files = {
            "manage.py": MANAGE,
            "proj/__init__.py": "",
            "proj/settings.py": SETTINGS % dict(conn, db=DB),
            "proj/plain_settings.py": PLAIN_SETTINGS % {"db": PLAIN_DB},
            "bigapp/__init__.py": "",
            "bigapp/migrations/__init__.py": "",
            "bigapp/models.py": MODELS_V1,
            "autoapp/__init__.py": "",
            "autoapp/migrations/__init__.py": "",
            "autoapp/models.py": AUTO_V1,
        }
        cls.env = write_project(cls.dir, files, 'test_backend.py', PGMIG_DEPRECATIONS_IN=DEPRECATIONS_IN)
        psql("CREATE EXTENSION IF NOT EXISTS pg_mig")
        psql("DROP DATABASE IF EXISTS %s" % PLAIN_DB, db="postgres")
        psql("CREATE DATABASE %s" % PLAIN_DB, db="postgres")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        psql("DROP DATABASE IF EXISTS %s" % PLAIN_DB, db="postgres")

    def manage(self, *args, ok=True, settings=None):
        env = self.env if settings is None else dict(self.env, DJANGO_SETTINGS_MODULE=settings)
        r = subprocess.run(PY + ["manage.py"] + list(args), cwd=self.dir, env=env,
                           capture_output=True, text=True, timeout=600)
        r.output = r.stdout + r.stderr
        if ok is True and r.returncode != 0:
            self.fail("manage.py %s exited %d:\n%s" % (" ".join(args), r.returncode, r.output))
        if ok is False and r.returncode == 0:
            self.fail("manage.py %s succeeded but should not have:\n%s" % (" ".join(args), r.output))
        return r

    def jobs(self):
        """jobs: {job key after KEY (INDEX:KIND:NAME): (kind, state, job id)} of 0002's jobs."""
        rows = psql("SELECT substr(job_key, %d), kind, state, job_id FROM mig_jobs"
                    " WHERE left(job_key, %d) = '%s' ORDER BY job_id"
                    % (len(KEY) + 1, len(KEY), KEY))
        out = {}
        for line in rows.splitlines():
            key, kind, state, job_id = line.split("|")
            self.assertNotIn(key, out, "two jobs with the key %s%s:\n%s" % (KEY, key, rows))
            out[key] = (kind, state, int(job_id))
        return out

    def test_00_pip_install_without_network(self):
        # as a Python user installs it: a virtualenv over Debian's Django,
        # no package index (--no-index: nothing may be fetched), bytecode
        # written as usual; the source tree gains nothing untracked
        venv = os.path.join(self.dir, "venv")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
        src = os.path.join(SRC, "integrations", "django")
        for cmd in (["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                    [os.path.join(venv, "bin", "pip"), "install", "--no-index", src],
                    [os.path.join(venv, "bin", "python"), "-c",
                     "import django_pg_mig, django_pg_mig.backends.postgresql.base,"
                     " django_pg_mig.management.commands.makemigrations as m;"
                     " print(django_pg_mig.__file__)"]):
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.dir)
            self.assertEqual(0, r.returncode, "%s:\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
        self.assertTrue(r.stdout.startswith(venv), r.stdout)
        r = subprocess.run(["git", "-C", SRC, "status", "--porcelain", "--untracked-files=all",
                            "--", "integrations/django"], capture_output=True, text=True)
        if r.returncode == 0:   # a source tree without git: nothing to compare
            self.assertEqual([], [line for line in r.stdout.splitlines() if line.startswith("??")])

    def test_01_initial(self):
        self.manage("makemigrations", "bigapp", "autoapp")
        self.manage("migrate")
        psql("INSERT INTO bigapp_customer (name) SELECT 'c' || g FROM generate_series(1, 10) g;"
             "INSERT INTO bigapp_coupon (code) SELECT 'k' || g FROM generate_series(1, 5) g;"
             # customers 11 and 12 are not there: orphans for the foreign key
             "INSERT INTO bigapp_order (amount, code, qty, customer_id)"
             " SELECT g, 'C' || g, 1, g % 12 + 1 FROM generate_series(1, 20000) g;"
             "ANALYZE bigapp_order; ANALYZE bigapp_customer; ANALYZE bigapp_coupon")
        psql("INSERT INTO autoapp_account (name) SELECT 'a' || g FROM generate_series(1, 8000) g;"
             "INSERT INTO autoapp_entry (account_id) SELECT g %% 8000 + 1 FROM generate_series(1, 8000) g;"
             "ANALYZE autoapp_account; ANALYZE autoapp_entry".replace("%%", "%"))
        self.manage("migrate", settings="proj.plain_settings")

    def test_02_makemigrations_writes_atomic_false(self):
        with open(os.path.join(self.dir, "bigapp", "models.py"), "w") as f:
            f.write(textwrap.dedent(MODELS_V2).lstrip())
        # --noinput: amount's NULLs are the team's (option 2 of the question)
        self.manage("makemigrations", "bigapp", "--name", "changes", "--noinput")
        with open(os.path.join(self.dir, "bigapp", "migrations", "0002_changes.py")) as f:
            text = f.read()
        self.assertIn("class Migration(migrations.Migration):\n    atomic = False\n", text)
        with open(os.path.join(self.dir, "bigapp", "migrations", "0001_initial.py")) as f:
            self.assertNotIn("atomic", f.read())
        self.manage("makemigrations", "--check", "--dry-run")

    def test_03_sqlmigrate_shows_the_jobs(self):
        before = psql("SELECT count(*) FROM mig_jobs")
        out = self.manage("sqlmigrate", "bigapp", "0002").stdout
        for call in ("mig_create_index(", "mig_set_not_null(", "mig_add_foreign_key(",
                     "mig_validate_constraint(", "NOT VALID", "lock_timeout"):
            self.assertIn(call, out)
        self.assertIn("index_name => 'big_order_code'", out)
        # the small table's index: Django's own statement
        self.assertIn('CREATE INDEX "big_customer_name" ON "bigapp_customer"', out)
        self.assertEqual(before, psql("SELECT count(*) FROM mig_jobs"))

    def test_03_lint_names_what_the_backend_does(self):
        found = json.loads(self.manage("mig_lint", "--json").stdout)
        ops = sorted(f["operation"] for f in found)
        self.assertTrue(all(f["table"] == "bigapp_order" for f in found), found)
        for word in ("field amount", "field qty", "field customer", "field coupon",
                     "index big_order_code", "constraint big_order_qty"):
            self.assertEqual(1, sum(word in op for op in ops), "%s in %s" % (word, ops))
        self.assertEqual(6, len(found), ops)
        for f in found:
            self.assertIn("the django_pg_mig backend runs it as a pg_mig", f["instead"], f)
            self.assertTrue(f["safe"], f)
        # all of them made safe by the backend: nothing for CI to fail on
        self.manage("mig_lint", "--check")
        r = self.manage("check", "--database", "default", "--tag", "pg_mig", "--fail-level", "WARNING")
        self.assertNotIn("pg_mig.W", r.output)

    def test_04_killed_while_a_job_waits(self):
        # a transaction with a snapshot: CREATE INDEX CONCURRENTLY waits for it
        holder = subprocess.Popen(["psql", "-XAtq", "-p", os.environ["PRIMARY_PORT"], "-d", DB],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'held';\n")
        holder.stdin.flush()
        self.assertEqual("held", holder.stdout.readline().strip())
        log = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen(PY + ["manage.py", "migrate", "bigapp"], cwd=self.dir, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

        def output():
            log.seek(0)
            return log.read()
        try:
            deadline = time.monotonic() + 300
            while not any(kind == "index" and state == "running"
                          for kind, state, _ in self.jobs().values()):
                self.assertIsNone(proc.poll(), "migrate ended before a job ran:\n%s" % output())
                self.assertLess(time.monotonic(), deadline, "no index job ran")
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            print("\n" + output())
        finally:
            holder.stdin.write("COMMIT;\n")
            holder.stdin.close()
            holder.wait(timeout=60)
        self.assertNotEqual(0, proc.returncode)
        self.__class__.killed = self.jobs()

    def test_05_rerun_stops_at_the_orphans(self):
        r = self.manage("migrate", "bigapp", ok=False)
        print("\n" + r.output)
        self.assertIn("orphan", r.output.lower())
        self.assertIn("run migrate again", r.output)
        fks = [v for k, v in self.jobs().items() if ":foreign_key:bigapp_order_customer_id_" in k]
        self.assertEqual([("foreign_key", "failed")], [fk[:2] for fk in fks], self.jobs())

    def test_06_rerun_after_the_fix(self):
        psql("UPDATE bigapp_order SET customer_id = NULL WHERE customer_id > 10")
        before = self.jobs()
        r = self.manage("migrate", "bigapp")
        self.assertIn("done already", r.output)
        after = self.jobs()
        # every job of the runs before goes on with its id, none is started twice
        for key, (_kind, _state, job_id) in before.items():
            self.assertEqual(job_id, after[key][2], key)
        for key, (_kind, _state, job_id) in self.killed.items():
            self.assertEqual(job_id, after[key][2], key)
        kinds = sorted(kind for kind, state, _ in after.values())
        self.assertTrue(all(state == "succeeded" for _, state, _ in after.values()), after)
        # qty's index, code's index, coupon's index; amount; customer, coupon; the check
        self.assertEqual(["foreign_key", "foreign_key", "index", "index", "index", "not_null",
                          "validate"], kinds, after)
        self.assertFalse(any("big_customer_name" in key for key in after), after)
        self.assertEqual("", psql("SELECT * FROM django_pg_mig_done WHERE NOT done"))

    def test_07_schema_as_plain_django(self):
        self.manage("migrate", "bigapp", settings="proj.plain_settings")
        self.assertEqual(schema(PLAIN_DB), schema(DB))
        self.manage("makemigrations", "--check", "--dry-run")

    def write_models(self, app, text):
        with open(os.path.join(self.dir, app, "models.py"), "w") as f:
            f.write(textwrap.dedent(text).lstrip())

    def test_08_atomic_migration_falls_back_with_a_warning(self):
        self.write_models("bigapp", MODELS_V3)
        self.manage("makemigrations", "bigapp", "--name", "amount_index")
        path = os.path.join(self.dir, "bigapp", "migrations", "0003_amount_index.py")
        with open(path) as f:
            text = f.read()
        self.assertIn("    atomic = False\n", text)
        with open(path, "w") as f:   # as a migration that cannot be edited: atomic
            f.write(text.replace("    atomic = False\n", ""))
        # CI is told: mig_lint --check and the system check fail on it
        self.manage("mig_lint", "--check", ok=False)
        r = self.manage("check", "--deploy", "--tag", "pg_mig", "--fail-level", "WARNING", ok=False)
        self.assertEqual(1, r.output.count("(pg_mig.W001)"), r.output)
        self.assertIn("bigapp.0003_amount_index operation 0 (Create index big_order_amount", r.output)
        self.assertIn("HINT: Instead: the django_pg_mig backend runs Django's DDL under lock_timeout"
                      " with retries, as the migration is atomic", r.output)
        jobs = psql("SELECT count(*) FROM mig_jobs")
        r = self.manage("migrate", "bigapp")
        self.assertIn("Warning: CREATE INDEX big_order_amount on bigapp_order (about 20,000 rows) "
                      "runs as plain DDL under lock_timeout with retries", r.stderr)
        self.assertEqual(jobs, psql("SELECT count(*) FROM mig_jobs"))
        self.assertEqual("1", psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'big_order_amount'"))

    def test_09_opt_out(self):
        self.write_models("bigapp", MODELS_V4)
        self.manage("makemigrations", "bigapp", "--name", "note_index")
        path = os.path.join(self.dir, "bigapp", "migrations", "0004_note_index.py")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("    atomic = False\n", "    atomic = False\n    pg_mig = False\n"))
        out = self.manage("sqlmigrate", "bigapp", "0003").stdout
        self.assertIn("-- pg_mig: Warning: CREATE INDEX big_order_amount on bigapp_order", out)
        self.assertIn("-- pg_mig: bigapp_order has about 20,000 rows: the next statement runs under"
                      " lock_timeout", out)
        self.assertNotIn("pg_mig", self.manage("sqlmigrate", "bigapp", "0004").stdout)
        jobs = psql("SELECT count(*) FROM mig_jobs")
        r = self.manage("migrate", "bigapp")
        self.assertNotIn("Warning", r.output)
        self.assertEqual(jobs, psql("SELECT count(*) FROM mig_jobs"))
        self.assertEqual("1", psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'big_order_note'"))

    def test_11_change_type_operation(self):
        if psql("SELECT count(*) FROM pg_proc WHERE proname = 'mig_change_type'") == "0":
            self.skipTest("mig_change_type() is not in this database's pg_mig: ChangeType not tested")
        self.write_models("bigapp", MODELS_V5)
        with open(os.path.join(self.dir, "bigapp", "migrations", "0005_amount_bigint.py"), "w") as f:
            f.write(textwrap.dedent(CHANGE_TYPE_MIGRATION).lstrip())
        self.manage("makemigrations", "--check", "--dry-run")
        total = psql("SELECT sum(amount) FROM bigapp_order")
        key = "django:default:bigapp:0005_amount_bigint:0"
        # given up half-way: a transaction that holds a snapshot keeps the
        # job's index copy waiting, the job is cancelled (manage.py
        # mig_cancel), and migrate stops; run again, it stops with the hint
        # to forget the job; manage.py mig_forget drops what the job built
        # (the column keeps its type), and migrate then changes it anew
        holder = subprocess.Popen(["psql", "-XAtq", "-p", os.environ["PRIMARY_PORT"], "-d", DB],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'held';\n")
        holder.stdin.flush()
        self.assertEqual("held", holder.stdout.readline().strip())
        proc = subprocess.Popen(PY + ["manage.py", "migrate", "bigapp"], cwd=self.dir, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while "building copies" not in psql(
                    "SELECT coalesce(max(step), '') FROM mig_jobs WHERE job_key = '%s'" % key):
                if proc.poll() is not None:
                    self.fail("migrate ended before the index copies:\n%s" % proc.communicate()[0])
                self.assertLess(time.monotonic(), deadline, "the job did not copy the indexes")
                time.sleep(0.1)
            given_up = psql("SELECT job_id FROM mig_jobs WHERE job_key = '%s'" % key)
            self.manage("mig_cancel", given_up)
            out = proc.communicate(timeout=300)[0]
        finally:
            holder.stdin.write("COMMIT;\n")
            holder.stdin.close()
            holder.wait(timeout=60)
        self.assertNotEqual(0, proc.returncode, out)
        self.assertIn("cancelled", out)
        r = self.manage("migrate", "bigapp", ok=False)
        self.assertIn('"manage.py mig_forget %s"' % given_up, r.output)
        self.assertEqual("mig_new_amount", psql(
            "SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = 'bigapp_order'::regclass"
            " AND attname LIKE 'mig\\_%' AND NOT attisdropped"))
        self.manage("mig_forget", given_up)
        self.assertEqual("0", psql(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'bigapp_order'::regclass"
            " AND attname LIKE 'mig\\_%' AND NOT attisdropped"))
        self.assertEqual("integer", psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                         " WHERE attrelid = 'bigapp_order'::regclass AND attname = 'amount'"))
        self.manage("migrate", "bigapp")
        self.assertEqual("change_type|succeeded", psql(
            "SELECT kind, state FROM mig_jobs WHERE job_key = 'django:default:bigapp:0005_amount_bigint:0'"))
        self.assertEqual("bigint", psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                        " WHERE attrelid = 'bigapp_order'::regclass AND attname = 'amount'"))
        self.assertEqual(total, psql("SELECT sum(amount) FROM bigapp_order"))
        self.assertIn("bigint", psql("SELECT indexdef FROM pg_indexes WHERE indexname = 'big_order_amount'")
                      + psql("SELECT format_type(a.atttypid, a.atttypmod) FROM pg_index x"
                             " JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_attribute a"
                             " ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]"
                             " WHERE c.relname = 'big_order_amount'"))
        self.manage("makemigrations", "--check", "--dry-run")
        # reversed: mig_revert of the job swaps the column back and releases
        # the job's key, so migrating forward again changes it again
        first = psql("SELECT job_id FROM mig_jobs WHERE job_key = '%s'" % key)
        self.manage("migrate", "bigapp", "0004")
        self.assertEqual("integer", psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                         " WHERE attrelid = 'bigapp_order'::regclass AND attname = 'amount'"))
        self.assertEqual(total, psql("SELECT sum(amount) FROM bigapp_order"))
        self.assertEqual("succeeded", psql("SELECT state FROM mig_jobs WHERE job_key = '%s:revert:%s'"
                                           % (key, first)))
        self.assertEqual("", psql("SELECT job_id FROM mig_jobs WHERE job_key = '%s'" % key))
        self.manage("migrate", "bigapp")
        self.assertEqual("change_type|succeeded", psql(
            "SELECT kind, state FROM mig_jobs WHERE job_key = '%s' AND job_id <> %s" % (key, first)))
        self.assertEqual("bigint", psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                        " WHERE attrelid = 'bigapp_order'::regclass AND attname = 'amount'"))
        self.assertEqual(total, psql("SELECT sum(amount) FROM bigapp_order"))
        # a ChangeType that does not wait (wait=False), reversed before its
        # swap: refused while its job runs, with the hint to cancel it;
        # cancelled, migrating back forgets it (the column kept its type,
        # the job's column is dropped, its key released)
        self.manage("migrate", "bigapp", "0004")
        path = os.path.join(self.dir, "bigapp", "migrations", "0005_amount_bigint.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(CHANGE_TYPE_MIGRATION).lstrip().replace(
                "batch_size=5000)", "batch_size=5000, wait=False)"))
        holder = subprocess.Popen(["psql", "-XAtq", "-p", os.environ["PRIMARY_PORT"], "-d", DB],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'held';\n")
        holder.stdin.flush()
        self.assertEqual("held", holder.stdout.readline().strip())
        try:
            self.manage("migrate", "bigapp")
            running = psql("SELECT job_id FROM mig_jobs WHERE job_key = '%s'" % key)
            r = self.manage("migrate", "bigapp", "0004", ok=False)
            self.assertIn('"manage.py mig_cancel %s"' % running, r.output)
            self.manage("mig_cancel", running)
            deadline = time.monotonic() + 120
            while psql("SELECT state FROM mig_jobs WHERE job_id = %s" % running) != "cancelled":
                self.assertLess(time.monotonic(), deadline, "job %s was not cancelled" % running)
                time.sleep(0.1)
            self.manage("migrate", "bigapp", "0004")
        finally:
            holder.stdin.write("COMMIT;\n")
            holder.stdin.close()
            holder.wait(timeout=60)
        self.assertEqual("integer", psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                         " WHERE attrelid = 'bigapp_order'::regclass AND attname = 'amount'"))
        self.assertEqual("0", psql(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'bigapp_order'::regclass"
            " AND attname LIKE 'mig\\_%' AND NOT attisdropped"))
        self.assertEqual("1", psql("SELECT count(*) FROM mig_job_events WHERE job_id = %s"
                                   " AND event = 'new column dropped'" % running))
        self.assertEqual("", psql("SELECT job_id FROM mig_jobs WHERE job_key = '%s'" % key))
        with open(path, "w") as f:
            f.write(textwrap.dedent(CHANGE_TYPE_MIGRATION).lstrip())
        self.manage("migrate", "bigapp")
        self.assertEqual("bigint", psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                        " WHERE attrelid = 'bigapp_order'::regclass AND attname = 'amount'"))
        self.assertEqual(total, psql("SELECT sum(amount) FROM bigapp_order"))

    def test_10_big_auto_field(self):
        if psql("SELECT count(*) FROM pg_proc WHERE proname = 'mig_change_type'") == "0":
            self.skipTest("mig_change_type() is not in this database's pg_mig: the AutoField ->"
                          " BigAutoField change as a change_type job not tested")
        self.write_models("autoapp", AUTO_V2)
        self.manage("makemigrations", "autoapp", "--name", "big_ids")
        out = self.manage("sqlmigrate", "autoapp", "0002").stdout
        self.assertIn("mig_change_type(", out)
        self.assertIn("convert_referencing => 'true'", out)
        self.assertIn("convert_referencing => 'true'", out.split("autoapp_entry")[0])
        # a serial key (Django < 4.1) or an identity column (since): the
        # same path either way
        serial = psql("SELECT count(*) FROM pg_attrdef WHERE adrelid = 'autoapp_entry'::regclass") == "1"
        last = psql("SELECT last_value FROM autoapp_account_id_seq")
        r = self.manage("migrate", "autoapp")
        jobs = dict(line.split("|", 1) for line in psql(
            "SELECT relation::text, state FROM mig_jobs WHERE kind = 'change_type'"
            " AND job_key LIKE 'django:default:autoapp:0002_big_ids:%'").splitlines())
        # entry's key, which nothing references: a change_type job
        self.assertEqual("succeeded", jobs.get("autoapp_entry"), jobs)
        # account's key, which entry.account_id references: one job with
        # convert_referencing changes both, the foreign key carried over
        self.assertEqual("succeeded", jobs.get("autoapp_account"), jobs)
        self.assertNotIn("Warning: the type change", r.stderr)
        self.assertEqual("bigint|bigint", psql(
            "SELECT string_agg(format_type(atttypid, atttypmod), '|' ORDER BY attrelid::regclass::text)"
            " FROM pg_attribute WHERE (attrelid, attname) IN"
            " (('autoapp_account'::regclass, 'id'), ('autoapp_entry'::regclass, 'account_id'))"))
        self.assertEqual("1", psql(
            "SELECT count(*) FROM mig_jobs WHERE kind = 'change_type'"
            " AND job_key LIKE 'django:default:autoapp:0002_big_ids:%'"
            " AND relation = 'autoapp_account'::regclass"))
        # the identity (or the serial's default) on the new column, its
        # sequence bigint
        self.assertEqual("|" if serial else "d|d", psql(
            "SELECT string_agg(attidentity::text, '|' ORDER BY attrelid::regclass::text)"
            " FROM pg_attribute WHERE attname = 'id'"
            " AND attrelid IN ('autoapp_account'::regclass, 'autoapp_entry'::regclass)"))
        self.assertEqual("bigint", psql(
            "SELECT format_type(seqtypid, NULL) FROM pg_sequence"
            " WHERE seqrelid = pg_get_serial_sequence('autoapp_account', 'id')::regclass"))
        self.manage("migrate", "autoapp", settings="proj.plain_settings")
        self.assertEqual(schema(PLAIN_DB, "autoapp"), schema(DB, "autoapp"))
        self.assertEqual("8000", psql("SELECT count(*) FROM autoapp_entry e JOIN autoapp_account a"
                                      " ON a.id = e.account_id"))
        self.manage("makemigrations", "--check", "--dry-run")
        # the next key continues after the last one handed out
        self.assertEqual(str(int(last) + 1), psql(
            "INSERT INTO autoapp_account (name) VALUES ('next') RETURNING id"))

    def test_12_auto_field_to_plain_key(self):
        if psql("SELECT count(*) FROM pg_proc WHERE proname = 'mig_change_type'") == "0":
            self.skipTest("mig_change_type() is not in this database's pg_mig")
        self.write_models("autoapp", AUTO_V3)
        self.manage("makemigrations", "autoapp", "--name", "tag")
        self.manage("migrate", "autoapp")
        psql("INSERT INTO autoapp_tag SELECT FROM generate_series(1, 8000); ANALYZE autoapp_tag")
        # AutoField -> BigIntegerField on a big table: Django's DDL (the
        # identity or the serial's sequence dropped), not a change_type job
        # that would keep them
        self.write_models("autoapp", AUTO_V4)
        self.manage("makemigrations", "autoapp", "--name", "plain_key")
        self.manage("migrate", "autoapp")
        self.assertEqual("0", psql("SELECT count(*) FROM mig_jobs WHERE relation = 'autoapp_tag'::regclass"))
        self.manage("migrate", "autoapp", settings="proj.plain_settings")
        self.assertEqual(schema(PLAIN_DB, "autoapp"), schema(DB, "autoapp"))
        self.assertEqual("8000", psql("SELECT count(*) FROM autoapp_tag"))


if __name__ == "__main__":
    unittest.main()

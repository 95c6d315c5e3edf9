"""
test/django/test_lint.py -- manage.py mig_lint against a real sandbox (run
by run.sh after test_django, with the same environment).  The project's
migrations are written by makemigrations, not by hand: models v1 are made
and migrated, the big table is filled and analyzed, then the models change
the way a team changes them (NOT NULL, Meta.indexes, a new ForeignKey, a
CheckConstraint, a column type change, a nullable field, an index on a
small table) and makemigrations writes 0002.  mig_lint must name every
operation that locks the big table and nothing else; --check and the
system check (tag pg_mig) make CI fail on them; after migrate nothing is
left to name.
"""

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import textwrap
import unittest

from project import write_project

SRC = os.environ["PGMIG_SOURCE_DIR"]
DB = os.environ["PGMIG_DB"]
DRIVER = os.environ.get("PGMIG_DRIVER", "psycopg2")
PY = shlex.split(os.environ.get("PGMIG_DJANGO_PYTHON", "/usr/bin/python3"))
OPTIONS = json.loads(os.environ.get("PGMIG_DJANGO_OPTIONS") or "{}")

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django_pg_mig", "lintapp"]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": %(db)r, "USER": "postgres", "HOST": %(host)r, "PORT": %(port)r,
    "OPTIONS": %(options)r,
}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PG_MIG_BIG_TABLE_ROWS = 5000
"""

MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

MODELS_V1 = """
from django.db import models

class Customer(models.Model):
    name = models.CharField(max_length=50)

class Order(models.Model):
    amount = models.IntegerField(null=True)
    code = models.CharField(max_length=20, null=True)
    customer_id_raw = models.BigIntegerField(null=True)
    qty = models.IntegerField(default=1)
"""

# what a team writes next: every change below makes one operation of 0002
MODELS_V2 = """
import django
from django.db import models

# CheckConstraint's check= is condition= since Django 5.1 (check= warns)
CHECK = "condition" if django.VERSION >= (5, 1) else "check"

class Customer(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        indexes = [models.Index(fields=["name"], name="lint_customer_name")]

class Order(models.Model):
    amount = models.IntegerField(null=False, default=0)
    code = models.CharField(max_length=40, null=True)
    customer_id_raw = models.BigIntegerField(null=True)
    qty = models.BigIntegerField(default=1)
    note = models.TextField(null=True)
    customer = models.ForeignKey(Customer, null=True, on_delete=models.CASCADE, db_index=False)

    class Meta:
        indexes = [models.Index(fields=["code"], name="lint_order_code")]
        constraints = [models.CheckConstraint(name="lint_order_qty", **{CHECK: models.Q(qty__gte=0)})]
"""


class MigLintTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pgmig-django-lint.")
        files = {
            "manage.py": MANAGE,
            "proj/__init__.py": "",
            "proj/settings.py": SETTINGS % {"db": DB, "host": os.environ["PGHOST"],
                                            "port": os.environ["PRIMARY_PORT"], "options": OPTIONS},
            "lintapp/__init__.py": "",
            "lintapp/migrations/__init__.py": "",
            "lintapp/models.py": MODELS_V1,
        }
        cls.env = write_project(cls.dir, files, 'test_lint.py')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def manage(self, *args, code=0):
        r = subprocess.run(PY + ["manage.py"] + list(args), cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=600)
        r.output = r.stdout + r.stderr
        if code is not None and r.returncode != code:
            self.fail("manage.py %s exited %d, not %d:\n%s" % (" ".join(args), r.returncode, code, r.output))
        return r

    def psql(self, sql):
        r = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-p", os.environ["PRIMARY_PORT"],
                            "-d", DB, "-c", sql], capture_output=True, text=True)
        self.assertEqual(0, r.returncode, r.stderr)
        return r.stdout.strip()

    def test_lint(self):
        self.manage("makemigrations", "lintapp")
        self.manage("migrate", "lintapp")
        # a big orders table (5,000 rows is "big" here) and a small customers one
        self.psql("INSERT INTO lintapp_order (amount, code, qty)"
                  " SELECT g, 'C' || g, 1 FROM generate_series(1, 20000) g;"
                  " INSERT INTO lintapp_customer (name) SELECT 'c' || g FROM generate_series(1, 10) g;"
                  " ANALYZE lintapp_order; ANALYZE lintapp_customer")
        with open(os.path.join(self.dir, "lintapp", "models.py"), "w") as f:
            f.write(textwrap.dedent(MODELS_V2).lstrip())
        self.manage("makemigrations", "lintapp", "--name", "changes")
        self.manage("makemigrations", "--check", "--dry-run")

        r = self.manage("mig_lint", "--json")
        found = json.loads(r.stdout)
        described = sorted((f["migration"], f["operation"], f["table"]) for f in found)
        ops = [d[1] for d in described]
        # every operation that locks lintapp_order, and only those
        self.assertTrue(all(d[0] == "0002_changes" and d[2] == "lintapp_order" for d in described),
                        described)
        expected_words = ["field amount", "field qty", "field customer", "index lint_order_code",
                          "constraint lint_order_qty"]
        for word in expected_words:
            self.assertEqual(1, sum(word in op for op in ops), "%s in %s" % (word, ops))
        self.assertEqual(len(expected_words), len(found), r.stdout)
        # catalog-only changes and the small table are not named
        self.assertFalse(any("field note" in op for op in ops), ops)
        self.assertFalse(any("field code" in op for op in ops), ops)
        self.assertFalse(any("lint_customer_name" in op for op in ops), ops)
        by_op = {f["operation"]: f for f in found}
        for op, f in by_op.items():
            self.assertEqual(20000, f["rows"], f)
            self.assertTrue(f["lock"] and f["instead"], f)
        nn = [f for f in found if "field amount" in f["operation"]][0]
        self.assertIn("ACCESS EXCLUSIVE", nn["lock"])
        self.assertIn("SetNotNull", nn["instead"])

        text = self.manage("mig_lint").stdout
        self.assertIn("lintapp.0002_changes", text)
        self.assertIn("about 20,000 rows", text)
        self.manage("mig_lint", "--check", code=1)
        self.manage("mig_lint", "--check", "lintapp", code=1)

        # the system check: a warning for each (Django's own backend makes
        # none of them safe), on the database named or with --deploy; a
        # plain check does not read the database
        for args in (["--database", "default"], ["--deploy"]):
            r = self.manage("check", "--tag", "pg_mig", "--fail-level", "WARNING", *args, code=1)
            self.assertEqual(len(found), r.output.count("(pg_mig.W001)"), r.output)
            self.assertIn("lintapp.0002_changes operation", r.output)
            self.assertIn("on lintapp_order (about 20,000 rows) when it is migrated", r.output)
            self.assertIn("HINT: Instead: django_pg_mig.operations.SetNotNull('order', 'amount')",
                          r.output)
        r = self.manage("check", "--tag", "pg_mig", "--fail-level", "WARNING")
        self.assertNotIn("pg_mig.W", r.output)

        self.manage("migrate", "lintapp")
        r = self.manage("mig_lint", "--check")
        self.assertIn("No unapplied operation locks a table of 5,000 rows or more.", r.stdout)
        r = self.manage("check", "--deploy", "--tag", "pg_mig", "--fail-level", "WARNING")
        self.assertNotIn("pg_mig.W", r.output)


if __name__ == "__main__":
    unittest.main()

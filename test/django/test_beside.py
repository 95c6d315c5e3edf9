"""
test/django/test_beside.py -- the django_pg_mig backend beside a running
application (run by run.sh, with the environment of test_django).  The
project of test_backend, its migrations written by makemigrations, on a
database of its own: models v1 are migrated and the orders table filled
(20,000 rows; "big" is PG_MIG_BIG_TABLE_ROWS = 5000 here), then models v2
(a nullable field, null=False, db_index, Meta.indexes, two foreign keys, a
CheckConstraint, an index on a small table) make 0002.

0002 is migrated while pgbench writes (clients updating and inserting
orders, each transaction logging its commit in app_writes) and a long
transaction holds a row (of the application's ledger, which the migration
does not alter): every unsafe step runs as a pg_mig job of its kind, the
writers commit while each job runs and after migrate, pgbench loses no
client, and migrate ends while the long transaction is still open, which
then commits.  Nothing here measures time: what is compared is which
commits came after which step started.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

import test_backend as backend
from project import write_project

DB = os.environ["PGMIG_DB"] + "_beside"
KEY = "django:default:bigapp:0002_changes:"

LEDGER = """

class Ledger(models.Model):
    n = models.IntegerField(default=0)
"""

# the application: each transaction updates an order, adds one and logs its
# commit (clock_timestamp(): in the transaction, so before the commit)
WRITER = r"""
\set id random(1, 20000)
BEGIN;
UPDATE bigapp_order SET qty = qty + 1 WHERE id = :id;
INSERT INTO bigapp_order (amount, code, qty) VALUES (:id, 'w', 1);
INSERT INTO app_writes DEFAULT VALUES;
END;
"""


def psql(sql):
    return backend.psql(sql, db=DB)


class BesideTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pgmig-django-beside.")
        conn = {"host": os.environ["PGHOST"], "port": os.environ["PRIMARY_PORT"],
                "options": backend.OPTIONS}
        files = {
            "manage.py": backend.MANAGE,
            "proj/__init__.py": "",
            "proj/settings.py": (backend.SETTINGS % dict(conn, db=DB)).replace(', "autoapp"', ""),
            "bigapp/__init__.py": "",
            "bigapp/migrations/__init__.py": "",
            "bigapp/models.py": backend.MODELS_V1 + LEDGER,
            "writer.sql": WRITER,
        }
        cls.env = write_project(cls.dir, files, "test_beside.py",
                                PGMIG_DEPRECATIONS_IN=backend.DEPRECATIONS_IN)
        backend.psql("DROP DATABASE IF EXISTS %s" % DB, db="postgres")
        backend.psql("CREATE DATABASE %s" % DB, db="postgres")
        psql("CREATE EXTENSION pg_mig")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        backend.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres")

    manage = backend.BackendTest.manage

    def test_01_initial(self):
        self.manage("makemigrations", "bigapp")
        self.manage("migrate")
        psql("INSERT INTO bigapp_customer (name) SELECT 'c' || g FROM generate_series(1, 10) g;"
             "INSERT INTO bigapp_coupon (code) SELECT 'k' || g FROM generate_series(1, 5) g;"
             "INSERT INTO bigapp_order (amount, code, qty, customer_id)"
             " SELECT g, 'C' || g, 1, g % 10 + 1 FROM generate_series(1, 20000) g;"
             "INSERT INTO bigapp_ledger (n) VALUES (0);"
             "CREATE TABLE app_writes (at timestamptz NOT NULL DEFAULT clock_timestamp());"
             "ANALYZE bigapp_order; ANALYZE bigapp_customer; ANALYZE bigapp_coupon")
        with open(os.path.join(self.dir, "bigapp", "models.py"), "w") as f:
            f.write(textwrap.dedent(backend.MODELS_V2 + LEDGER).lstrip())
        self.manage("makemigrations", "bigapp", "--name", "changes", "--noinput")

    def test_02_migrate_beside_writers_and_a_long_transaction(self):
        # the long transaction: a row of the ledger locked, left open
        holder = subprocess.Popen(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-p",
                                   os.environ["PRIMARY_PORT"], "-d", DB],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN;\nUPDATE bigapp_ledger SET n = n + 1 WHERE id = 1"
                           " RETURNING pg_backend_pid();\n")
        holder.stdin.flush()
        holder_pid = holder.stdout.readline().strip()
        self.assertTrue(holder_pid.isdigit(), holder_pid)
        pgbench_log = tempfile.TemporaryFile(mode="w+")
        writers = subprocess.Popen(
            [shutil.which("pgbench") or "pgbench", "-n", "-c", "4", "-j", "2", "-T", "3600",
             "-f", os.path.join(self.dir, "writer.sql"), "-h", os.environ["PGHOST"],
             "-p", os.environ["PRIMARY_PORT"], "-U", "postgres", DB],
            stdout=pgbench_log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            # the writers commit before migrate starts
            self.wait_for_a_write_after("clock_timestamp()", writers)
            started = psql("SELECT clock_timestamp()")
            r = self.manage("migrate", "bigapp")
            print("\n" + r.output)
            ended = psql("SELECT clock_timestamp()")
            # and after it ended
            self.wait_for_a_write_after("'%s'" % ended, writers)
        finally:
            # SIGTERM, not SIGINT: a shell that starts the test in the
            # background (ctest or run.sh under '&') leaves SIGINT ignored
            if writers.poll() is None:
                os.killpg(writers.pid, signal.SIGTERM)
            writers.wait(timeout=60)
        pgbench_log.seek(0)
        log = pgbench_log.read()
        pgbench_log.close()
        self.assertNotIn("aborted", log)
        self.assertNotIn("ERROR", log)

        # the long transaction is the one that was open before migrate
        # started, open still; it commits
        self.assertEqual("idle in transaction|t", psql(
            "SELECT state, xact_start < '%s' FROM pg_stat_activity WHERE pid = %s"
            % (started, holder_pid)))
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        self.assertEqual(0, holder.wait(timeout=60))
        holder.stdout.close()
        self.assertEqual("1", psql("SELECT n FROM bigapp_ledger WHERE id = 1"))

        # every unsafe step of 0002 ran as a pg_mig job of its kind, and the
        # writers committed while each one ran
        rows = psql("SELECT kind, state, job_key,"
                    " (SELECT count(*) FROM app_writes w"
                    "   WHERE w.at > j.created_at AND w.at < j.finished_at)"
                    " FROM mig_jobs j WHERE left(job_key, %d) = '%s' ORDER BY job_id"
                    % (len(KEY), KEY)).splitlines()
        jobs = [row.split("|") for row in rows]
        self.assertEqual(["foreign_key", "foreign_key", "index", "index", "index", "not_null",
                          "validate"], sorted(kind for kind, _, _, _ in jobs), rows)
        for kind, state, key, writes in jobs:
            self.assertEqual("succeeded", state, rows)
            self.assertGreater(int(writes), 0, "no writer committed while %s ran:\n%s"
                               % (key, "\n".join(rows)))
        self.assertFalse(any("big_customer_name" in key for _, _, key, _ in jobs), rows)
        self.assertEqual("", psql("SELECT * FROM django_pg_mig_done WHERE NOT done"))
        self.manage("makemigrations", "--check", "--dry-run")

    def wait_for_a_write_after(self, moment, writers):
        """wait_for_a_write_after: returns once app_writes has a commit after MOMENT (SQL)."""
        since = psql("SELECT %s" % moment)
        deadline = time.monotonic() + 300   # not a measure: against a hang
        while psql("SELECT count(*) FROM app_writes WHERE at > '%s'" % since) == "0":
            self.assertIsNone(writers.poll(), "pgbench ended")
            self.assertLess(time.monotonic(), deadline, "no writer commits")
            psql("SELECT pg_sleep(0.1)")


if __name__ == "__main__":
    unittest.main()

// test_change_type.cpp -- mig_change_type (kind_change_type.c, issue 25)
// against the sandbox primary + standby: int -> bigint of a serial primary
// key with an index on (customer_id, id) and a partial index on the key,
// while an application inserts (through the sequence default), updates and
// deletes; a kill -9 of the worker during the walk, and a crash of the
// primary while the swap waits for its lock (a session holds the table's
// ACCESS SHARE lock from after the walk's kill on: the index copies go on
// beside it, the swap is retried).  Afterwards the schema is what ALTER COLUMN TYPE
// makes of the same table (index and constraint names and definitions, the
// default, the sequence's ownership) except that the sequence is AS bigint,
// every row's values are unchanged, no row is lost or doubled, the standby
// has the same, and with the sequence at 2^31 - 5 twenty more inserts
// succeed.  Further down, among others: failover of the primary in the
// walk and in the index copies, and a crash in an index copy.
#include "fixture.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <random>

using namespace pgmig_test;

namespace {

// a logical replication subscription can be made here
const bool kConf = sandbox_conf("fsync = off\nwal_level = logical\n");

std::string Id(long long v) { return std::to_string(v); }

// one statement a line
const char* kTableDdl =
    "CREATE TABLE %s.ct (id serial PRIMARY KEY, customer_id int NOT NULL, id_copy bigint, note text)\n"
    "CREATE INDEX ct_customer_id_id_idx ON %s.ct (customer_id, id)\n"
    "CREATE INDEX ct_recent_idx ON %s.ct (id) WHERE id > 1000\n"
    // the application's row copies its id: the values must survive the change
    "CREATE FUNCTION %s.ct_copy() RETURNS trigger LANGUAGE plpgsql AS"
    " $f$BEGIN NEW.id_copy := NEW.id; RETURN NEW; END$f$\n"
    "CREATE TRIGGER a_copy BEFORE INSERT ON %s.ct FOR EACH ROW EXECUTE FUNCTION %s.ct_copy()";

// CreateTable: the tables of ddl (kTableDdl: ct) in schema
void CreateTable(Conn& c, const std::string& schema, const char* tables = kTableDdl)
{
    std::string ddl = tables, key = "%s";
    for (size_t p; (p = ddl.find(key)) != std::string::npos;) ddl.replace(p, key.size(), schema);
    size_t start = 0;
    while (start < ddl.size()) {
        size_t end = ddl.find('\n', start);
        if (end == std::string::npos) end = ddl.size();
        c.exec(ddl.substr(start, end - start));
        start = end + 1;
    }
}

// the shape of table schema.name: columns, indexes, constraints (the NOT NULL
// ones too, in pg_constraint since PostgreSQL 18; the foreign
// keys by pg_get_constraintdef, with their validation), defaults; the
// schema's name taken out
std::string TableShape(Conn& c, const std::string& schema, const std::string& name)
{
    std::string rel = "'" + schema + "." + name + "'::regclass";
    std::string strip = "'\\m" + schema + "\\.', '', 'g'";
    return *c.scalar(
        "SELECT coalesce((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull,"
        "                          ', ' ORDER BY attname) FROM pg_attribute"
        "         WHERE attrelid = " + rel + " AND attnum > 0 AND NOT attisdropped), '')"
        " || ' | ' || coalesce((SELECT string_agg(c.relname || ': ' || regexp_replace(pg_get_indexdef(i.indexrelid), " +
        strip + "), ', ' ORDER BY c.relname)"
        "         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = " + rel + "), '')"
        " || ' | ' || coalesce((SELECT string_agg(conname || ': ' || regexp_replace(pg_get_constraintdef(oid), " +
        strip + ") || ' ' || convalidated, ', ' ORDER BY conname)"
        "         FROM pg_constraint WHERE conrelid = " + rel + "), '')"
        " || ' | ' || coalesce((SELECT string_agg(regexp_replace(pg_get_expr(adbin, adrelid), " + strip + "), ', ')"
        "         FROM pg_attrdef WHERE adrelid = " + rel + "), '')"
        " || ' | ' || (SELECT count(*) FROM pg_trigger WHERE tgrelid = " + rel + " AND NOT tgisinternal)");
}

// the schema of table schema.ct as ALTER COLUMN TYPE would compare it:
// TableShape, and the sequence of its key
std::string Shape(Conn& c, const std::string& schema)
{
    return TableShape(c, schema, "ct") + " | " +
           c.scalar("SELECT regexp_replace(pg_get_serial_sequence($1, 'id'), $2, '', 'g')",
                    {schema + ".ct", "\\m" + schema + "\\."})
               .value_or("");
}

// public.ct (with ct_log; rows rows) and twin.ct, the same table changed
// by ALTER COLUMN TYPE for the comparison, made afresh (of tables: kTableDdl
// or another ct)
void FreshCt(Conn& c, int rows, const char* tables = kTableDdl)
{
    c.exec("DROP TABLE IF EXISTS public.ct, public.ct_log CASCADE");
    c.exec("DROP FUNCTION IF EXISTS public.ct_copy() CASCADE");
    c.exec("DROP SCHEMA IF EXISTS twin CASCADE");
    CreateTable(c, "public", tables);
    c.exec("CREATE TABLE ct_log (op text NOT NULL, id bigint NOT NULL)");
    c.exec("INSERT INTO ct (customer_id, note) SELECT g % 100, 'row ' || g FROM generate_series(1, " +
           Id(rows) + ") g");
    c.exec("CREATE SCHEMA twin");
    CreateTable(c, "twin", tables);
    c.exec("ALTER TABLE twin.ct ALTER COLUMN id TYPE bigint");
}

// Writer: an application thread that calls write(c, n, rng) again and
// again (n counts the writes done); a crash or restart ends connections and
// is no failure, a write that fails with a data or constraint error is
class Writer {
public:
    using Write = std::function<void(Conn&, long long, std::mt19937&)>;
    Writer(Write write, unsigned seed) : write_(std::move(write)), seed_(seed), thread_([this] { run(); }) {}
    ~Writer() { stop(); }
    void stop()
    {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    long long done() const { return done_; }
    long long failed() const { return failed_; }

private:
    void run()
    {
        std::mt19937 rng(seed_);
        std::optional<Conn> c;
        while (!stop_) {
            try {
                if (!c) c.emplace(Sandbox::get().conninfo());
                write_(*c, done_, rng);
                done_++;
            } catch (const PgError& e) {
                // a write the job makes fail is a bug
                if (e.sqlstate.rfind("22", 0) == 0 || e.sqlstate.rfind("23", 0) == 0) {
                    failed_++;
                    std::cerr << "application write failed: " << e.what() << "\n";
                }
                c.reset();
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            } catch (const std::exception&) {
                c.reset();
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    }
    Write write_;
    unsigned seed_;
    std::atomic<bool> stop_{false};
    std::atomic<long long> done_{0};
    std::atomic<long long> failed_{0};
    std::thread thread_;
};

// the application: inserts through the default, updates and deletes, each
// insert and delete logged in ct_log in its own transaction
class App : public Writer {
public:
    explicit App(int rows)
        : Writer(
              [rows](Conn& c, long long n, std::mt19937& rng) {
                  std::string id = std::to_string(std::uniform_int_distribution<int>(1, rows)(rng));
                  if (n % 3 == 0)
                      c.exec("WITH i AS (INSERT INTO ct (customer_id, note) VALUES ($1, 'app') RETURNING id)"
                             " INSERT INTO ct_log SELECT 'i', id FROM i",
                             {id});
                  else if (n % 3 == 1)
                      c.exec("UPDATE ct SET customer_id = customer_id + 1, note = 'upd' WHERE id = $1", {id});
                  else
                      c.exec("WITH d AS (DELETE FROM ct WHERE id = $1 RETURNING id)"
                             " INSERT INTO ct_log SELECT 'd', id FROM d",
                             {id});
              },
              7)
    {
    }
};

std::string Step(long long job)
{
    return try_scalar("SELECT coalesce(step, '') FROM mig_job WHERE job_id = $1", {Id(job)}).value_or("");
}

std::string StepsDone(long long job)
{
    return try_scalar("SELECT array_to_string(steps_done, ',') FROM mig_job WHERE job_id = $1", {Id(job)})
        .value_or("");
}

long long SwapRetries(long long job)
{
    return std::stoll(try_scalar("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                                 " AND event = 'retried' AND detail LIKE 'step swap,%'",
                                 {Id(job)})
                          .value_or("0"));
}

// the job on public.ct (int -> bigint, cleanup, max_retries 1000 and the
// knobs given), started once the application writes
long long StartOnceTheAppWrites(Conn& c, const App& app, const std::string& knobs)
{
    wait_for([&] { return app.done() > 30; }, 60, "the application to write");
    return c.scalar_int("SELECT mig_change_type('ct', 'id', 'bigint', cleanup => true, max_retries => 1000, " +
                        knobs + ")");
}

// every row's value unchanged (id_copy), none lost or doubled (the rows
// at start and ct_log), and the standby the same as the primary
void ExpectRowsIntact(Conn& c, int rows)
{
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM ct WHERE id IS DISTINCT FROM id_copy"));
    EXPECT_EQ(0, c.scalar_int(
                     "SELECT count(*) FROM (SELECT id FROM ct) a FULL JOIN"
                     " (SELECT g::bigint AS id FROM generate_series(1, " + Id(rows) + ") g"
                     "  UNION ALL SELECT id FROM ct_log WHERE op = 'i'"
                     "  EXCEPT ALL SELECT id FROM ct_log WHERE op = 'd') b USING (id)"
                     " WHERE a.id IS NULL OR b.id IS NULL"));
    std::string sum = "SELECT count(*) || ':' || sum(hashtext(id::text || customer_id || note)) FROM ct";
    std::string primary_sum = *c.scalar(sum);
    std::string primary_shape = Shape(c, "public");
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(primary_sum, *s.scalar(sum));
    EXPECT_EQ(primary_shape, Shape(s, "public"));
}

}  // namespace

TEST(ChangeType, IntToBigintOfASerialKeyWhileTheAppWritesThroughKillAndCrashes)
{
    const int rows = 60000;
    Conn c = pg_mig_primary();
    FreshCt(c, rows);

    App app(rows);
    long long job = StartOnceTheAppWrites(c, app, "batch_size => 500, chunk_time => NULL, sleep => '40ms',"
                                                  " lock_timeout => '300ms'");

    // kill -9 of the worker during the walk
    wait_for([&] { return job_rows_done(job) > 2000; }, 120, "the walk to begin");
    ASSERT_EQ(std::string::npos, StepsDone(job).find("walk")) << StepsDone(job);
    kill_worker(job);

    // a session that holds the table's ACCESS SHARE lock: the copies need no
    // lock it holds, the swap waits for it (lock_timeout, retried)
    std::optional<Conn> blocker;
    auto block = [&] {
        blocker.emplace(Sandbox::get().conninfo());
        blocker->exec("BEGIN");
        blocker->exec("LOCK TABLE ct IN ACCESS SHARE MODE");
    };
    block();

    // the copies need no lock the blocker holds; the swap waits for it
    wait_for([&] { return Step(job).find("swapping") != std::string::npos; }, 300,
             "the job to reach its swap");
    // the swap waits for the blocker and is retried: crash just before it
    wait_for([&] { return SwapRetries(job) > 0; }, 60, "the swap to be retried");
    EXPECT_NE(std::string::npos, Step(job).find("swapping")) << Step(job);
    EXPECT_EQ(std::string::npos, StepsDone(job).find("swap")) << StepsDone(job);
    blocker.reset();
    crash_primary();

    c = pg_mig_primary();
    EXPECT_EQ("succeeded", wait_job(c, job, 300)) << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = "
                                                              + Id(job)).value_or("");
    app.stop();
    EXPECT_GT(app.done(), 100);
    // no application write failed because of the job (data or constraint errors)
    EXPECT_EQ(0, app.failed());

    // the schema ALTER COLUMN TYPE makes, the sequence AS bigint
    EXPECT_EQ(Shape(c, "twin"), Shape(c, "public"));
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(seqtypid, NULL) FROM pg_sequence"
                                  " WHERE seqrelid = 'ct_id_seq'::regclass"));
    EXPECT_EQ("integer", *c.scalar("SELECT format_type(seqtypid, NULL) FROM pg_sequence"
                                   " WHERE seqrelid = 'twin.ct_id_seq'::regclass"));
    // every row's value unchanged, none lost or doubled, the standby the same
    ExpectRowsIntact(c, rows);
    EXPECT_GT(c.scalar_int("SELECT count(*) FROM ct_log WHERE op = 'i'"), 0);
    EXPECT_GT(c.scalar_int("SELECT count(*) FROM ct_log WHERE op = 'd'"), 0);

    // past 2^31 - 1
    c.exec("SELECT setval('ct_id_seq', 2147483643)");
    for (int i = 0; i < 20; i++) c.exec("INSERT INTO ct (customer_id, note) VALUES (1, 'big')");
    EXPECT_EQ("2147483663", *c.scalar("SELECT max(id) FROM ct"));
}

// migctl change-type starts the job, --wait follows it (exit 0 when it
// succeeds); a start the server refuses is one line on stderr with migctl's
// hint and exit status 1 or 2, and no job
TEST(ChangeType, MigctlChangeTypeWaitsForTheJob)
{
    Conn c = pg_mig_primary();
    c.exec("CREATE TABLE mct (id serial PRIMARY KEY, name varchar(20) NOT NULL, n int)");
    c.exec("INSERT INTO mct (name, n) SELECT 'n' || g, g FROM generate_series(1, 2000) g");
    auto r = migctl({"change-type", "--table", "mct", "--column", "n", "--type", "bigint", "--using", "n * 10",
                     "--cleanup", "--batch-size", "300", "--lock-timeout", "1s", "--wait"},
                    300);
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'mct'::regclass AND attname = 'n'"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mct WHERE n <> id * 10"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_attribute WHERE attrelid = 'mct'::regclass"
                              " AND attname LIKE 'mig_%' AND NOT attisdropped"));
    // a catalog-only change
    r = migctl({"change-type", "--table", "mct", "--column", "name", "--type", "varchar(40)", "--wait"}, 120);
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_EQ("character varying(40)", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                                 " WHERE attrelid = 'mct'::regclass AND attname = 'name'"));
    // refused: a dependent view
    c.exec("CREATE VIEW mct_v AS SELECT id FROM mct");
    long long jobs = c.scalar_int("SELECT count(*) FROM mig_jobs");
    r = migctl({"change-type", "--table", "mct", "--column", "id", "--type", "bigint"}, 60);
    EXPECT_NE(0, r.exit_code);
    EXPECT_NE(std::string::npos, r.err.find("view mct_v")) << r.err;
    EXPECT_EQ(jobs, c.scalar_int("SELECT count(*) FROM mig_jobs"));
}

namespace {

// the tables of the foreign-key test, in schema %s: customers' serial key,
// referenced by orders (ON DELETE CASCADE) and by notes (nullable,
// ON UPDATE CASCADE ON DELETE SET NULL, DEFERRABLE INITIALLY DEFERRED)
const char* kFkDdl =
    "CREATE TABLE %s.customers (id serial PRIMARY KEY, name text NOT NULL)\n"
    "CREATE TABLE %s.orders (id bigserial PRIMARY KEY, customer_id int NOT NULL"
    " REFERENCES %s.customers ON DELETE CASCADE, amount int NOT NULL)\n"
    "CREATE INDEX orders_customer_id_idx ON %s.orders (customer_id)\n"
    "CREATE TABLE %s.notes (id bigserial PRIMARY KEY, customer_id int"
    " CONSTRAINT notes_customer_fk REFERENCES %s.customers (id) ON UPDATE CASCADE ON DELETE SET NULL"
    " DEFERRABLE INITIALLY DEFERRED, body text)";

// the application of the foreign-key test: new customers with orders and
// notes, updates of amounts, deletes of customers (their orders cascade)
class FkApp : public Writer {
public:
    FkApp()
        : Writer(
              [](Conn& c, long long n, std::mt19937& rng) {
                  std::string id = std::to_string(std::uniform_int_distribution<int>(1, 20000)(rng));
                  switch (n % 4) {
                  case 0:
                      c.exec("WITH n AS (INSERT INTO customers (name) VALUES ('app') RETURNING id),"
                             " o AS (INSERT INTO orders (customer_id, amount) SELECT id, 1 FROM n)"
                             " INSERT INTO notes (customer_id, body) SELECT id, 'app' FROM n");
                      break;
                  case 1: c.exec("UPDATE orders SET amount = amount + 1 WHERE customer_id = $1", {id}); break;
                  case 2:
                      c.exec("INSERT INTO orders (customer_id, amount) SELECT id, 2 FROM customers WHERE id = $1",
                             {id});
                      break;
                  default: c.exec("DELETE FROM customers WHERE id = $1", {id}); break;
                  }
              },
              11)
    {
    }
};

}  // namespace

// int -> bigint of a key that two other tables reference: the foreign keys
// are added again against the new column NOT VALID, validated, and switched
// by name in the swap, while the application writes in all three tables,
// with a kill of the worker during the walk; afterwards the three
// tables look as ALTER COLUMN TYPE makes them (pg_get_constraintdef of every
// foreign key, validated), every reference still holds, the standby has the
// same, and the key goes past 2^31 - 1.  With convert_referencing the
// referencing columns become bigint too, in the same job, as ALTER COLUMN
// TYPE of all three columns makes them.
static void ForeignKeyJob(bool convert_referencing)
{
    Conn c = pg_mig_primary();
    c.exec("DROP SCHEMA IF EXISTS fk_twin CASCADE");
    c.exec("DROP TABLE IF EXISTS notes, orders, customers");
    CreateTable(c, "public", kFkDdl);
    c.exec("INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 20000) g");
    c.exec("INSERT INTO orders (customer_id, amount) SELECT 1 + g % 20000, g FROM generate_series(1, 40000) g");
    c.exec("INSERT INTO notes (customer_id, body) SELECT 1 + g % 20000, 'n' FROM generate_series(1, 8000) g");
    c.exec("CREATE SCHEMA fk_twin");
    CreateTable(c, "fk_twin", kFkDdl);
    c.exec("ALTER TABLE fk_twin.customers ALTER COLUMN id TYPE bigint");
    if (convert_referencing) {
        c.exec("ALTER TABLE fk_twin.orders ALTER COLUMN customer_id TYPE bigint");
        c.exec("ALTER TABLE fk_twin.notes ALTER COLUMN customer_id TYPE bigint");
    }

    FkApp app;
    wait_for([&] { return app.done() > 30; }, 60, "the application to write");
    long long job = c.scalar_int(
        "SELECT mig_change_type('customers', 'id', 'bigint', cleanup => true, batch_size => 200,"
        " convert_referencing => " + std::string(convert_referencing ? "true" : "false") +
        ", chunk_time => NULL, sleep => '20ms', lock_timeout => '300ms', max_retries => 1000)");
    // kill -9 of the worker during the walk
    wait_for([&] { return job_rows_done(job) > 2000; }, 120, "the walk to begin");
    ASSERT_EQ(std::string::npos, StepsDone(job).find("walk")) << StepsDone(job);
    kill_worker(job);
    c = pg_mig_primary();
    EXPECT_EQ("succeeded", wait_job(c, job, 300))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = " + Id(job)).value_or("");
    app.stop();
    EXPECT_GT(app.done(), 50);
    EXPECT_EQ(0, app.failed());

    for (const char* t : {"customers", "orders", "notes"})
        EXPECT_EQ(TableShape(c, "fk_twin", t), TableShape(c, "public", t)) << t;
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(seqtypid, NULL) FROM pg_sequence"
                                  " WHERE seqrelid = 'customers_id_seq'::regclass"));
    // every reference holds
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM orders o WHERE NOT EXISTS"
                              " (SELECT FROM customers c WHERE c.id = o.customer_id)"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM notes n WHERE customer_id IS NOT NULL AND NOT EXISTS"
                              " (SELECT FROM customers c WHERE c.id = n.customer_id)"));
    // the foreign keys act: a delete cascades to orders, sets notes' key NULL
    c.exec("DELETE FROM customers WHERE id = (SELECT min(customer_id) FROM notes)");
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM orders o WHERE NOT EXISTS"
                              " (SELECT FROM customers c WHERE c.id = o.customer_id)"));
    EXPECT_THROW(c.exec("INSERT INTO orders (customer_id, amount) VALUES (-1, 0)"), PgError);

    std::string sum = "SELECT (SELECT count(*) || ':' || sum(id) FROM customers) || '/' ||"
                      " (SELECT count(*) || ':' || sum(customer_id) FROM orders)";
    std::string primary_sum = *c.scalar(sum);
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(primary_sum, *s.scalar(sum));
    EXPECT_EQ(TableShape(c, "public", "orders"), TableShape(s, "public", "orders"));

    c.exec("SELECT setval('customers_id_seq', 2147483645)");
    for (int i = 0; i < 5; i++) c.exec("INSERT INTO customers (name) VALUES ('big')");
    EXPECT_EQ("2147483650", *c.scalar("SELECT max(id) FROM customers"));
    if (convert_referencing) {
        // the referencing columns take the keys past 2^31 - 1
        c.exec("INSERT INTO orders (customer_id, amount) SELECT max(id), 1 FROM customers");
        EXPECT_EQ("2147483650", *c.scalar("SELECT max(customer_id) FROM orders"));
    }
    c.exec("DROP SCHEMA fk_twin CASCADE");
    c.exec("DROP TABLE notes, orders, customers");
}

TEST(ChangeType, ForeignKeysOfTwoReferencingTablesFollowTheKey) { ForeignKeyJob(false); }

TEST(ChangeType, ConvertReferencingChangesTheReferencingColumnsInTheSameJob) { ForeignKeyJob(true); }

// migctl change-type --convert-referencing: the key and the column of the
// other table that references it become bigint in one job
TEST(ChangeType, MigctlConvertReferencing)
{
    Conn c = pg_mig_primary();
    c.exec("CREATE TABLE mcr_parent (id serial PRIMARY KEY, name text)");
    c.exec("CREATE TABLE mcr_child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES mcr_parent)");
    c.exec("INSERT INTO mcr_parent (name) SELECT 'p' || g FROM generate_series(1, 500) g");
    c.exec("INSERT INTO mcr_child (parent_id) SELECT 1 + g % 500 FROM generate_series(1, 1500) g");
    auto r = migctl({"change-type", "--table", "mcr_parent", "--column", "id", "--type", "bigint",
                     "--convert-referencing", "--cleanup", "--lock-timeout", "1s", "--wait"},
                    300);
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_EQ("bigint bigint",
              *c.scalar("SELECT format_type(p.atttypid, NULL) || ' ' || format_type(c.atttypid, NULL)"
                        " FROM pg_attribute p, pg_attribute c"
                        " WHERE p.attrelid = 'mcr_parent'::regclass AND p.attname = 'id'"
                        " AND c.attrelid = 'mcr_child'::regclass AND c.attname = 'parent_id'"));
    EXPECT_EQ("FOREIGN KEY (parent_id) REFERENCES mcr_parent(id)",
              *c.scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                        " WHERE conname = 'mcr_child_parent_id_fkey'"));
    EXPECT_EQ(1500, c.scalar_int("SELECT count(*) FROM mcr_child JOIN mcr_parent p ON p.id = parent_id"));
}

// The swap waits briefly for the other tables: a session that holds a lock
// on a referencing table (orders) and then reads the job's table
// (customers) gets through while the swap goes on trying, instead of both
// waiting for each other until the job's lock_timeout (2 min here, and
// deadlock_timeout 10 min, so nothing else ends the wait).  The job
// finishes once the session commits.
TEST(ChangeType, TheSwapLetsGoOfTheTableWhileAReferencingTableIsBusy)
{
    Conn c = pg_mig_primary();
    c.exec("DROP TABLE IF EXISTS notes, orders, customers");
    CreateTable(c, "public", kFkDdl);
    c.exec("INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 2000) g");
    c.exec("INSERT INTO orders (customer_id, amount) SELECT 1 + g % 2000, g FROM generate_series(1, 4000) g");
    c.exec("ALTER SYSTEM SET deadlock_timeout = '10min'");
    c.exec("SELECT pg_reload_conf()");
    struct Reset {
        ~Reset()
        {
            Conn r = pg_mig_primary();
            r.exec("ALTER SYSTEM RESET deadlock_timeout");
            r.exec("SELECT pg_reload_conf()");
        }
    } reset;

    // ACCESS SHARE on orders, and no snapshot: no step before the swap
    // minds it (the index copies wait for sessions with a snapshot)
    Conn a(Sandbox::get().conninfo());
    a.exec("SET statement_timeout = '60s'");
    a.exec("BEGIN");
    a.exec("LOCK TABLE orders IN ACCESS SHARE MODE");
    long long job = c.scalar_int("SELECT mig_change_type('customers', 'id', 'bigint', cleanup => true,"
                                 " lock_timeout => '2min', max_retries => 10)");
    // the swap: customers locked, waiting for orders
    wait_for(
        [&] {
            return c.scalar_int("SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'"
                                " AND relation = 'orders'::regclass") > 0;
        },
        120, "the swap to wait for orders");
    EXPECT_NO_THROW(a.exec("SELECT count(*) FROM customers"));
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = " + Id(job)));
    EXPECT_EQ(std::string::npos, StepsDone(job).find("swap")) << StepsDone(job);
    a.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 180))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = " + Id(job)).value_or("");
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, NULL) FROM pg_attribute"
                                  " WHERE attrelid = 'customers'::regclass AND attname = 'id'"));
    c.exec("DROP TABLE notes, orders, customers");
}

// ---------------------------------------------------------------------------
// Failover and crashes in the middle of the walk and of the index copies
// (issue 25's tests): the table of the first test made again, with its
// twin changed by ALTER COLUMN TYPE; the job finishes by itself on the
// server that comes back (or on the promoted standby), and afterwards the
// column is bigint with the twin's schema, every row's value unchanged, no
// row lost or doubled, and the standby the same.
namespace {

const char* kInvalidCopies =
    "SELECT coalesce(string_agg(i.indexrelid::text, ',' ORDER BY i.indexrelid), '') FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE i.indrelid = 'public.ct'::regclass AND NOT i.indisvalid AND c.relname LIKE 'mig\\_ct\\_%'";

// a session that holds the table's ROW EXCLUSIVE lock (as an application's
// open write transaction does): CREATE INDEX CONCURRENTLY waits for it
// before it builds, with its INVALID index already committed
Conn HoldWriterLock()
{
    Conn b(Sandbox::get().conninfo());
    b.exec("BEGIN");
    b.exec("LOCK TABLE public.ct IN ROW EXCLUSIVE MODE");
    return b;
}

// waits until a copy of an index is being built and waits for the writer:
// returns the OIDs of the INVALID copies there are then
std::string WaitForACopyInProgress(long long job)
{
    wait_for(
        [&] {
            return try_scalar("SELECT count(*) FROM pg_stat_progress_create_index"
                              " WHERE relid = 'public.ct'::regclass"
                              " AND command = 'CREATE INDEX CONCURRENTLY'"
                              " AND phase = 'waiting for writers before build'")
                       .value_or("0") != "0";
        },
        300, "an index copy to wait for the writer");
    EXPECT_NE(std::string::npos, Step(job).find("building copies")) << Step(job);
    return try_scalar(kInvalidCopies).value_or("");
}

// the job done, the application stopped, and the table as the twin with
// every row intact
void ExpectChangedAndIntact(long long job, int rows, App& app)
{
    Conn c = pg_mig_primary();
    EXPECT_EQ("succeeded", wait_job(c, job, 300))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = " + Id(job)).value_or("");
    app.stop();
    EXPECT_GT(app.done(), 100);
    EXPECT_EQ(0, app.failed());
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'public.ct'::regclass AND attname = 'id'"));
    EXPECT_EQ(Shape(c, "twin"), Shape(c, "public"));
    EXPECT_EQ("", *c.scalar(kInvalidCopies));
    ExpectRowsIntact(c, rows);
}

}  // namespace

// the primary fails over while the walk is half-way: the promoted standby's
// worker takes the job up where the standby's copy of it stands
TEST(ChangeType, FailoverInTheWalkFinishesOnThePromotedStandby)
{
    const int rows = 60000;
    Conn c = pg_mig_primary();
    FreshCt(c, rows);
    App app(rows);
    long long job = StartOnceTheAppWrites(c, app, "batch_size => 500, chunk_time => NULL, sleep => '100ms',"
                                                  " lock_timeout => '300ms'");
    wait_for([&] { return job_rows_done(job) > 2000; }, 120, "the walk to begin");
    ASSERT_EQ(std::string::npos, StepsDone(job).find("walk")) << StepsDone(job);
    ASSERT_LT(job_rows_done(job), rows);
    // step names no step while the rows are walked (it kept the words of
    // the step alter, skipped before the walk: "a catalog change")
    EXPECT_EQ("", Step(job));

    failover_to_standby();
    Conn p(Sandbox::get().conninfo());
    EXPECT_EQ("t", *p.scalar("SELECT NOT pg_is_in_recovery()"));
    ExpectChangedAndIntact(job, rows, app);
}

// the job interrupted (by interrupt) while a copy of an index is being
// built: CREATE INDEX CONCURRENTLY waits for an application's open write,
// its INVALID index committed (and replayed by the standby); the server that
// comes back drops that leftover, builds the copy again, and the job
// finishes by itself
namespace {
void InterruptAnIndexCopy(const std::function<void()>& interrupt)
{
    const int rows = 30000;
    Conn c = pg_mig_primary();
    FreshCt(c, rows);
    App app(rows);
    // a lock_timeout longer than the test's look at the waiting build takes
    long long job = StartOnceTheAppWrites(c, app, "batch_size => 2000, lock_timeout => '60s'");
    std::optional<Conn> writer(HoldWriterLock());
    std::string leftovers = WaitForACopyInProgress(job);
    ASSERT_NE("", leftovers);
    EXPECT_EQ(std::string::npos, StepsDone(job).find("copy_indexes")) << StepsDone(job);

    interrupt();
    writer.reset();
    ExpectChangedAndIntact(job, rows, app);
    Conn p = pg_mig_primary();
    // the leftover of the interrupted build is gone, not kept beside the copy
    EXPECT_EQ(0, p.scalar_int("SELECT count(*) FROM pg_class WHERE oid = ANY(string_to_array($1, ',')::oid[])",
                              {leftovers}));
    EXPECT_EQ(1, p.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'step'"
                              " AND detail = 'copy_indexes: done'",
                              {Id(job)}));
}
}  // namespace

// the primary fails over in the middle of the index copies: the promoted
// standby's worker finishes the job
TEST(ChangeType, FailoverInTheIndexCopiesFinishesOnThePromotedStandby)
{
    InterruptAnIndexCopy(failover_to_standby);
}

// a crash of the primary (immediate stop, start) during an index copy
TEST(ChangeType, CrashInAnIndexCopyDropsTheLeftoverAndFinishes)
{
    InterruptAnIndexCopy(crash_primary);
}

// mig_revert of a type change after its swap (cleanup => false), while the
// application writes: the revert is a job of the same steps the other way
// (no walk: the trigger kept the old column), killed (kill -9 of its
// worker) while its swap waits for a session's lock and is retried; it
// resumes and finishes, and the table is as before the first job (the
// schema, integer again, every row's value unchanged, none lost or
// doubled), the standby the same
TEST(ChangeType, RevertAfterTheSwapWhileTheAppWritesThroughAKill)
{
    const int rows = 30000;
    Conn c = pg_mig_primary();
    FreshCt(c, rows);
    std::string before = Shape(c, "public");
    App app(rows);
    wait_for([&] { return app.done() > 30; }, 60, "the application to write");
    long long job = c.scalar_int("SELECT mig_change_type('ct', 'id', 'bigint', batch_size => 2000,"
                                 " lock_timeout => '300ms', max_retries => 1000)");
    ASSERT_EQ("succeeded", wait_job(c, job, 300))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = " + Id(job)).value_or("");
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'public.ct'::regclass AND attname = 'id'"));

    // the revert (its NOT NULL check added at start); a session that holds
    // the table's ACCESS SHARE lock from then on: the copies go on beside
    // it, the swap waits for it and is retried: kill -9 of the worker then
    long long revert = c.scalar_int("SELECT mig_revert(" + Id(job) +
                                    ", lock_timeout => '300ms', max_retries => 1000)");
    std::optional<Conn> blocker;
    blocker.emplace(Sandbox::get().conninfo());
    blocker->exec("BEGIN");
    blocker->exec("LOCK TABLE ct IN ACCESS SHARE MODE");
    wait_for([&] { return SwapRetries(revert) > 0; }, 300, "the revert's swap to be retried");
    EXPECT_EQ(std::string::npos, StepsDone(revert).find("swap")) << StepsDone(revert);
    EXPECT_NE(std::string::npos, StepsDone(revert).find("copy_indexes")) << StepsDone(revert);
    kill_worker(revert);
    blocker.reset();
    c = pg_mig_primary();
    EXPECT_EQ("succeeded", wait_job(c, revert, 300))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = " + Id(revert)).value_or("");
    app.stop();
    EXPECT_GT(app.done(), 100);
    EXPECT_EQ(0, app.failed());

    // the table as before the first job
    EXPECT_EQ(before, Shape(c, "public"));
    EXPECT_EQ("integer", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                   " WHERE attrelid = 'public.ct'::regclass AND attname = 'id'"));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'reverted'",
                              {Id(job)}));
    ExpectRowsIntact(c, rows);
}

// migctl revert JOB of a type change: --wait follows the revert (exit 0),
// the column has its old type again; a second revert is refused, migctl's
// message on stderr and a non-zero exit status
TEST(ChangeType, MigctlRevertSwapsATypeChangeBack)
{
    Conn c = pg_mig_primary();
    c.exec("CREATE TABLE mrv (id serial PRIMARY KEY, n int NOT NULL)");
    c.exec("CREATE INDEX mrv_n_idx ON mrv (n)");
    c.exec("INSERT INTO mrv (n) SELECT g FROM generate_series(1, 1000) g");
    long long job = c.scalar_int("SELECT mig_change_type('mrv', 'n', 'bigint', lock_timeout => '1s')");
    ASSERT_EQ("succeeded", wait_job(c, job, 120));
    auto r = migctl({"revert", Id(job), "--lock-timeout", "1s", "--wait"}, 300);
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_EQ("integer", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                   " WHERE attrelid = 'mrv'::regclass AND attname = 'n'"));
    EXPECT_EQ("CREATE INDEX mrv_n_idx ON public.mrv USING btree (n)",
              *c.scalar("SELECT pg_get_indexdef('mrv_n_idx'::regclass)"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_attribute WHERE attrelid = 'mrv'::regclass"
                              " AND attname LIKE 'mig_%' AND NOT attisdropped"));
    EXPECT_EQ(500500, c.scalar_int("SELECT sum(n) FROM mrv"));
    r = migctl({"revert", Id(job)}, 60);
    EXPECT_NE(0, r.exit_code);
    EXPECT_NE(std::string::npos, r.err.find("already reverted")) << r.err;
    EXPECT_EQ(0u, r.err.rfind("migctl: ", 0)) << r.err;
}

// an identity key (GENERATED ALWAYS; Django >= 4.1 makes its keys BY
// DEFAULT) changed while the application inserts through it, updates and
// deletes, interrupted in the walk (the worker killed, or the primary
// failed over: the promoted standby's sequence is the one its WAL left,
// ahead of the last value handed out): the identity moves to the new
// column with its sequence, which ends as ALTER COLUMN TYPE leaves it (AS
// bigint, its options), and goes on after the last value it has
namespace {
const char* kIdentityTableDdl =
    "CREATE TABLE %s.ct (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id int NOT NULL,"
    " id_copy bigint, note text)\n"
    "CREATE INDEX ct_customer_id_id_idx ON %s.ct (customer_id, id)\n"
    "CREATE INDEX ct_recent_idx ON %s.ct (id) WHERE id > 1000\n"
    "CREATE FUNCTION %s.ct_copy() RETURNS trigger LANGUAGE plpgsql AS"
    " $f$BEGIN NEW.id_copy := NEW.id; RETURN NEW; END$f$\n"
    "CREATE TRIGGER a_copy BEFORE INSERT ON %s.ct FOR EACH ROW EXECUTE FUNCTION %s.ct_copy()";

void IdentityKeyMovesWithItsSequence(const std::function<void(long long)>& interrupt)
{
    const int rows = 30000;
    Conn c = pg_mig_primary();
    FreshCt(c, rows, kIdentityTableDdl);
    App app(rows);
    long long job = StartOnceTheAppWrites(c, app, "batch_size => 500, chunk_time => NULL, sleep => '20ms',"
                                                  " lock_timeout => '300ms'");
    wait_for([&] { return job_rows_done(job) > 2000; }, 120, "the walk to begin");
    ASSERT_EQ(std::string::npos, StepsDone(job).find("walk")) << StepsDone(job);
    interrupt(job);
    ExpectChangedAndIntact(job, rows, app);

    Conn p = pg_mig_primary();
    // the identity and its sequence as ALTER COLUMN TYPE leaves them
    const std::string identity =
        "SELECT a.attidentity::text || ' ' || format_type(s.seqtypid, NULL) || ' ' || s.seqstart || ' ' ||"
        " s.seqincrement || ' ' || s.seqmin || ' ' || s.seqmax || ' ' || s.seqcache || ' ' || s.seqcycle"
        " FROM pg_attribute a, pg_sequence s WHERE a.attrelid = $1::text::regclass AND a.attname = 'id'"
        " AND s.seqrelid = pg_get_serial_sequence($1::text, 'id')::regclass";
    EXPECT_EQ("a bigint 1 1 1 9223372036854775807 1 false", *p.scalar(identity, {"public.ct"}));
    EXPECT_EQ(*p.scalar(identity, {"twin.ct"}), *p.scalar(identity, {"public.ct"}));
    EXPECT_EQ(0, p.scalar_int("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.ct'::regclass"
                              " AND attidentity <> '' AND attname <> 'id'"));
    // the next insert gets the value after the sequence's last one, above
    // every key there is
    long long last = p.scalar_int("SELECT last_value FROM ct_id_seq");
    EXPECT_GE(last, p.scalar_int("SELECT max(id) FROM ct"));
    EXPECT_EQ(last + 1, p.scalar_int("INSERT INTO ct (customer_id, note) VALUES (1, 'next') RETURNING id"));
    // past 2^31 - 1
    p.exec("SELECT setval('ct_id_seq', 2147483643)");
    for (int i = 0; i < 20; i++) p.exec("INSERT INTO ct (customer_id, note) VALUES (1, 'big')");
    EXPECT_EQ("2147483663", *p.scalar("SELECT max(id) FROM ct"));
}
}  // namespace

TEST(ChangeType, IdentityKeyMovesWithItsSequenceWhileTheAppInserts)
{
    IdentityKeyMovesWithItsSequence(kill_worker);
}

TEST(ChangeType, IdentityKeyMovesWithItsSequenceThroughAFailover)
{
    IdentityKeyMovesWithItsSequence([](long long) { failover_to_standby(); });
}

// A job given up before its swap leaves nothing: with convert_referencing
// (ct and the column of ct_ref that references it), while the application
// writes, the job is given up at three points (cancelled in the walk after
// a kill -9 of its worker at a random row, cancelled while an index copy
// waits for a writer and is left INVALID, failed at the swap after its
// foreign keys were twinned and validated); each time mig_forget drops
// what it built (the new columns with their index copies and checks, the
// foreign key twins, the triggers and their functions) and the schema of
// both tables is the one before the job.  The same job_key then starts the
// change again, which finishes with every row intact.
TEST(ChangeType, ForgetOfAJobGivenUpBeforeItsSwapDropsWhatItBuilt)
{
    const int rows = 20000;
    Conn c = pg_mig_primary();
    FreshCt(c, rows);
    c.exec("DROP TABLE IF EXISTS ct_ref");
    c.exec("CREATE TABLE ct_ref (id serial PRIMARY KEY,"
           " ct_id int NOT NULL CONSTRAINT ct_ref_fk REFERENCES ct ON DELETE CASCADE)");
    c.exec("CREATE INDEX ct_ref_ct_id_idx ON ct_ref (ct_id)");
    c.exec("INSERT INTO ct_ref (ct_id) SELECT 1 + g % " + Id(rows) + " FROM generate_series(1, 5000) g");
    auto shape = [&] { return Shape(c, "public") + " / " + TableShape(c, "public", "ct_ref"); };
    const std::string before = shape();
    // the job's trigger functions (named by the table's OID)
    const char* kFunctions = "SELECT count(*) FROM pg_proc WHERE proname ~ ('^pg_mig_change_type_('"
                             " || 'ct'::regclass::oid || '|' || 'ct_ref'::regclass::oid || ')_')";
    const std::string start =
        "SELECT mig_change_type('ct', 'id', 'bigint', convert_referencing => true, batch_size => 500,"
        " chunk_time => NULL, sleep => '10ms', job_key => 'ct to bigint', ";
    App app(rows);
    wait_for([&] { return app.done() > 30; }, 60, "the application to write");
    std::mt19937 rng(std::random_device{}());

    // mig_forget, called again on lock_not_available as its hint says
    auto forget = [&](long long job) {
        for (int attempt = 0;; attempt++) {
            try {
                c.exec("SELECT mig_forget(" + Id(job) + ")");
                return;
            } catch (const PgError& e) {
                if (e.sqlstate != "55P03" || attempt >= 50) throw;
            }
        }
    };

    for (const std::string point : {"walk", "copy", "swap"}) {
        SCOPED_TRACE(point);
        std::optional<Conn> blocker;
        long long job;
        if (point == "swap") {
            // ACCESS SHARE on ct_ref from after the start on, no snapshot:
            // only the swap minds it; once it is retried, no more retries
            job = c.scalar_int(start + "lock_timeout => '1s', max_retries => 1000)");
            blocker.emplace(Sandbox::get().conninfo());
            blocker->exec("BEGIN");
            blocker->exec("LOCK TABLE ct_ref IN ACCESS SHARE MODE");
            wait_for([&] { return SwapRetries(job) > 0; }, 300, "the swap to be retried");
            c.exec("SELECT mig_set(" + Id(job) + ", max_retries => 0)");
            EXPECT_EQ("failed", wait_job(c, job, 300));
            EXPECT_NE(std::string::npos, StepsDone(job).find("validate_constraints")) << StepsDone(job);
            EXPECT_EQ(std::string::npos, StepsDone(job).find("swap")) << StepsDone(job);
            EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_constraint WHERE conrelid = 'ct_ref'::regclass"
                                      " AND conname ~ '^mig_ct_con_' AND convalidated"));
            blocker.reset();
        } else if (point == "walk") {
            job = c.scalar_int(start + "lock_timeout => '1s', max_retries => 1000)");
            long long at = std::uniform_int_distribution<long long>(500, rows / 2)(rng);
            wait_for([&] { return job_rows_done(job) > at; }, 120, "the walk to reach row " + Id(at));
            ASSERT_EQ(std::string::npos, StepsDone(job).find("walk")) << StepsDone(job);
            kill_worker(job);
            c = pg_mig_primary();
            long long done = job_rows_done(job);
            wait_for([&] { return job_rows_done(job) > done; }, 120, "the walk to go on");
            c.exec("SELECT mig_cancel(" + Id(job) + ")");
            EXPECT_EQ("cancelled", wait_job(c, job, 120));
        } else {
            // a writer's open transaction from after the start on: the walk
            // goes on beside it, the first index copy waits for it
            job = c.scalar_int(start + "lock_timeout => '1s', max_retries => 1000)");
            blocker.emplace(HoldWriterLock());
            std::string invalid = WaitForACopyInProgress(job);
            EXPECT_NE("", invalid);
            // forgotten at once: the worker is still ending its build then
            // (the job is cancelled when mig_cancel commits); the forget
            // waits for it to leave
            c.exec("SELECT mig_cancel(" + Id(job) + ")");
            blocker.reset();
            EXPECT_NE("", *c.scalar(kInvalidCopies));
        }
        EXPECT_NE(before, shape());
        if (point == "walk") {
            // migctl forget says what it dropped
            CmdResult r;
            for (int attempt = 0; attempt < 50; attempt++)
                if ((r = migctl({"forget", Id(job)})).exit_code == 0) break;
            EXPECT_EQ(0, r.exit_code) << r.err;
            EXPECT_EQ(0u, r.out.find("job " + Id(job) + ": new column dropped: mig_new_id of table public.ct and 1 new"))
                << r.out;
        } else
            forget(job);
        EXPECT_EQ(before, shape());
        EXPECT_EQ(0, c.scalar_int(kFunctions));
        EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_class WHERE relname ~ '^mig_ct_'"));
        EXPECT_EQ(1, job_events(c, job, "new column dropped"));
        EXPECT_EQ("", c.scalar("SELECT job_key FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or(""));
    }

    // the same key starts the change again
    long long job = c.scalar_int(start + "cleanup => true, lock_timeout => '1s', max_retries => 1000)");
    EXPECT_EQ("succeeded", wait_job(c, job, 300))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = " + Id(job)).value_or("");
    app.stop();
    EXPECT_GT(app.done(), 100);
    EXPECT_EQ(0, app.failed());
    EXPECT_EQ("bigint bigint",
              *c.scalar("SELECT format_type(p.atttypid, NULL) || ' ' || format_type(r.atttypid, NULL)"
                        " FROM pg_attribute p, pg_attribute r"
                        " WHERE p.attrelid = 'ct'::regclass AND p.attname = 'id'"
                        " AND r.attrelid = 'ct_ref'::regclass AND r.attname = 'ct_id'"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM ct_ref r WHERE NOT EXISTS (SELECT FROM ct WHERE ct.id = r.ct_id)"));
    ExpectRowsIntact(c, rows);
    c.exec("DROP TABLE ct_ref");
}

// A revert cancelled half-way (its foreign keys twinned against the old
// column and validated, its swap kept from the referencing table by a
// session's lock), then the job it reverted forgotten instead of reverted
// again: mig_forget drops the old column with the revert's twins that
// reference it (DROP COLUMN would refuse them), so that the table is as
// after the job with cleanup, the foreign key on the column of the new type.
TEST(ChangeType, ForgetAfterARevertCancelledHalfWayDropsItsForeignKeysToo)
{
    Conn c = pg_mig_primary();
    FreshCt(c, 5000);
    c.exec("DROP TABLE IF EXISTS ct_ref");
    c.exec("CREATE TABLE ct_ref (id serial PRIMARY KEY,"
           " ct_id int NOT NULL CONSTRAINT ct_ref_fk REFERENCES ct ON DELETE CASCADE)");
    c.exec("INSERT INTO ct_ref (ct_id) SELECT 1 + g % 5000 FROM generate_series(1, 2000) g");
    long long job = c.scalar_int("SELECT mig_change_type('ct', 'id', 'bigint', lock_timeout => '1s')");
    ASSERT_EQ("succeeded", wait_job(c, job, 300));
    long long revert = c.scalar_int("SELECT mig_revert(" + Id(job) + ", lock_timeout => '300ms', max_retries => 1000)");
    // ACCESS SHARE on ct_ref, no snapshot: only the revert's swap minds it
    Conn blocker(Sandbox::get().conninfo());
    blocker.exec("BEGIN");
    blocker.exec("LOCK TABLE ct_ref IN ACCESS SHARE MODE");
    wait_for([&] { return SwapRetries(revert) > 0; }, 300, "the revert's swap to be retried");
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_constraint WHERE conrelid = 'ct_ref'::regclass"
                              " AND conname ~ '^mig_ct_con_' AND convalidated"
                              " AND pg_get_constraintdef(oid) LIKE '%REFERENCES ct(mig_old_id)%'"));
    c.exec("SELECT mig_cancel(" + Id(revert) + ")");
    EXPECT_EQ("cancelled", wait_job(c, revert, 120));
    blocker.exec("ROLLBACK");
    c.exec("SELECT mig_forget(" + Id(job) + ")");
    EXPECT_EQ(1, job_events(c, job, "old column dropped"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_attribute WHERE attrelid IN ('ct'::regclass, 'ct_ref'::regclass)"
                              " AND attname ~ '^mig_' AND NOT attisdropped"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_constraint WHERE conname ~ '^mig_'"
                              " AND conrelid IN ('ct'::regclass, 'ct_ref'::regclass)"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_proc WHERE proname ~ ('^pg_mig_change_type_('"
                              " || 'ct'::regclass::oid || '|' || 'ct_ref'::regclass::oid || ')_')"));
    EXPECT_EQ(TableShape(c, "twin", "ct"), TableShape(c, "public", "ct"));
    EXPECT_EQ("FOREIGN KEY (ct_id) REFERENCES ct(id) ON DELETE CASCADE",
              *c.scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ct_ref_fk'"));
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'ct'::regclass AND attname = 'id'"));
    c.exec("DROP TABLE ct_ref");
}

// A table a logical replication subscription writes: its apply worker runs
// with session_replication_role = replica, where only triggers enabled
// ALWAYS (or REPLICA) fire.  The job's trigger, which keeps the new column in
// step with the rows written while the job runs, did not fire for them: an
// update the subscription applied after the walk had copied the row was lost
// at the swap, and an insert failed the NOT NULL check of the new column, so
// the subscription stopped.  (A subscriber is where a type change is often
// made: the new cluster of a blue/green upgrade.)
TEST(ChangeType, RowsALogicalSubscriptionWritesAreKeptInStep)
{
    Conn c = primary_as();
    c.exec("DROP DATABASE IF EXISTS ct_pub");
    c.exec("DROP DATABASE IF EXISTS ct_sub");
    c.exec("CREATE DATABASE ct_pub");
    c.exec("CREATE DATABASE ct_sub");
    Conn pub = primary_as("ct_pub");
    pub.exec("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)");
    pub.exec("INSERT INTO t SELECT g, g FROM generate_series(1, 2000) g");
    pub.exec("CREATE PUBLICATION ct_pub FOR TABLE t");
    // made apart: CREATE SUBSCRIPTION would wait for itself, on one server
    pub.exec("SELECT pg_create_logical_replication_slot('ct_sub', 'pgoutput')");
    Conn sub = primary_as("ct_sub");
    sub.exec("CREATE EXTENSION pg_mig");
    sub.exec("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)");
    sub.exec("CREATE SUBSCRIPTION ct_sub CONNECTION '" + Sandbox::get().conninfo("ct_pub") +
             "' PUBLICATION ct_pub WITH (create_slot = false, slot_name = 'ct_sub')");
    wait_for([&] { return sub.scalar_int("SELECT count(*) FROM t") == 2000; }, 60, "the initial copy");

    // the walk, held by its throttle query until a session that reads the
    // table holds off the swap, copies every row
    sub.exec("CREATE TABLE ct_hold (x int)");
    sub.exec("INSERT INTO ct_hold VALUES (1)");
    long long job = sub.scalar_int("SELECT mig_change_type('t', 'v', 'bigint', lock_timeout => '200ms',"
                                   " throttle_query => 'SELECT EXISTS (SELECT FROM public.ct_hold)')");
    wait_for([&] { return sub.scalar("SELECT throttled FROM mig_jobs WHERE job_id = $1", {Id(job)}).has_value(); },
             60, "the walk to be held");
    Conn reader = primary_as("ct_sub");
    reader.exec("BEGIN");
    reader.exec("SELECT count(*) FROM t");
    sub.exec("DELETE FROM ct_hold");
    std::string reader_pid = *reader.scalar("SELECT pg_backend_pid()::text");
    wait_for([&] {
        return sub.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)})
                   .value_or("")
                   .find("waits for pid " + reader_pid) != std::string::npos;
    }, 120, "the swap to wait for the reader");
    // the publisher writes: updates of rows the walk copied, and inserts
    pub.exec("UPDATE t SET v = v + 1000000 WHERE id % 10 = 0");
    pub.exec("INSERT INTO t SELECT g, g FROM generate_series(2001, 2100) g");
    wait_for([&] { return sub.scalar_int("SELECT count(*) FROM t WHERE v > 1000000 OR id > 2000") == 300; },
             60, "the subscription to apply the publisher's writes");
    reader.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(sub, job, 120))
        << sub.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
    EXPECT_EQ("bigint", *sub.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                    " WHERE attrelid = 't'::regclass AND attname = 'v'"));
    // the publisher's rows, every one, as the subscriber has them
    pub.exec("UPDATE t SET v = v + 1 WHERE id % 7 = 0");
    std::string sums = "SELECT count(*)::text || ' ' || sum(v)::text || ' ' || sum(v * id)::text FROM t";
    std::string want = *pub.scalar(sums);
    wait_for([&] { return *sub.scalar(sums) == want; }, 60, "the subscriber to have the publisher's rows");
    EXPECT_EQ(want, *sub.scalar(sums));
    sub.exec("DROP SUBSCRIPTION ct_sub");
    reader = primary_as();
    sub = primary_as();
    pub = primary_as();
    c.exec("DROP DATABASE ct_sub WITH (FORCE)");
    c.exec("DROP DATABASE ct_pub WITH (FORCE)");
}

// An owner whose sessions default to another tablespace (ALTER ROLE app SET
// default_tablespace = fast, so that what the application creates lands
// there): the copy of an index in the database's default tablespace was
// built in the owner's, and after the swap the index had moved there, where
// ALTER COLUMN TYPE keeps it where it was.  The copies of an index in a named
// tablespace kept it already.
TEST(ChangeType, TheIndexCopiesStayInTheirTablespace)
{
    Conn c = primary_as();
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    // a directory the server's user owns, beside its data directory, as
    // CREATE TABLESPACE wants
    std::string data_dir = *c.scalar("SHOW data_directory");
    std::string dir = data_dir.substr(0, data_dir.find_last_of('/')) + "/ts_fast";
    struct stat data;
    ASSERT_EQ(0, stat(data_dir.c_str(), &data)) << data_dir;
    ASSERT_EQ(0, mkdir(dir.c_str(), 0700));
    ASSERT_EQ(0, chown(dir.c_str(), data.st_uid, data.st_gid));
    c.exec("CREATE TABLESPACE ts_fast LOCATION '" + dir + "'");
    c.exec("DROP ROLE IF EXISTS ts_app");
    c.exec("CREATE ROLE ts_app LOGIN");
    c.exec("GRANT CREATE ON TABLESPACE ts_fast TO ts_app");
    c.exec("GRANT CREATE ON SCHEMA public TO ts_app");
    c.exec("ALTER ROLE ts_app SET default_tablespace = 'ts_fast'");
    Conn app = primary_as("postgres", "ts_app");
    app.exec("SET default_tablespace = ''");
    app.exec("CREATE TABLE ts_t (id int PRIMARY KEY, v int NOT NULL, w int NOT NULL)");
    app.exec("CREATE INDEX ts_t_v ON ts_t (v)");
    app.exec("CREATE INDEX ts_t_v_w ON ts_t (v, w) TABLESPACE ts_fast");
    app.exec("INSERT INTO ts_t SELECT g, g, g FROM generate_series(1, 1000) g");
    const std::string where = "SELECT string_agg(c.relname || ':' || COALESCE(t.spcname, '-'), ' ' ORDER BY c.relname)"
                              " FROM pg_class c LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace"
                              " WHERE c.relname LIKE 'ts\\_t%'";
    std::string before = *c.scalar(where);
    EXPECT_EQ("ts_t:- ts_t_pkey:- ts_t_v:- ts_t_v_w:ts_fast", before);
    long long job = app.scalar_int("SELECT mig_change_type('ts_t', 'v', 'bigint')");
    EXPECT_EQ("succeeded", wait_job(c, job, 120))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
    EXPECT_EQ(before, *c.scalar(where));
    app = primary_as();
    c.exec("DROP TABLE ts_t");
    c.exec("DROP TABLESPACE ts_fast");
}

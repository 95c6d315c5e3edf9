// pgmig_bench.cpp -- pg_mig against the usual ways of backfilling a column,
// side by side on one sandbox primary + streaming standby (bench/run.sh
// starts it and passes the connection in the PG* variables).
//
// Every method sets orders.tracking_id = 'TRK-' || id on a fresh, identical
// copy of the table (generate_series data, VACUUM (FREEZE, ANALYZE) and
// CHECKPOINT before each run, the standby caught up), rounds interleave the
// methods, and medians are reported:
//   a  one UPDATE (the ceiling)            b  PL/pgSQL procedure, keyset chunks of 10,000, COMMIT per chunk
//   c  client loop, keyset chunks (libpq)  d  Django-style: server-side cursor by 2,000, one UPDATE + commit per row
//   e  pg_mig, default settings            f  pg_mig, max_lag_bytes 2 MB
//   g  client loop with a stop/go lag check at 2 MB
// For a, b, e (and e with nice_ratio) a concurrent pgbench OLTP script
// measures TPS, p99 latency and the longest commit gap against a baseline.
// A scaling run times pg_mig at growing sizes with the worker's peak memory.
//
// Every run is checked for correctness (every row set, none wrong); with
// --quick (small sizes, one round) that check is all that matters, and a
// wrong result exits 1.  Timings are reported against targets, never asserted.
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "render.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double WallNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------- libpq

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class Pg {
public:
    explicit Pg(const std::string& app = "pgmig_bench")
    {
        const char* keys[] = {"application_name", "dbname", nullptr};
        const char* values[] = {app.c_str(), "", nullptr};
        const char* db = getenv("PGDATABASE");
        values[1] = db ? db : "postgres";
        conn_ = PQconnectdbParams(keys, values, 0);
        if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn_));
        exec("SET client_min_messages = warning");
    }
    ~Pg() { PQfinish(conn_); }
    Pg(const Pg&) = delete;
    Pg& operator=(const Pg&) = delete;

    Result exec(const std::string& sql, const std::vector<std::string>& params = {})
    {
        std::vector<const char*> p;
        for (const auto& s : params) p.push_back(s.c_str());
        Result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(), nullptr, nullptr,
                              0));
        auto st = PQresultStatus(r.get());
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            throw std::runtime_error(sql.substr(0, 80) + ": " + PQresultErrorMessage(r.get()));
        return r;
    }
    std::string scalar(const std::string& sql, const std::vector<std::string>& params = {})
    {
        auto r = exec(sql, params);
        return PQntuples(r.get()) && !PQgetisnull(r.get(), 0, 0) ? PQgetvalue(r.get(), 0, 0) : "";
    }
    double num(const std::string& sql, const std::vector<std::string>& params = {})
    {
        auto s = scalar(sql, params);
        return s.empty() ? 0 : std::stod(s);
    }
    void prepare(const std::string& name, const std::string& sql)
    {
        Result r(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) throw std::runtime_error(PQresultErrorMessage(r.get()));
    }
    Result run_prepared(const std::string& name, const std::vector<std::string>& params)
    {
        std::vector<const char*> p;
        for (const auto& s : params) p.push_back(s.c_str());
        Result r(PQexecPrepared(conn_, name.c_str(), static_cast<int>(p.size()), p.data(), nullptr, nullptr, 0));
        auto st = PQresultStatus(r.get());
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            throw std::runtime_error(name + ": " + PQresultErrorMessage(r.get()));
        return r;
    }

private:
    PGconn* conn_;
};

// ---------------------------------------------------------------- options

struct Options {
    bool quick = false;
    long rows = 2000000;
    int rounds = 3;
    long django_rows = 100000;
    std::vector<long> scale = {1000000, 5000000, 20000000};
    int pgbench_clients = 4;
    double nice_ratio = 6.0;
    std::string out = "bench/RESULTS.md";
    std::string work = "/tmp";
    std::vector<std::string> only;  // --methods: a subset of the solo runs, no report (for profiling)
};

// ---------------------------------------------------------------- sampler

// Samples every 20 ms the open transactions of the backfill (application
// name bench_backfill, or a pg_mig worker), and every 100 ms the standbys'
// byte lag and the worker's private memory.
class Sampler {
public:
    void start()
    {
        stop_ = false;
        max_xact_ms_ = 0;
        peak_lag_ = 0;
        peak_rss_kb_ = 0;
        thread_ = std::thread([this] { loop(); });
    }
    void stop()
    {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    double max_xact_ms() const { return max_xact_ms_; }
    double peak_lag() const { return peak_lag_; }
    long peak_rss_kb() const { return peak_rss_kb_; }

private:
    void loop()
    {
        Pg c("bench_sampler");
        int tick = 0;
        while (!stop_) {
            auto r = c.exec(
                "SELECT pid, extract(epoch FROM clock_timestamp() - xact_start) * 1000, backend_type"
                " FROM pg_stat_activity WHERE xact_start IS NOT NULL"
                " AND (application_name = 'bench_backfill' OR backend_type = 'pg_mig worker')");
            for (int i = 0; i < PQntuples(r.get()); i++) {
                max_xact_ms_ = std::max(max_xact_ms_, std::stod(PQgetvalue(r.get(), i, 1)));
                if (tick % 5 == 0 && std::string(PQgetvalue(r.get(), i, 2)) == "pg_mig worker")
                    peak_rss_kb_ = std::max(peak_rss_kb_, RssAnonKb(PQgetvalue(r.get(), i, 0)));
            }
            if (tick % 5 == 0)
                peak_lag_ = std::max(peak_lag_, c.num("SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(),"
                                                      " replay_lsn)), 0) FROM pg_stat_replication"));
            tick++;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    static long RssAnonKb(const std::string& pid)
    {
        std::ifstream f("/proc/" + pid + "/status");
        std::string line;
        while (std::getline(f, line))
            if (line.rfind("RssAnon:", 0) == 0) return std::atol(line.c_str() + 8);
        return 0;
    }
    std::thread thread_;
    std::atomic<bool> stop_{false};
    double max_xact_ms_ = 0, peak_lag_ = 0;
    long peak_rss_kb_ = 0;
};

// ---------------------------------------------------------------- pgbench

struct Load {
    double tps = 0, p99_ms = 0, max_gap_ms = 0;
    long txns = 0;
};

class Pgbench {
public:
    Pgbench(const Options& o, long rows, double seconds) : dir_(o.work + "/pgbench." + std::to_string(getpid()))
    {
        std::string cmd = "rm -rf '" + dir_ + "' && mkdir -p '" + dir_ + "'";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot make " + dir_);
        std::ofstream(dir_ + "/oltp.sql") << "\\set id random(1, " << rows << ")\n"
                                          << "BEGIN;\n"
                                          << "SELECT amount, status FROM orders WHERE id = :id;\n"
                                          << "UPDATE orders SET amount = amount + 1 WHERE id = :id;\n"
                                          << "END;\n";
        pid_ = fork();
        if (pid_ == 0) {
            std::string clients = std::to_string(o.pgbench_clients), t = std::to_string(static_cast<int>(seconds));
            std::string script = dir_ + "/oltp.sql", prefix = "--log-prefix=" + dir_ + "/log";
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execlp("pgbench", "pgbench", "-n", "-c", clients.c_str(), "-j", "2", "-T", t.c_str(), "-f",
                   script.c_str(), "-l", prefix.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        started_ = WallNow();
        ends_ = started_ + seconds;
    }
    // Waits for pgbench, then measures the window [from, to] (wall clock).
    Load finish(double from, double to)
    {
        int status = 0;
        waitpid(pid_, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            throw std::runtime_error("pgbench failed (exit " + std::to_string(WEXITSTATUS(status)) + ")");
        struct Txn {
            double end, lat_ms;
        };
        std::vector<Txn> txns;
        std::string cmd = "cat '" + dir_ + "'/log.* 2>/dev/null";
        std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
        char line[256];
        while (p && fgets(line, sizeof line, p.get())) {
            long client, no, lat_us, script, sec, usec;
            if (std::sscanf(line, "%ld %ld %ld %ld %ld %ld", &client, &no, &lat_us, &script, &sec, &usec) == 6)
                txns.push_back({sec + usec / 1e6, lat_us / 1000.0});
        }
        std::system(("rm -rf '" + dir_ + "'").c_str());
        Load l;
        to = std::min(to, ends_ - 1.0);  // pgbench may stop before the backfill does (and winds down)
        std::vector<double> ends, lats;
        for (const auto& t : txns) {
            if (t.end >= from && t.end <= to) ends.push_back(t.end);
            if (t.end - t.lat_ms / 1000 < to && t.end > from) lats.push_back(t.lat_ms);  // overlaps the window
        }
        std::sort(ends.begin(), ends.end());
        std::sort(lats.begin(), lats.end());
        l.txns = static_cast<long>(ends.size());
        l.tps = ends.size() / std::max(to - from, 1e-3);
        if (!lats.empty()) l.p99_ms = lats[std::min(lats.size() - 1, static_cast<size_t>(lats.size() * 0.99))];
        double prev = from;
        for (double e : ends) {
            l.max_gap_ms = std::max(l.max_gap_ms, (e - prev) * 1000);
            prev = e;
        }
        l.max_gap_ms = std::max(l.max_gap_ms, (to - prev) * 1000);
        return l;
    }
    double started() const { return started_; }

private:
    std::string dir_;
    pid_t pid_ = -1;
    double started_ = 0, ends_ = 0;
};

// ---------------------------------------------------------------- the methods

struct Run {
    std::string method;
    long rows = 0;            // rows the method changed
    double seconds = 0;
    double wal_bytes = 0;
    double max_xact_ms = 0;
    double peak_lag = 0;
    double table_bytes = 0;   // after
    double table_before = 0;
    long peak_rss_kb = 0;
    std::optional<Load> load;
    bool correct = false;
};

const char* kWhere = "tracking_id IS NULL";

void MakeTable(Pg& c, long rows)
{
    c.exec("DROP TABLE IF EXISTS orders");
    // autovacuum off on this table only: every method and every size does the
    // same work (a vacuum that starts halfway through a long run would be
    // charged to whichever method ran then)
    c.exec("CREATE TABLE orders (id bigint NOT NULL, customer_id int NOT NULL, amount numeric(10,2) NOT NULL,"
           " status text NOT NULL, created_at timestamptz NOT NULL, note text) WITH (autovacuum_enabled = false)");
    c.exec("INSERT INTO orders SELECT g, (g * 7919) % 100000, ((g * 31) % 100000) / 100.0,"
           " (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4],"
           " '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second', md5(g::text)"
           " FROM generate_series(1, $1::bigint) g",
           {std::to_string(rows)});
    c.exec("ALTER TABLE orders ADD PRIMARY KEY (id)");
    c.exec("ALTER TABLE orders ADD COLUMN tracking_id text");  // nullable: no rewrite
    c.exec("VACUUM (FREEZE, ANALYZE) orders");
    c.exec("CHECKPOINT");
    // the standby has everything before a run starts
    std::string lsn = c.scalar("SELECT pg_current_wal_lsn()::text");
    for (int i = 0; i < 6000; i++) {
        if (c.num("SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= $1::pg_lsn", {lsn}) >= 1) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("the standby did not catch up");
}

void KeysetLoop(Pg& w, long batch, double stop_go_lag)
{
    w.prepare("boundary", "SELECT max(id) FROM (SELECT id FROM orders WHERE id > $1 ORDER BY id LIMIT $2) s");
    w.prepare("chunk", "UPDATE orders SET tracking_id = 'TRK-' || id WHERE id > $1 AND id <= $2 AND tracking_id IS NULL");
    std::string last = "0";
    for (;;) {
        if (stop_go_lag > 0)
            while (w.num("SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)"
                         " FROM pg_stat_replication") > stop_go_lag)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto r = w.run_prepared("boundary", {last, std::to_string(batch)});
        if (PQgetisnull(r.get(), 0, 0)) break;
        std::string upto = PQgetvalue(r.get(), 0, 0);
        w.run_prepared("chunk", {last, upto});
        last = upto;
    }
}

void DjangoLoop(Pg& w, long subset)
{
    // Model.objects.filter(id__lte=subset).iterator(chunk_size=2000): a named
    // cursor WITH HOLD (autocommit); obj.tracking_id = ...; obj.save(): an
    // UPDATE of every field by primary key, its own transaction
    w.exec("BEGIN");
    w.exec("DECLARE django_cur CURSOR WITH HOLD FOR SELECT id, customer_id, amount, status, created_at, note"
           " FROM orders WHERE id <= $1::bigint ORDER BY id",
           {std::to_string(subset)});
    w.exec("COMMIT");
    for (;;) {
        auto r = w.exec("FETCH 2000 FROM django_cur");
        int n = PQntuples(r.get());
        if (n == 0) break;
        for (int i = 0; i < n; i++) {
            std::string id = PQgetvalue(r.get(), i, 0);
            w.exec("UPDATE orders SET customer_id = $1, amount = $2, status = $3, created_at = $4, note = $5,"
                   " tracking_id = $6 WHERE id = $7",
                   {PQgetvalue(r.get(), i, 1), PQgetvalue(r.get(), i, 2), PQgetvalue(r.get(), i, 3),
                    PQgetvalue(r.get(), i, 4), PQgetvalue(r.get(), i, 5), "TRK-" + id, id});
        }
    }
    w.exec("CLOSE django_cur");
}

void PgMig(Pg& w, const std::string& extra)
{
    std::string job = w.scalar("SELECT mig_start_backfill('orders', $$tracking_id = 'TRK-' || id$$,"
                               " where_clause => 'tracking_id IS NULL'" + extra + ")");
    for (;;) {
        std::string st = w.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {job});
        if (st == "succeeded") return;
        if (st == "failed" || st == "cancelled")
            throw std::runtime_error("pg_mig job " + job + " " + st + ": " +
                                     w.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {job}));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

Run RunMethod(const Options& o, const std::string& m, long rows, double pgbench_seconds = 0)
{
    Pg c;
    MakeTable(c, rows);
    Run run;
    run.method = m;
    run.table_before = c.num("SELECT pg_table_size('orders')");
    std::optional<Pgbench> bench;
    if (pgbench_seconds > 0) {
        bench.emplace(o, rows, pgbench_seconds);
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // clients connected and running
    }
    Pg w("bench_backfill");
    if (m == "b")
        w.exec("CREATE OR REPLACE PROCEDURE bench_backfill_b(batch int) LANGUAGE plpgsql AS $$"
               " DECLARE last bigint := 0; upto bigint;"
               " BEGIN"
               "   LOOP"
               "     SELECT max(id) INTO upto FROM (SELECT id FROM orders WHERE id > last ORDER BY id LIMIT batch) s;"
               "     EXIT WHEN upto IS NULL;"
               "     UPDATE orders SET tracking_id = 'TRK-' || id WHERE id > last AND id <= upto AND tracking_id IS NULL;"
               "     last := upto;"
               "     COMMIT;"
               "   END LOOP;"
               " END $$");
    double wal0 = c.num("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
    Sampler sampler;
    sampler.start();
    double from = WallNow();
    auto t0 = Clock::now();
    if (m == "a")
        w.exec(std::string("UPDATE orders SET tracking_id = 'TRK-' || id WHERE ") + kWhere);
    else if (m == "b")
        w.exec("CALL bench_backfill_b(10000)");
    else if (m == "c")
        KeysetLoop(w, 10000, 0);
    else if (m == "d")
        DjangoLoop(w, o.django_rows);
    else if (m == "e")
        PgMig(w, "");
    else if (m == "e_nice")
        PgMig(w, ", nice_ratio => " + std::to_string(o.nice_ratio));
    else if (m == "f")
        PgMig(w, ", max_lag_bytes => 2 * 1024 * 1024");
    else if (m == "g")
        KeysetLoop(w, 10000, 2 * 1024 * 1024);
    run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    double to = WallNow();
    sampler.stop();
    run.wal_bytes = c.num("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn") - wal0;
    run.max_xact_ms = sampler.max_xact_ms();
    run.peak_lag = sampler.peak_lag();
    run.peak_rss_kb = sampler.peak_rss_kb();
    if (bench) run.load = bench->finish(from, to);
    long subset = m == "d" ? std::min(o.django_rows, rows) : rows;
    run.rows = subset;
    long wrong = static_cast<long>(c.num("SELECT count(*) FROM orders WHERE id <= $1::bigint"
                                         " AND tracking_id IS DISTINCT FROM 'TRK-' || id",
                                         {std::to_string(subset)}));
    long extra = static_cast<long>(c.num("SELECT count(*) FROM orders WHERE id > $1::bigint AND tracking_id IS NOT NULL",
                                         {std::to_string(subset)}));
    run.correct = wrong == 0 && extra == 0;
    run.table_bytes = c.num("SELECT pg_table_size('orders')");
    if (!run.correct)
        std::fprintf(stderr, "method %s: %ld rows wrong, %ld rows outside the subset changed\n", m.c_str(), wrong,
                     extra);
    return run;
}

// ---------------------------------------------------------------- report

double Median(std::vector<double> v)
{
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string Fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// the controller's formatting: "3.6 MB", "1,234,567"
std::string Bytes(double b) { return migctl::FormatBytes(b); }
std::string Count(double n) { return migctl::FormatCount(std::llround(n)); }

const std::map<std::string, std::string> kNames = {
    {"a", "(a) one UPDATE"},
    {"b", "(b) PL/pgSQL, 10k keyset chunks, COMMIT each"},
    {"c", "(c) client loop, 10k keyset chunks"},
    {"d", "(d) Django-style, per-row UPDATE + commit"},
    {"e", "(e) pg_mig, defaults"},
    {"e_nice", "(e') pg_mig, nice_ratio"},
    {"f", "(f) pg_mig, max_lag_bytes 2 MB"},
    {"g", "(g) client loop, stop/go at 2 MB lag"},
};

struct Agg {
    std::vector<double> rate, wal, xact, lag, size, before, tps, p99, gap;
    long rows = 0;
};

Agg Aggregate(const std::vector<Run>& runs)
{
    Agg a;
    for (const auto& r : runs) {
        a.rows = r.rows;
        a.rate.push_back(r.rows / r.seconds);
        a.wal.push_back(r.wal_bytes);
        a.xact.push_back(r.max_xact_ms);
        a.lag.push_back(r.peak_lag);
        a.size.push_back(r.table_bytes);
        a.before.push_back(r.table_before);
        if (r.load) {
            a.tps.push_back(r.load->tps);
            a.p99.push_back(r.load->p99_ms);
            a.gap.push_back(r.load->max_gap_ms);
        }
    }
    return a;
}

std::string Sh(const std::string& cmd)
{
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
    char buf[512];
    while (p && fgets(buf, sizeof buf, p.get())) out += buf;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

}  // namespace

int main(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--quick") {
            o.quick = true;
            o.rows = 20000;
            o.rounds = 1;
            o.django_rows = 2000;
            o.scale = {20000, 60000};
        } else if (a == "--rows")
            o.rows = std::stol(next());
        else if (a == "--rounds")
            o.rounds = std::stoi(next());
        else if (a == "--django-rows")
            o.django_rows = std::stol(next());
        else if (a == "--scale") {
            o.scale.clear();
            std::stringstream ss(next());
            for (std::string s; std::getline(ss, s, ',');) o.scale.push_back(std::stol(s));
        } else if (a == "--out")
            o.out = next();
        else if (a == "--methods") {
            std::stringstream ss(next());
            for (std::string s; std::getline(ss, s, ',');) o.only.push_back(s);
        } else if (a == "--nice-ratio")
            o.nice_ratio = std::stod(next());
        else if (a == "--help") {
            std::cout << "Usage: pgmig_bench [--quick] [--rows N] [--rounds N] [--django-rows N] [--scale N,N,...]\n"
                         "                   [--nice-ratio R] [--out FILE] [--methods a,b,...]\n"
                         "--methods runs only those methods, once per round, solo, and prints their lines (no report).\n"
                         "Connects with the PG* variables to a primary with pg_mig preloaded and a streaming standby.\n";
            return 0;
        } else {
            std::cerr << "pgmig_bench: unknown option " << a << "\n";
            return 2;
        }
    }

    try {
        Pg c;
        c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
        if (c.num("SELECT count(*) FROM pg_stat_replication") < 1)
            throw std::runtime_error("no streaming standby: run through bench/run.sh");

        std::map<std::string, std::vector<Run>> solo, loaded, scaling;
        std::vector<Run> baseline_runs;
        std::vector<double> baseline_tps, baseline_p99, baseline_gap;
        int failures = 0;
        auto note = [&](const Run& r, const char* what) {
            std::fprintf(stderr, "  %-7s %-7s %10s rows  %8.2f s  %10s rows/s  xact %8.1f ms  lag %9s%s%s\n",
                         r.method.c_str(), what, Count(r.rows).c_str(), r.seconds, Count(r.rows / r.seconds).c_str(),
                         r.max_xact_ms, Bytes(r.peak_lag).c_str(),
                         r.load ? ("  tps " + Fmt("%.0f", r.load->tps) + " p99 " + Fmt("%.1f", r.load->p99_ms) +
                                   " ms gap " + Fmt("%.0f", r.load->max_gap_ms) + " ms")
                                      .c_str()
                                : "",
                         r.correct ? "" : "  WRONG");
            if (!r.correct) failures++;
        };

        if (!o.only.empty()) {
            for (int round = 1; round <= o.rounds; round++)
                for (const auto& m : o.only) {
                    Run r = RunMethod(o, m, o.rows);
                    note(r, "solo");
                }
            return failures ? 1 : 0;
        }
        for (int round = 1; round <= o.rounds; round++) {
            std::fprintf(stderr, "round %d of %d, %s rows\n", round, o.rounds, Count(o.rows).c_str());
            // interleaved: each method once per round, in a rotated order
            std::vector<std::string> order = {"a", "b", "c", "e", "f", "g"};
            if (round == 1) order.push_back("d");  // slow: once, on its subset
            std::rotate(order.begin(), order.begin() + (round - 1) % order.size(), order.end());
            for (const auto& m : order) {
                solo[m].push_back(RunMethod(o, m, o.rows));
                note(solo[m].back(), "solo");
            }
            // under a concurrent OLTP load, against a baseline of the same load alone
            double longest = 0;
            for (const char* m : {"a", "b", "e"}) longest = std::max(longest, solo[m].back().seconds);
            double window = std::max(o.quick ? 3.0 : 8.0, longest * 2.5 + 2);
            {
                Pg b;
                MakeTable(b, o.rows);
                Pgbench base(o, o.rows, window);
                std::this_thread::sleep_for(std::chrono::milliseconds(1000));
                double from = WallNow();
                std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(longest * 1000 + 500)));
                auto l = base.finish(from, WallNow());
                baseline_tps.push_back(l.tps);
                baseline_p99.push_back(l.p99_ms);
                baseline_gap.push_back(l.max_gap_ms);
                std::fprintf(stderr, "  baseline pgbench  tps %.0f  p99 %.1f ms  gap %.0f ms\n", l.tps, l.p99_ms,
                             l.max_gap_ms);
            }
            for (const char* m : {"a", "b", "e", "e_nice"}) {
                // a nice_ratio of r makes the job about 1 + r times slower
                double w = m == std::string("e_nice") ? window * (1 + o.nice_ratio) * 0.8 + 5 : window;
                loaded[m].push_back(RunMethod(o, m, o.rows, w));
                note(loaded[m].back(), "loaded");
            }
        }
        std::fprintf(stderr, "scaling\n");
        for (long n : o.scale) {
            scaling[std::to_string(n)].push_back(RunMethod(o, "e", n));
            note(scaling[std::to_string(n)].back(), "scale");
        }

        // ------------------------------------------------------------ RESULTS.md
        std::ostringstream md;
        auto agg = [&](std::map<std::string, std::vector<Run>>& m, const std::string& k) { return Aggregate(m[k]); };
        Agg A = agg(solo, "a");
        double a_rate = Median(A.rate);
        md << "# pg_mig benchmark results\n\n"
           << "Written by `bench/run.sh` (" << (o.quick ? "--quick: sizes too small to mean anything" : "full run")
           << ") on " << Sh("date -u '+%Y-%m-%d %H:%M UTC'") << ".\n\n"
           << "- machine: " << Sh("nproc") << " cores, " << Sh("free -g | awk '/Mem:/{print $2}'")
           << " GiB RAM, " << Sh("uname -sr") << "\n"
           << "- server: " << c.scalar("SELECT version()") << "\n"
           << "- settings: ";
        {
            auto r = c.exec("SELECT name || ' = ' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN"
                            " ('shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'synchronous_commit', 'fsync',"
                            " 'full_page_writes', 'wal_compression', 'wal_level', 'hot_standby_feedback') ORDER BY 1");
            for (int i = 0; i < PQntuples(r.get()); i++) md << (i ? ", " : "") << "`" << PQgetvalue(r.get(), i, 0) << "`";
        }
        md << "; one streaming standby on the same machine (physical slot)\n"
           << "- table: `orders` (id bigint primary key, 5 more columns, " << Bytes(Median(A.before))
           << " before the backfill, autovacuum off on it), " << Count(o.rows)
           << " rows; every method sets the new nullable column"
           << " `tracking_id = 'TRK-' || id` where it is NULL\n"
           << "- " << o.rounds << " round(s), methods interleaved, a fresh identical table per run,"
           << " `VACUUM (FREEZE, ANALYZE)` + `CHECKPOINT` before each; medians\n\n";

        md << "## Throughput, lock hold, WAL and replica lag\n\n"
           << "| method | rows/s | vs (a) | WAL | longest transaction | peak standby lag | table after |\n"
           << "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
        for (const char* m : {"a", "b", "c", "d", "e", "f", "g"}) {
            if (solo[m].empty()) continue;
            Agg g = Aggregate(solo[m]);
            double rate = Median(g.rate);
            md << "| " << kNames.at(m) << (std::string(m) == "d" ? " [" + Count(g.rows) + "-row subset, 1 run]" : "")
               << " | " << Count(rate) << " | " << Fmt("%.2f×", rate / a_rate) << " | "
               << Bytes(Median(g.wal) * (std::string(m) == "d" ? double(o.rows) / g.rows : 1.0))
               << (std::string(m) == "d" ? " (extrapolated)" : "") << " | " << Fmt("%.0f ms", Median(g.xact))
               << " | " << Bytes(Median(g.lag)) << " | " << Bytes(Median(g.size)) << " |\n";
        }
        if (!solo["d"].empty()) {
            Agg d = Aggregate(solo["d"]);
            md << "\n(d) ran once on the first " << Count(d.rows) << " rows; at its rate the full " << Count(o.rows)
               << " rows would take " << Fmt("%.0f s", o.rows / Median(d.rate))
               << " (extrapolated, not measured).\n";
        }

        double base_tps = Median(baseline_tps);
        md << "\n## Application impact (pgbench, " << o.pgbench_clients
           << " clients: SELECT and UPDATE of one random `orders` row per transaction)\n\n"
           << "Measured over the backfill's run time; the baseline is the same load with no backfill: "
           << Fmt("%.0f", base_tps) << " TPS, p99 " << Fmt("%.1f ms", Median(baseline_p99)) << ", longest commit gap "
           << Fmt("%.0f ms", Median(baseline_gap)) << ".\n\n"
           << "| method | backfill rows/s | TPS | vs baseline | p99 latency | longest commit gap |\n"
           << "| --- | ---: | ---: | ---: | ---: | ---: |\n";
        for (const char* m : {"a", "b", "e", "e_nice"}) {
            Agg g = Aggregate(loaded[m]);
            std::string name = kNames.at(m);
            if (std::string(m) == "e_nice") name = "(e') pg_mig, nice_ratio " + Fmt("%.1f", o.nice_ratio);
            md << "| " << name << " | " << Count(Median(g.rate)) << " | " << Fmt("%.0f", Median(g.tps)) << " | "
               << Fmt("%.0f %%", 100 * Median(g.tps) / base_tps) << " | " << Fmt("%.1f ms", Median(g.p99)) << " | "
               << Fmt("%.0f ms", Median(g.gap)) << " |\n";
        }

        md << "\n## Scaling (pg_mig, defaults)\n\n| rows | rows/s | vs smallest | longest chunk transaction |"
              " worker peak private memory (RssAnon) |\n"
           << "| ---: | ---: | ---: | ---: | ---: |\n";
        double first_rate = 0;
        for (long n : o.scale) {
            Agg g = Aggregate(scaling[std::to_string(n)]);
            double rate = Median(g.rate);
            if (first_rate == 0) first_rate = rate;
            long rss = scaling[std::to_string(n)].back().peak_rss_kb;
            md << "| " << Count(n) << " | " << Count(rate) << " | " << Fmt("%.2f×", rate / first_rate) << " | "
               << Fmt("%.0f ms", Median(g.xact)) << " | " << (rss ? Bytes(rss * 1024.0) : "n/a") << " |\n";
        }

        // targets: reported, never asserted
        Agg B = Aggregate(solo["b"]), C = Aggregate(solo["c"]), D = Aggregate(solo["d"]), E = Aggregate(solo["e"]),
            F = Aggregate(solo["f"]), G = Aggregate(solo["g"]);
        Agg LB = Aggregate(loaded["b"]), LE = Aggregate(loaded["e"]), LN = Aggregate(loaded["e_nice"]);
        double e_rate = Median(E.rate);
        auto mark = [](bool ok) { return ok ? "met" : "**missed**"; };
        double s_first = first_rate, s_last = Median(Aggregate(scaling[std::to_string(o.scale.back())]).rate);
        md << "\n## Targets\n\n| target | measured | |\n| --- | --- | --- |\n"
           << "| (e) ≥ 1.0× (a) rows/s | " << Fmt("%.2f×", e_rate / a_rate) << " (hand-written: (b) "
           << Fmt("%.2f×", Median(B.rate) / a_rate) << ", (c) " << Fmt("%.2f×", Median(C.rate) / a_rate) << ") | "
           << mark(e_rate >= a_rate) << " |\n"
           << "| longest pg_mig chunk transaction ≤ 100 ms (default chunk_time) | " << Fmt("%.0f ms", Median(E.xact))
           << " | " << mark(Median(E.xact) <= 100) << " |\n";
        if (!D.rate.empty())
            md << "| (e) ≥ 140× (d) rows/s | " << Fmt("%.0f×", e_rate / Median(D.rate)) << " | "
               << mark(e_rate >= 140 * Median(D.rate)) << " |\n";
        md << "| (f) ≥ 1.5× (g) rows/s, with a lower peak lag | " << Fmt("%.2f×", Median(F.rate) / Median(G.rate))
           << ", lag " << Bytes(Median(F.lag)) << " vs " << Bytes(Median(G.lag)) << " | "
           << mark(Median(F.rate) >= 1.5 * Median(G.rate) && Median(F.lag) < Median(G.lag)) << " |\n"
           << "| during (e) no commit gap much longer than one chunk | " << Fmt("%.0f ms", Median(LE.gap))
           << " (baseline " << Fmt("%.0f ms", Median(baseline_gap)) << ") | " << mark(Median(LE.gap) <= 250) << " |\n"
           << "| during (e) TPS ≥ (b)'s | " << Fmt("%.0f", Median(LE.tps)) << " vs " << Fmt("%.0f", Median(LB.tps))
           << " | " << mark(Median(LE.tps) >= Median(LB.tps)) << " |\n"
           << "| with nice_ratio, TPS ≥ 90 % of baseline | " << Fmt("%.0f %%", 100 * Median(LN.tps) / base_tps)
           << ", at " << Count(Median(LN.rate)) << " rows/s (" << Fmt("%.0f %%", 100 * Median(LN.rate) / Median(LE.rate))
           << " of (e) under the same load) | " << mark(Median(LN.tps) >= 0.9 * base_tps) << " |\n"
           << "| rows/s at the largest size within 10 % of the smallest | " << Fmt("%.2f×", s_last / s_first) << " | "
           << mark(s_last >= 0.9 * s_first) << " |\n";

        // the hand-written analysis, kept in the repository
        std::ifstream notes("bench/notes.md");
        if (notes && !o.quick) md << "\n" << std::string(std::istreambuf_iterator<char>(notes), {});
        std::string body = md.str();
        std::ofstream(o.out) << body;
        std::cout << body;
        if (failures) {
            std::cerr << "pgmig_bench: " << failures << " run(s) gave a wrong result\n";
            return 1;
        }
        std::cerr << "pgmig_bench: every method's result is correct\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "pgmig_bench: " << e.what() << "\n";
        return 1;
    }
}

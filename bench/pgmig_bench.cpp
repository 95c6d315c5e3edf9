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
#include <dirent.h>
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
#include <regex>
#include <set>
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
    std::vector<int> lanes = {1, 2, 4};  // parallel => n of the lanes runs
    long vacuum_every = 0;               // the bloat runs' vacuum_every; 0: pg_mig's automatic default
    std::string short_naptime = "1s";    // the bloat runs' short autovacuum_naptime
    std::set<std::string> parts = {"methods", "lanes", "load", "bloat", "scale", "sampling"};
    bool has(const char* part) const { return parts.count(part) > 0; }
};

// ---------------------------------------------------------------- sampler

// Where the CPU went during a run: cpu-seconds of the sandbox's processes
// (the children of its two postmasters, by their process titles) and of the
// whole machine (/proc/stat), so that a run can say whether it was CPU-bound
// and how much of the machine other work took.
struct CpuUse {
    double wall = 0;                        // seconds sampled
    double busy = 0, iowait = 0;            // machine, cpu-seconds
    std::map<std::string, double> by_kind;  // sandbox processes, cpu-seconds
    double cores(double cpu_s) const { return wall > 0 ? cpu_s / wall : 0; }
    double kind(const std::string& k) const
    {
        auto it = by_kind.find(k);
        return it == by_kind.end() ? 0 : it->second;
    }
    double ours() const
    {
        double t = 0;
        for (const auto& [k, v] : by_kind) t += v;
        return t;
    }
};

class CpuMeter {
public:
    CpuMeter()
    {
        for (const char* v : {"PRIMARY_DATA", "STANDBY_DATA"}) {
            const char* d = getenv(v);
            if (!d) continue;
            std::ifstream f(std::string(d) + "/postmaster.pid");
            long pid = 0;
            if (f >> pid) postmasters_.push_back(pid);
        }
        ticks_ = sysconf(_SC_CLK_TCK);
    }
    void start()
    {
        procs_.clear();
        sample(true);
        t0_ = Clock::now();
        busy0_ = busy_;
        iowait0_ = iowait_;
    }
    void sample(bool first = false)
    {
        ReadStat();
        std::unique_ptr<DIR, int (*)(DIR*)> proc(opendir("/proc"), closedir);
        while (struct dirent* e = proc ? readdir(proc.get()) : nullptr) {
            long pid = std::atol(e->d_name);
            if (pid <= 0) continue;
            std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
            std::string line;
            if (!std::getline(f, line)) continue;
            auto rp = line.rfind(')');
            if (rp == std::string::npos) continue;
            std::istringstream rest(line.substr(rp + 2));
            std::string state;
            long ppid = 0;
            rest >> state >> ppid;
            if (std::find(postmasters_.begin(), postmasters_.end(), ppid) == postmasters_.end()) continue;
            std::string skip;
            for (int i = 0; i < 9; i++) rest >> skip;  // fields 5..13
            double ut = 0, st = 0;
            rest >> ut >> st;
            double cpu = (ut + st) / ticks_;
            auto it = procs_.find(pid);
            if (it == procs_.end()) {
                Proc p;
                p.first = first ? cpu : 0;  // a process born during the run counts from zero
                it = procs_.emplace(pid, p).first;
            }
            // a new process has its title only once it runs: look until it is a known kind
            if (it->second.kind.empty() || it->second.kind == "client backends") it->second.kind = Kind(pid);
            it->second.last = cpu;
        }
    }
    CpuUse stop()
    {
        sample();
        CpuUse u;
        u.wall = std::chrono::duration<double>(Clock::now() - t0_).count();
        u.busy = busy_ - busy0_;
        u.iowait = iowait_ - iowait0_;
        for (const auto& [pid, p] : procs_) u.by_kind[p.kind] += p.last - p.first;
        return u;
    }

private:
    struct Proc {
        std::string kind;
        double first = 0, last = 0;
    };
    void ReadStat()
    {
        std::ifstream f("/proc/stat");
        std::string cpu;
        double v[8] = {0};
        f >> cpu;
        for (double& x : v) f >> x;
        // user nice system idle iowait irq softirq steal
        busy_ = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / ticks_;
        iowait_ = v[4] / ticks_;
    }
    static std::string Kind(long pid)
    {
        std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
        std::string t((std::istreambuf_iterator<char>(f)), {});
        auto has = [&](const char* w) { return t.find(w) != std::string::npos; };
        if (has("pg_mig worker")) return "pg_mig workers";
        if (has("startup")) return "standby replay";
        if (has("walsender") || has("walreceiver")) return "WAL sender + receiver";
        if (has("walwriter")) return "WAL writer";
        if (has("checkpointer") || has("background writer")) return "checkpointer + bgwriter";
        if (has("autovacuum")) return "autovacuum";
        if (has("pg_mig launcher") || has("logical replication") || has("stats")) return "other postgres";
        return "client backends";
    }
    std::vector<long> postmasters_;
    std::map<long, Proc> procs_;
    long ticks_ = 100;
    double busy_ = 0, iowait_ = 0, busy0_ = 0, iowait0_ = 0;
    Clock::time_point t0_;
};

// Samples every 20 ms the open transactions and the wait events of the
// backfill (application name bench_backfill, or a pg_mig worker) and which
// autovacuum workers work on orders, and every 100 ms the standbys' byte
// lag, the worker's private memory and the CPU use.
class Sampler {
public:
    ~Sampler() { stop(); }
    void start()
    {
        stop_ = false;
        max_xact_ms_ = 0;
        max_vacuum_ms_ = 0;
        peak_lag_ = 0;
        peak_rss_kb_ = 0;
        waits_.clear();
        autovacuums_.clear();
        cpu_.start();
        thread_ = std::thread([this] { loop(); });
    }
    void stop()
    {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        cpu_use_ = cpu_.stop();
    }
    double max_xact_ms() const { return max_xact_ms_; }
    double max_vacuum_ms() const { return max_vacuum_ms_; }
    double peak_lag() const { return peak_lag_; }
    long peak_rss_kb() const { return peak_rss_kb_; }
    const std::map<std::string, long>& waits() const { return waits_; }
    int autovacuums() const { return static_cast<int>(autovacuums_.size()); }
    const CpuUse& cpu() const { return cpu_use_; }

private:
    void loop()
    {
        Pg c("bench_sampler");
        int tick = 0;
        while (!stop_) {
            auto r = c.exec(
                "SELECT pid, extract(epoch FROM clock_timestamp() - xact_start) * 1000, backend_type, state,"
                " CASE WHEN wait_event IS NULL THEN 'CPU' ELSE wait_event_type || ':' || wait_event END,"
                " (query ILIKE 'VACUUM%')::int"
                " FROM pg_stat_activity"
                " WHERE application_name = 'bench_backfill' OR backend_type = 'pg_mig worker'"
                " OR (backend_type = 'autovacuum worker' AND query LIKE '%orders%')");
            for (int i = 0; i < PQntuples(r.get()); i++) {
                std::string type = PQgetvalue(r.get(), i, 2);
                if (type == "autovacuum worker") {
                    autovacuums_.insert(PQgetvalue(r.get(), i, 0));
                    continue;
                }
                if (!PQgetisnull(r.get(), i, 1)) {
                    // a pg_mig worker's own VACUUM (vacuum_every) is not a chunk: kept apart
                    double& m = std::string(PQgetvalue(r.get(), i, 5)) == "1" ? max_vacuum_ms_ : max_xact_ms_;
                    m = std::max(m, std::stod(PQgetvalue(r.get(), i, 1)));
                }
                if (std::string(PQgetvalue(r.get(), i, 3)) == "active") waits_[PQgetvalue(r.get(), i, 4)]++;
                if (tick % 5 == 0 && type == "pg_mig worker")
                    peak_rss_kb_ = std::max(peak_rss_kb_, RssAnonKb(PQgetvalue(r.get(), i, 0)));
            }
            if (tick % 5 == 0) {
                peak_lag_ = std::max(peak_lag_, c.num("SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(),"
                                                      " replay_lsn)), 0) FROM pg_stat_replication"));
                cpu_.sample();
            }
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
    double max_xact_ms_ = 0, max_vacuum_ms_ = 0, peak_lag_ = 0;
    long peak_rss_kb_ = 0;
    std::map<std::string, long> waits_;
    std::set<std::string> autovacuums_;
    CpuMeter cpu_;
    CpuUse cpu_use_;
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
    double max_vacuum_ms = 0;  // the longest VACUUM of a pg_mig worker (vacuum_every)
    double peak_lag = 0;
    double table_bytes = 0;   // after
    double table_before = 0;
    double index_bytes = 0;   // after
    long peak_rss_kb = 0;
    int autovacuums = 0;      // autovacuum workers seen on the table during the run
    long vacuum_every = 0;    // the pg_mig job's vacuum_every (as resolved at start)
    std::map<std::string, long> waits;  // wait-event samples of the backfill's backends
    CpuUse cpu;
    long lane_min = 0, lane_max = 0;    // rows of the smallest and largest lane
    std::optional<Load> load;
    bool correct = false;
    std::string job;          // the pg_mig job's id, "" for the other methods
};

const char* kWhere = "tracking_id IS NULL";

void MakeTable(Pg& c, long rows, bool autovacuum = false)
{
    c.exec("DROP TABLE IF EXISTS orders");
    // autovacuum off on this table, except for the bloat and scaling runs:
    // the methods compared side by side do the same work (a vacuum that starts
    // halfway through a long run would be charged to whichever method ran then)
    c.exec(std::string("CREATE TABLE orders (id bigint NOT NULL, customer_id int NOT NULL,"
                       " amount numeric(10,2) NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL,"
                       " note text)") +
           (autovacuum ? "" : " WITH (autovacuum_enabled = false)"));
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

std::string StartPgMig(Pg& w, const std::string& extra, const std::string& set = "tracking_id = 'TRK-' || id",
                       const std::string& where = "tracking_id IS NULL")
{
    return w.scalar("SELECT mig_start_backfill('orders', $1, where_clause => " +
                        std::string(where.empty() ? "NULL" : "$2") + extra + ")",
                    where.empty() ? std::vector<std::string>{set} : std::vector<std::string>{set, where});
}

void WaitPgMig(Pg& w, const std::string& job)
{
    for (;;) {
        std::string st = w.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {job});
        if (st == "succeeded") return;
        if (st == "failed" || st == "cancelled")
            throw std::runtime_error("pg_mig job " + job + " " + st + ": " +
                                     w.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {job}));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

std::string PgMig(Pg& w, const std::string& extra)
{
    std::string job = StartPgMig(w, extra);
    WaitPgMig(w, job);
    return job;
}

// The exactly-once check of parallel lanes (--quick): no where clause and a
// SET that shows a second application ('TRK-1+TRK-1'); and every lane gets
// its worker at start: the lanes wait behind a gate (throttle_query) until
// both workers are there; bench/run.sh sets pg_mig.naptime to an hour, so
// a lane started only by the launcher's periodic rescan, or after another
// lane ends, never comes and the check fails.
std::string LanesOnceCheck(Pg& c, Pg& w, int lanes)
{
    c.exec("DROP TABLE IF EXISTS bench_gate");
    c.exec("CREATE TABLE bench_gate (open boolean NOT NULL)");
    c.exec("INSERT INTO bench_gate VALUES (false)");
    std::string job = StartPgMig(w,
                                 ", parallel => " + std::to_string(lanes) +
                                     ", throttle_query => 'SELECT NOT open FROM public.bench_gate'",
                                 "tracking_id = coalesce(tracking_id || '+', '') || 'TRK-' || id", "");
    long running = 0;
    if (c.num("SELECT (current_setting('pg_mig.naptime')::interval < '10 min')::int") == 1)
        throw std::runtime_error("the lanes check needs pg_mig.naptime of an hour (bench/run.sh sets it)");
    for (int i = 0; i < 600 && running < lanes; i++) {  // a hang guard, not a timing
        running = static_cast<long>(
            c.num("SELECT count(worker_pid) FROM mig_job_lanes WHERE job_id = $1 AND state = 'running'", {job}));
        if (running < lanes) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    c.exec("UPDATE bench_gate SET open = true");
    if (running < lanes) {
        c.exec("SELECT mig_cancel($1)", {job});
        throw std::runtime_error("parallel => " + std::to_string(lanes) + ": only " + std::to_string(running) +
                                 " lane(s) got a worker at start (job " + job + ")");
    }
    WaitPgMig(w, job);
    return job;
}

// "p4" -> 4 (pg_mig with parallel => 4), else 0
int LanesOf(const std::string& m)
{
    if (m.size() < 2 || m[0] != 'p') return 0;
    for (size_t i = 1; i < m.size(); i++)
        if (!isdigit(static_cast<unsigned char>(m[i]))) return 0;
    return std::atoi(m.c_str() + 1);
}

// Runs method m on a fresh table of `rows` rows (autovacuum on it if asked),
// under a pgbench load for pgbench_seconds if > 0, and checks the result.
Run RunMethod(const Options& o, const std::string& m, long rows, double pgbench_seconds = 0,
              bool autovacuum = false)
{
    Pg c;
    MakeTable(c, rows, autovacuum);
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
    std::string job;
    int lanes = LanesOf(m);
    if (m == "a")
        w.exec(std::string("UPDATE orders SET tracking_id = 'TRK-' || id WHERE ") + kWhere);
    else if (m == "b")
        w.exec("CALL bench_backfill_b(10000)");
    else if (m == "c")
        KeysetLoop(w, 10000, 0);
    else if (m == "d")
        DjangoLoop(w, o.django_rows);
    else if (m == "e")
        job = PgMig(w, "");
    else if (m == "e_nice")
        job = PgMig(w, ", nice_ratio => " + std::to_string(o.nice_ratio));
    else if (m == "e_novac")
        job = PgMig(w, ", vacuum_every => 0");
    else if (m == "e_vac")
        job = PgMig(w, o.vacuum_every > 0 ? ", vacuum_every => " + std::to_string(o.vacuum_every) : "");
    else if (m == "f")
        job = PgMig(w, ", max_lag_bytes => 2 * 1024 * 1024");
    else if (m == "g")
        KeysetLoop(w, 10000, 2 * 1024 * 1024);
    else if (lanes > 0)
        job = PgMig(w, ", parallel => " + std::to_string(lanes));
    else if (m == "p2x") {
        lanes = 2;
        job = LanesOnceCheck(c, w, lanes);
    } else
        throw std::runtime_error("unknown method " + m);
    run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    double to = WallNow();
    sampler.stop();
    run.wal_bytes = c.num("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn") - wal0;
    run.max_xact_ms = sampler.max_xact_ms();
    run.max_vacuum_ms = sampler.max_vacuum_ms();
    run.peak_lag = sampler.peak_lag();
    run.peak_rss_kb = sampler.peak_rss_kb();
    run.waits = sampler.waits();
    run.autovacuums = sampler.autovacuums();
    run.cpu = sampler.cpu();
    if (bench) run.load = bench->finish(from, to);
    long subset = m == "d" ? std::min(o.django_rows, rows) : rows;
    run.rows = subset;
    long wrong = static_cast<long>(c.num("SELECT count(*) FROM orders WHERE id <= $1::bigint"
                                         " AND tracking_id IS DISTINCT FROM 'TRK-' || id",
                                         {std::to_string(subset)}));
    long extra = static_cast<long>(c.num("SELECT count(*) FROM orders WHERE id > $1::bigint AND tracking_id IS NOT NULL",
                                         {std::to_string(subset)}));
    run.correct = wrong == 0 && extra == 0;
    if (!run.correct)
        std::fprintf(stderr, "method %s: %ld rows wrong, %ld rows outside the subset changed\n", m.c_str(), wrong,
                     extra);
    if (!job.empty()) {
        run.vacuum_every = static_cast<long>(c.num("SELECT vacuum_every FROM mig_job WHERE job_id = $1", {job}));
        // the job's own count: every row changed once, by exactly one lane
        long done = static_cast<long>(c.num("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {job}));
        if (done != rows) {
            std::fprintf(stderr, "method %s: job %s counted %ld rows, not %ld\n", m.c_str(), job.c_str(), done, rows);
            run.correct = false;
        }
        if (lanes > 1) {
            auto r = c.exec("SELECT count(*), coalesce(sum(rows_done), 0), coalesce(min(rows_done), 0),"
                            " coalesce(max(rows_done), 0), count(*) FILTER (WHERE state = 'done')"
                            " FROM mig_job_lanes WHERE job_id = $1",
                            {job});
            long n = std::atol(PQgetvalue(r.get(), 0, 0)), sum = std::atol(PQgetvalue(r.get(), 0, 1)),
                 finished = std::atol(PQgetvalue(r.get(), 0, 4));
            run.lane_min = std::atol(PQgetvalue(r.get(), 0, 2));
            run.lane_max = std::atol(PQgetvalue(r.get(), 0, 3));
            if (n != lanes || sum != rows || finished != lanes) {
                std::fprintf(stderr, "method %s: job %s has %ld lanes (%ld done) with %ld rows, not %d with %ld\n",
                             m.c_str(), job.c_str(), n, finished, sum, lanes, rows);
                run.correct = false;
            }
        }
    }
    run.table_bytes = c.num("SELECT pg_table_size('orders')");
    run.index_bytes = c.num("SELECT pg_indexes_size('orders')");
    run.job = job;
    return run;
}

// ---------------------------------------------------------------- the sampler's cost

// What the timeline's samples cost a job, from the worker's own accounting
// (extension/src/timeline.c): with log_min_messages = debug1 a worker logs,
// with every forced sample (where it takes up the job, where its walk
// ends), its sums so far: samples written, calls (the checks whether one is
// due included), the time spent in them and the WAL they wrote.  The last
// line of each worker (pid, lane) is its total; a job's cost is the sum.
struct SamplerCost {
    bool found = false;
    long samples = 0, calls = 0;
    double ms = 0, cpu_ms = 0, wal = 0;  // time, CPU time (user + system), WAL bytes
    long workers = 0;  // workers' first lines: each a worker's first, forced sample alone
    double first_ms = 0, first_cpu_ms = 0;  // their time: a new backend's caches, the count of the lane's samples
    double further_ms() const { return samples > workers ? (ms - first_ms) / (samples - workers) : -1; }
    double further_cpu_ms() const { return samples > workers ? (cpu_ms - first_cpu_ms) / (samples - workers) : -1; }
};

// The primary's log (bench/run.sh's sandbox: the data directory + ".log"),
// read through the server from an offset on.
class ServerLog {
public:
    explicit ServerLog(Pg& c) : path_(c.scalar("SELECT current_setting('data_directory') || '.log'")) {}
    double size(Pg& c) { return c.num("SELECT (pg_stat_file($1, true)).size", {path_}); }
    std::string since(Pg& c, double offset)
    {
        return c.scalar("SELECT pg_read_file($1, $2::bigint, greatest((pg_stat_file($1)).size - $2::bigint, 0), true)",
                        {path_, std::to_string(std::llround(offset))});
    }

private:
    std::string path_;
};

SamplerCost ParseSamplerCost(const std::string& log, const std::string& job)
{
    static const std::regex line(R"(\[(\d+)\].*pg_mig job (\d+) lane (\d+): (\d+) timeline samples \((\d+) calls\))"
                                 R"( took ([0-9.]+) ms \(([0-9.]+) ms of CPU\) and (\d+) bytes of WAL)");
    std::map<std::pair<std::string, std::string>, SamplerCost> last;  // (pid, lane) -> its latest sums
    std::istringstream in(log);
    std::smatch m;
    for (std::string l; std::getline(in, l);) {
        if (!std::regex_search(l, m, line) || m[2] != job) continue;
        SamplerCost& w = last[{m[1], m[3]}];
        if (!w.found) {
            w.first_ms = std::stod(m[6]);
            w.first_cpu_ms = std::stod(m[7]);
        }
        w.found = true;
        w.samples = std::stol(m[4]);
        w.calls = std::stol(m[5]);
        w.ms = std::stod(m[6]);
        w.cpu_ms = std::stod(m[7]);
        w.wal = std::stod(m[8]);
    }
    SamplerCost sum;
    for (const auto& [k, w] : last) {
        sum.found = true;
        sum.samples += w.samples;
        sum.calls += w.calls;
        sum.ms += w.ms;
        sum.wal += w.wal;
        sum.cpu_ms += w.cpu_ms;
        sum.workers++;
        sum.first_ms += w.first_ms;
        sum.first_cpu_ms += w.first_cpu_ms;
    }
    return sum;
}

// log_min_messages = debug1 for the sessions (and so the workers) that
// connect to this database from now on, or back to the server's setting
void DebugLog(Pg& c, bool on)
{
    c.exec(std::string("DO $$BEGIN EXECUTE format('ALTER DATABASE %I ") +
           (on ? "SET log_min_messages = debug1" : "RESET log_min_messages") + "', current_database()); END$$");
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
    {"e", "(e) pg_mig, defaults (automatic vacuum_every)"},
    {"e_nice", "(e') pg_mig, nice_ratio"},
    {"e_novac", "pg_mig, vacuum_every => 0"},
    {"e_vac", "pg_mig, vacuum_every (the default, or --vacuum-every)"},
    {"f", "(f) pg_mig, max_lag_bytes 2 MB"},
    {"g", "(g) client loop, stop/go at 2 MB lag"},
    {"p2x", "pg_mig, parallel => 2, no where clause (exactly-once check)"},
};

std::string Name(const std::string& m)
{
    if (int n = LanesOf(m)) return "(p" + std::to_string(n) + ") pg_mig, parallel => " + std::to_string(n);
    auto it = kNames.find(m);
    return it == kNames.end() ? m : it->second;
}

struct Agg {
    std::vector<double> rate, wal, xact, vac_ms, lag, size, before, index, tps, p99, gap;
    std::vector<double> busy, ours, backfill, wal_side, other, avs, per_cpu;
    std::map<std::string, long> waits;
    long rows = 0, lane_min = 0, lane_max = 0;
};

Agg Aggregate(const std::vector<Run>& runs)
{
    Agg a;
    for (const auto& r : runs) {
        a.rows = r.rows;
        a.rate.push_back(r.rows / r.seconds);
        a.wal.push_back(r.wal_bytes);
        a.xact.push_back(r.max_xact_ms);
        a.vac_ms.push_back(r.max_vacuum_ms);
        a.lag.push_back(r.peak_lag);
        a.size.push_back(r.table_bytes);
        a.before.push_back(r.table_before);
        a.index.push_back(r.index_bytes);
        a.avs.push_back(r.autovacuums);
        const CpuUse& u = r.cpu;
        a.busy.push_back(u.cores(u.busy));
        a.ours.push_back(u.cores(u.ours()));
        a.backfill.push_back(u.cores(u.kind("pg_mig workers") + u.kind("client backends")));
        // rows per cpu-second of the backends doing the backfill: what a run
        // costs whatever share of a busy machine the scheduler gave it
        double backfill_s = u.kind("pg_mig workers") + u.kind("client backends");
        if (backfill_s > 0) a.per_cpu.push_back(r.rows / backfill_s);
        a.wal_side.push_back(u.cores(u.kind("WAL writer") + u.kind("WAL sender + receiver") + u.kind("standby replay")));
        a.other.push_back(u.cores(std::max(0.0, u.busy - u.ours())));
        for (const auto& [k, v] : r.waits) a.waits[k] += v;
        a.lane_min = r.lane_min;
        a.lane_max = r.lane_max;
        if (r.load) {
            a.tps.push_back(r.load->tps);
            a.p99.push_back(r.load->p99_ms);
            a.gap.push_back(r.load->max_gap_ms);
        }
    }
    return a;
}

// "CPU 72 %, LWLock:WALInsert 11 %, ..." : the top n wait-event shares
std::string WaitShares(const std::map<std::string, long>& waits, size_t n = 4)
{
    long total = 0;
    std::vector<std::pair<long, std::string>> v;
    for (const auto& [k, c] : waits) {
        total += c;
        v.push_back({c, k});
    }
    if (total == 0) return "n/a";
    std::sort(v.rbegin(), v.rend());
    std::string out;
    for (size_t i = 0; i < v.size() && i < n; i++)
        out += (i ? ", " : "") + v[i].second + " " + std::to_string(std::lround(100.0 * v[i].first / total)) + " %";
    return out;
}

std::string CpuLine(const CpuUse& u)
{
    std::string out = "cpu " + std::to_string(u.cores(u.busy)).substr(0, 4) + " cores busy:";
    for (const auto& [k, v] : u.by_kind)
        if (u.cores(v) >= 0.01) out += " " + k + " " + std::to_string(u.cores(v)).substr(0, 4);
    out += ", outside the sandbox " + std::to_string(u.cores(std::max(0.0, u.busy - u.ours()))).substr(0, 4) +
           ", iowait " + std::to_string(u.cores(u.iowait)).substr(0, 4);
    return out;
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

// autovacuum_naptime for the bloat runs: "" resets it to the default
// SetTimeline: pg_mig.timeline_interval for the runs that follow ("": the
// default), once the server has it
void SetTimeline(Pg& c, const std::string& ms)
{
    c.exec(ms.empty() ? "ALTER SYSTEM RESET pg_mig.timeline_interval"
                      : "ALTER SYSTEM SET pg_mig.timeline_interval = " + ms);
    c.exec("SELECT pg_reload_conf()");
    std::string want = ms.empty() ? "10000" : ms;
    for (int i = 0; i < 100 && c.scalar("SELECT setting FROM pg_settings WHERE name = 'pg_mig.timeline_interval'") != want;
         i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

void SetNaptime(Pg& c, const std::string& naptime)
{
    c.exec(naptime.empty() ? "ALTER SYSTEM RESET autovacuum_naptime"
                           : "ALTER SYSTEM SET autovacuum_naptime = '" + naptime + "'");
    c.exec("SELECT pg_reload_conf()");
    std::string want =
        naptime.empty() ? c.scalar("SELECT boot_val FROM pg_settings WHERE name = 'autovacuum_naptime'")
                        : c.scalar("SELECT extract(epoch FROM $1::interval)::int::text", {naptime});
    for (int i = 0; i < 100; i++) {
        Pg n;  // a new session has read the reloaded file
        if (n.scalar("SELECT setting FROM pg_settings WHERE name = 'autovacuum_naptime'") == want) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the autovacuum launcher has read it too
}

}  // namespace

std::vector<std::string> Split(const std::string& list)
{
    std::vector<std::string> v;
    std::stringstream ss(list);
    for (std::string x; std::getline(ss, x, ',');)
        if (!x.empty()) v.push_back(x);
    return v;
}

int main(int argc, char** argv)
{
    Options o;
    bool rows_given = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--quick") {
            o.quick = true;
            if (!rows_given) o.rows = 20000;
            o.rounds = 1;
            o.django_rows = 2000;
            o.scale = {20000, 60000};
        } else if (a == "--rows") {
            o.rows = std::stol(next());
            rows_given = true;
        } else if (a == "--rounds")
            o.rounds = std::stoi(next());
        else if (a == "--django-rows")
            o.django_rows = std::stol(next());
        else if (a == "--scale") {
            o.scale.clear();
            for (const auto& x : Split(next())) o.scale.push_back(std::stol(x));
        } else if (a == "--lanes") {
            o.lanes.clear();
            for (const auto& x : Split(next())) o.lanes.push_back(std::stoi(x));
            std::sort(o.lanes.begin(), o.lanes.end());
            if (o.lanes.empty() || o.lanes[0] < 1) throw std::runtime_error("--lanes: numbers of lanes, 1 or more");
        } else if (a == "--vacuum-every")
            o.vacuum_every = std::stol(next());
        else if (a == "--short-naptime")
            o.short_naptime = next();
        else if (a == "--parts") {
            o.parts.clear();
            for (const auto& x : Split(next())) {
                if (x != "methods" && x != "lanes" && x != "load" && x != "bloat" && x != "scale" &&
                    x != "sampling")
                    throw std::runtime_error("--parts: methods, lanes, load, bloat, scale, sampling; not " + x);
                o.parts.insert(x);
            }
        } else if (a == "--out")
            o.out = next();
        else if (a == "--methods")
            o.only = Split(next());
        else if (a == "--nice-ratio")
            o.nice_ratio = std::stod(next());
        else if (a == "--help") {
            std::cout
                << "Usage: pgmig_bench [--quick] [--rows N] [--rounds N] [--django-rows N] [--scale N,N,...]\n"
                   "                   [--lanes N,N,...] [--vacuum-every N] [--short-naptime T]\n"
                   "                   [--parts methods,lanes,load,bloat,scale,sampling] [--nice-ratio R] [--out FILE]\n"
                   "                   [--methods a,b,...]\n"
                   "--lanes: the parallel => n runs (default 1,2,4; 1 is (e)); on a 16-core machine: 1,2,4,8\n"
                   "--vacuum-every: the bloat runs' vacuum_every in rows (default: pg_mig's automatic one)\n"
                   "--short-naptime: the bloat runs' short autovacuum_naptime (default 1s)\n"
                   "--parts: which parts run and are reported (default all); e.g. --parts scale alone\n"
                   "--methods runs only those methods (a..g, e_nice, e_novac, e_vac, pN, p2x), once per round, solo,\n"
                   "  and prints their lines with the CPU use and wait events (no report; for profiling).\n"
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
        int max_lanes = o.has("lanes") ? o.lanes.back() : 1;
        for (const auto& m : o.only) max_lanes = std::max(max_lanes, LanesOf(m));
        if (o.has("load") || o.quick) max_lanes = std::max(max_lanes, 2);
        for (const char* g : {"pg_mig.max_workers", "pg_mig.max_workers_per_role"})
            if (c.num(std::string("SELECT current_setting('") + g + "')::int") < max_lanes)
                throw std::runtime_error(std::string(g) + " is below " + std::to_string(max_lanes) +
                                         " lanes: raise it in bench/run.sh");
        SetNaptime(c, "");

        std::map<std::string, std::vector<Run>> solo, loaded, scaling, bloat, sampling;
        std::map<std::string, std::vector<SamplerCost>> sampling_cost;  // per run of sampling[label]
        std::vector<std::map<std::string, double>> sampling_rounds;      // rows/s per label, per round
        double samples_bytes0 = 0, samples_rows0 = 0;                    // mig_job_sample before the part
        ServerLog server_log(c);
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
            std::fprintf(stderr, "          %s; table %s -> %s; autovacuums %d; worker VACUUM %.0f ms; rss %ld kB\n"
                         "          waits: %s\n",
                         CpuLine(r.cpu).c_str(), Bytes(r.table_before).c_str(), Bytes(r.table_bytes).c_str(),
                         r.autovacuums, r.max_vacuum_ms, r.peak_rss_kb, WaitShares(r.waits, 8).c_str());
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
        std::vector<std::string> lane_methods;  // the pN runs beyond (e)
        for (int n : o.lanes)
            if (n > 1) lane_methods.push_back("p" + std::to_string(n));
        bool per_round = o.has("methods") || o.has("lanes") || o.has("load") || o.has("bloat") || o.has("sampling");
        for (int round = 1; per_round && round <= o.rounds; round++) {
            std::fprintf(stderr, "round %d of %d, %s rows\n", round, o.rounds, Count(o.rows).c_str());
            // interleaved: each method once per round, in a rotated order
            std::vector<std::string> order;
            if (o.has("methods")) order = {"a", "b", "c", "e", "f", "g"};
            if (o.has("lanes")) {
                if (!o.has("methods")) order = {"a", "e"};
                order.insert(order.end(), lane_methods.begin(), lane_methods.end());
                if (o.quick) order.push_back("p2x");
            }
            if (!order.empty()) {
                if (round == 1 && o.has("methods")) order.push_back("d");  // slow: once, on its subset
                std::rotate(order.begin(), order.begin() + (round - 1) % order.size(), order.end());
            }
            for (const auto& m : order) {
                solo[m].push_back(RunMethod(o, m, o.rows));
                note(solo[m].back(), "solo");
            }
            // under a concurrent OLTP load, against a baseline of the same load alone
            if (o.has("load")) {
                double longest = 0;
                for (const char* m : {"a", "b", "e", "p2"})
                    if (!solo[m].empty()) longest = std::max(longest, solo[m].back().seconds);
                if (longest == 0) longest = o.rows / 250000.0;  // no solo runs: about one UPDATE's time here
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
                for (const char* m : {"a", "b", "e", "p2", "e_nice"}) {
                    // a nice_ratio of r makes the job about 1 + r times slower
                    double w = m == std::string("e_nice") ? window * (1 + o.nice_ratio) * 0.8 + 5 : window;
                    loaded[m].push_back(RunMethod(o, m, o.rows, w));
                    note(loaded[m].back(), "loaded");
                }
            }
            // the cost of the timeline's samples (issue 27): (e) with sampling as
            // good as off (one an hour), at the default 10 s, and 100 times as often
            // (rotated each round); the worker's own accounting of its sampling
            // time and WAL from its DEBUG1 lines
            if (o.has("sampling")) {
                std::vector<std::pair<std::string, std::string>> t = {
                    {"off", "3600000"}, {"10 s", ""}, {"100 ms", "100"}};
                std::rotate(t.begin(), t.begin() + (round - 1) % t.size(), t.end());
                if (round == 1) {
                    samples_bytes0 = c.num("SELECT pg_total_relation_size('mig_job_sample')");
                    samples_rows0 = c.num("SELECT count(*) FROM mig_job_sample");
                }
                DebugLog(c, true);
                sampling_rounds.emplace_back();
                for (const auto& [label, ms] : t) {
                    SetTimeline(c, ms);
                    double offset = server_log.size(c);
                    sampling[label].push_back(RunMethod(o, "e", o.rows));
                    const Run& r = sampling[label].back();
                    note(r, "sample");
                    SamplerCost cost = ParseSamplerCost(server_log.since(c, offset), r.job);
                    if (!cost.found)
                        std::fprintf(stderr, "  no sampler line of job %s in the primary's log\n", r.job.c_str());
                    else
                        std::fprintf(stderr, "          sampler: %ld samples (%ld calls), %.3f ms (CPU %.3f) = %.4f %% of"
                                     " %.2f s (first %.3f ms, CPU %.3f; further %.3f ms each, CPU %.3f), WAL %.0f bytes\n",
                                     cost.samples, cost.calls, cost.ms, cost.cpu_ms, 100 * cost.ms / 1000 / r.seconds,
                                     r.seconds, cost.first_ms, cost.first_cpu_ms, cost.further_ms(),
                                     cost.further_cpu_ms(), cost.wal);
                    sampling_cost[label].push_back(cost);
                    sampling_rounds.back()[label] = r.rows / r.seconds;
                }
                SetTimeline(c, "");
                DebugLog(c, false);
            }
            // bloat: autovacuum on the table, at its defaults and with a short naptime
            if (o.has("bloat")) {
                std::vector<std::string> b = {"a", "e_novac", "e_vac"};
                std::rotate(b.begin(), b.begin() + (round - 1) % b.size(), b.end());
                for (const auto& m : b) {
                    bloat[m + "@default"].push_back(RunMethod(o, m, o.rows, 0, true));
                    note(bloat[m + "@default"].back(), "bloat");
                }
                SetNaptime(c, o.short_naptime);
                std::vector<std::string> s = {"e_novac", "e_vac"};
                if (round % 2 == 0) std::swap(s[0], s[1]);
                for (const auto& m : s) {
                    bloat[m + "@short"].push_back(RunMethod(o, m, o.rows, 0, true));
                    note(bloat[m + "@short"].back(), "bloat/s");
                }
                SetNaptime(c, "");
            }
        }
        if (o.has("scale")) {
            std::fprintf(stderr, "scaling (autovacuum on)\n");
            for (long n : o.scale) {
                scaling[std::to_string(n)].push_back(RunMethod(o, "e", n, 0, true));
                note(scaling[std::to_string(n)].back(), "scale");
            }
        }

        // ------------------------------------------------------------ RESULTS.md
        std::ostringstream md;
        Agg A = Aggregate(solo["a"]);
        double a_rate = Median(A.rate);
        std::string naptime_default = c.scalar("SELECT boot_val || coalesce(unit, '') FROM pg_settings"
                                               " WHERE name = 'autovacuum_naptime'");
        md << "# pg_mig benchmark results\n\n"
           << "Written by `bench/run.sh` (" << (o.quick ? "--quick: sizes too small to mean anything" : "full run");
        if (o.parts.size() < 6) {
            md << "; parts:";
            for (const auto& p : o.parts) md << " " << p;
        }
        md << ") on " << Sh("date -u '+%Y-%m-%d %H:%M UTC'") << ".\n\n"
           << "- machine: " << Sh("nproc") << " cores, " << Sh("free -g | awk '/Mem:/{print $2}'")
           << " GiB RAM, " << Sh("uname -sr") << "\n"
           << "- server: " << c.scalar("SELECT version()") << "\n"
           << "- settings: ";
        {
            auto r = c.exec("SELECT name || ' = ' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN"
                            " ('shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'synchronous_commit', 'fsync',"
                            " 'full_page_writes', 'wal_compression', 'wal_level', 'hot_standby_feedback',"
                            " 'autovacuum', 'pg_mig.max_workers') ORDER BY 1");
            for (int i = 0; i < PQntuples(r.get()); i++) md << (i ? ", " : "") << "`" << PQgetvalue(r.get(), i, 0) << "`";
        }
        md << "; one streaming standby on the same machine (physical slot)\n";
        // the table's size before: of (a)'s runs, else of the first run there is
        double table_before = Median(A.before);
        for (const auto* runs : {&solo, &sampling, &bloat})
            for (const auto& [m, v] : *runs)
                if (table_before == 0 && !v.empty()) table_before = v.front().table_before;
        if (table_before > 0)
            md << "- table: `orders` (id bigint primary key, 5 more columns, " << Bytes(table_before)
               << " before the backfill, autovacuum off on it except in the bloat and scaling runs), "
               << Count(o.rows) << " rows; every method sets the new nullable column"
               << " `tracking_id = 'TRK-' || id` where it is NULL\n";
        if (per_round)
            md << "- " << o.rounds << " round(s), methods interleaved, a fresh identical table per run,"
               << " `VACUUM (FREEZE, ANALYZE)` + `CHECKPOINT` before each; medians\n\n";
        else
            md << "- one run per size, a fresh table each, `VACUUM (FREEZE, ANALYZE)` + `CHECKPOINT` before it\n\n";

        if (o.has("methods")) {
            md << "## Throughput, lock hold, WAL and replica lag\n\n"
               << "| method | rows/s | vs (a) | WAL | longest transaction | peak standby lag | table after |\n"
               << "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
            for (const char* m : {"a", "b", "c", "d", "e", "f", "g"}) {
                if (solo[m].empty()) continue;
                Agg g = Aggregate(solo[m]);
                double rate = Median(g.rate);
                md << "| " << Name(m) << (std::string(m) == "d" ? " [" + Count(g.rows) + "-row subset, 1 run]" : "")
                   << " | " << Count(rate) << " | " << Fmt("%.2f×", rate / a_rate) << " | "
                   << Bytes(Median(g.wal) * (std::string(m) == "d" ? double(o.rows) / g.rows : 1.0))
                   << (std::string(m) == "d" ? " (extrapolated)" : "") << " | " << Fmt("%.0f ms", Median(g.xact))
                   << " | " << Bytes(Median(g.lag)) << " | " << Bytes(Median(g.size)) << " |\n";
            }
            if (!solo["d"].empty()) {
                Agg d = Aggregate(solo["d"]);
                md << "\n(d) ran once on the first " << Count(d.rows) << " rows; at its rate the full "
                   << Count(o.rows) << " rows would take " << Fmt("%.0f s", o.rows / Median(d.rate))
                   << " (extrapolated, not measured).\n";
            }
            md << "\n";
        }

        if (o.has("lanes")) {
            md << "## Parallel lanes against one UPDATE (unthrottled)\n\n"
               << "The same table and data as above, interleaved with the other methods in the same rounds;"
               << " `parallel => 1` is (e). CPU columns are cores (cpu-seconds per second of the run, from"
               << " `/proc`): the whole machine (" << Sh("nproc") << " cores), the backends doing the backfill"
               << " (the `UPDATE`'s session or the pg_mig workers, with the benchmark's own two sessions), the rows"
               << " changed per cpu-second of those backends, the WAL writer + WAL sender + the standby's"
               << " replay, and work outside this benchmark's servers (other sessions on the machine)."
               << " Wait events: `pg_stat_activity` of the backfill's backends sampled every 20 ms"
               << " (CPU = active, no wait event).\n\n"
               << "| method | rows/s | vs (a) | smallest / largest lane | longest transaction | machine busy"
               << " | backfill backends | rows per backfill cpu-second | WAL + standby | outside"
               << " | where the backfill's backends were |\n"
               << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
            std::vector<std::string> rows = {"a"};
            for (int n : o.lanes) rows.push_back(n == 1 ? "e" : "p" + std::to_string(n));
            for (const auto& m : rows) {
                if (solo[m].empty()) continue;
                Agg g = Aggregate(solo[m]);
                double rate = Median(g.rate);
                std::string name = m == "e" ? "(e) pg_mig, parallel => 1" : Name(m);
                md << "| " << name << " | " << Count(rate) << " | " << Fmt("%.2f×", rate / a_rate) << " | "
                   << (g.lane_max ? Count(g.lane_min) + " / " + Count(g.lane_max) : "—") << " | "
                   << Fmt("%.0f ms", Median(g.xact)) << " | " << Fmt("%.2f", Median(g.busy)) << " | " << Fmt("%.2f", Median(g.backfill)) << " | "
                   << Count(Median(g.per_cpu)) << " | " << Fmt("%.2f", Median(g.wal_side)) << " | " << Fmt("%.2f", Median(g.other)) << " | "
                   << WaitShares(g.waits) << " |\n";
            }
            md << "\nOn a bigger machine the same script shows the scaling further: `bench/run.sh --lanes 1,2,4,8`"
                  " (`--rows 20000000` for runs long enough to be steady); bench/run.sh allows up to 16 workers.\n\n";
        }

        if (o.has("load")) {
            double base_tps = Median(baseline_tps);
            md << "## Application impact (pgbench, " << o.pgbench_clients
               << " clients: SELECT and UPDATE of one random `orders` row per transaction)\n\n"
               << "Measured over the backfill's run time; the baseline is the same load with no backfill: "
               << Fmt("%.0f", base_tps) << " TPS, p99 " << Fmt("%.1f ms", Median(baseline_p99))
               << ", longest commit gap " << Fmt("%.0f ms", Median(baseline_gap)) << ".\n\n"
               << "| method | backfill rows/s | TPS | vs baseline | p99 latency | longest commit gap |\n"
               << "| --- | ---: | ---: | ---: | ---: | ---: |\n";
            for (const char* m : {"a", "b", "e", "p2", "e_nice"}) {
                Agg g = Aggregate(loaded[m]);
                std::string name = Name(m);
                if (std::string(m) == "e_nice") name = "(e') pg_mig, nice_ratio " + Fmt("%.1f", o.nice_ratio);
                md << "| " << name << " | " << Count(Median(g.rate)) << " | " << Fmt("%.0f", Median(g.tps)) << " | "
                   << Fmt("%.0f %%", 100 * Median(g.tps) / base_tps) << " | " << Fmt("%.1f ms", Median(g.p99))
                   << " | " << Fmt("%.0f ms", Median(g.gap)) << " |\n";
            }
            md << "\n";
        }

        std::string vac;
        {
            std::vector<double> v;
            for (const auto& [k, runs] : bloat)
                if (k.rfind("e_vac@", 0) == 0)
                    for (const auto& r : runs) v.push_back(r.vacuum_every);
            vac = o.vacuum_every > 0 ? Count(o.vacuum_every) + " rows" : Count(Median(v)) + " rows, pg_mig's automatic default";
        }
        if (o.has("bloat")) {
            md << "## Bloat (autovacuum on the table)\n\n"
               << "Table size (`pg_table_size`) before and right after a backfill of every row, on a table with"
               << " autovacuum on at the server's defaults (`autovacuum_naptime = " << naptime_default
               << "`, scale factor " << c.scalar("SELECT boot_val FROM pg_settings WHERE name ="
                                                " 'autovacuum_vacuum_scale_factor'")
               << ", cost delay " << c.scalar("SELECT boot_val || coalesce(unit, '') FROM pg_settings WHERE name ="
                                              " 'autovacuum_vacuum_cost_delay'")
               << ") and with `autovacuum_naptime = " << o.short_naptime
               << "`; pg_mig with `parallel => 1`, without (`vacuum_every => 0`) and with its bloat control"
               << " (`vacuum_every` " << vac << "). Autovacuum runs: autovacuum workers"
               << " seen working on the table during the backfill.\n\n"
               << "| run | autovacuum_naptime | table before | table after | after / before | indexes after"
               << " | autovacuum runs | rows/s | vs without vacuum_every |\n"
               << "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
            for (const char* nap : {"default", "short"}) {
                double plain = Median(Aggregate(bloat[std::string("e_novac@") + nap]).rate);
                for (const char* m : {"a", "e_novac", "e_vac"}) {
                    auto& runs = bloat[std::string(m) + "@" + nap];
                    if (runs.empty()) continue;
                    Agg g = Aggregate(runs);
                    std::string name = std::string(m) == "a"       ? "(a) one UPDATE"
                                       : std::string(m) == "e_novac" ? "pg_mig, `vacuum_every => 0`"
                                                                   : "pg_mig, `vacuum_every` " + vac;
                    md << "| " << name << " | "
                       << (std::string(nap) == "default" ? naptime_default + " (default)" : o.short_naptime)
                       << " | " << Bytes(Median(g.before)) << " | " << Bytes(Median(g.size)) << " | "
                       << Fmt("%.2f×", Median(g.size) / Median(g.before)) << " | " << Bytes(Median(g.index))
                       << " | " << Fmt("%.0f", Median(g.avs)) << " | " << Count(Median(g.rate)) << " | "
                       << (std::string(m) == "e_vac" ? Fmt("%.2f×", Median(g.rate) / plain) : "") << " |\n";
                }
            }
            md << "\n";
        }

        // the sampler's figures per label: its share of the job's wall time,
        // per sample, per run; the steady share at one sample per interval
        const std::vector<std::pair<std::string, double>> kIntervals = {
            {"off", 3600}, {"10 s", 10}, {"100 ms", 0.1}};
        std::map<std::string, double> sampler_share_max, sampler_cpu_share_max;  // label -> largest of a run, %
        if (o.has("sampling")) {
            double total_samples = 0, total_wal = 0;
            for (const auto& [label, costs] : sampling_cost)
                for (const auto& k : costs) {
                    total_samples += k.samples;
                    total_wal += k.wal;
                }
            double wal_per_sample = total_samples > 0 ? total_wal / total_samples : 0;
            double rows_added = c.num("SELECT count(*) FROM mig_job_sample") - samples_rows0;
            double bytes_per_row =
                rows_added > 0 ? (c.num("SELECT pg_total_relation_size('mig_job_sample')") - samples_bytes0) / rows_added
                               : 0;
            md << "## Cost of the timeline samples (pg_mig, defaults; `pg_mig.timeline_interval`)\n\n"
               << "The same job (e), interleaved in each round in a rotated order (" << o.rounds
               << " rounds), with samples as good as off (one an hour), at the default (one per 10 s) and a"
                  " hundred times as often (one per 100 ms); every job also takes the two forced samples (where"
                  " the worker takes it up, where its walk ends). Target: at most 2 % at the default.\n\n"
               << "**Measured directly.** The worker adds up the time it spends taking samples (the lag"
                  " reading, the table's size, the `INSERT`; not the check whether one is due, a clock reading"
                  " and a comparison per chunk, cheaper than timing it would be)"
                  " and the WAL the samples write (its `pgWalUsage`), and logs the sums at DEBUG1"
                  " (extension/src/timeline.c; the benchmark sets `log_min_messages = debug1` for its database"
                  " during these runs), as time and as CPU time (user + system, `getrusage`: on a busy"
                  " machine the time also has the waits for a CPU). The first sample of a worker costs more than the others (a new"
                  " backend's catalog caches, the count of the lane's samples); further samples: the rest of"
                  " the time over the rest of the samples. Share: the sampler's time"
                  " over the job's wall time as the benchmark sees it (start to `succeeded`), so in these"
                  " short jobs mostly the two forced samples; in a long job: a further sample's time over the"
                  " interval (one sample per interval, the first no longer counting). WAL per sample: the"
                  " median over the runs, of runs that start after a `CHECKPOINT`, so with the full-page"
                  " images of the sample table's last pages.\n\n"
               << "| samples | samples per job | sampler time per job (CPU) | the first sample (CPU) |"
                  " each further sample (CPU) | share of the job's time: median (largest) | CPU share |"
                  " share in a long job (CPU) | WAL per sample |\n"
               << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
            for (const auto& [label, interval_s] : kIntervals) {
                std::vector<double> n, ms, cpu, share, cpu_share, first, first_cpu, per, per_cpu, wal;
                const auto& runs = sampling[label];
                const auto& costs = sampling_cost[label];
                for (size_t i = 0; i < runs.size() && i < costs.size(); i++) {
                    if (!costs[i].found) continue;
                    n.push_back(costs[i].samples);
                    ms.push_back(costs[i].ms);
                    share.push_back(100 * costs[i].ms / 1000 / runs[i].seconds);
                    cpu.push_back(costs[i].cpu_ms);
                    cpu_share.push_back(100 * costs[i].cpu_ms / 1000 / runs[i].seconds);
                    first.push_back(costs[i].first_ms / std::max(costs[i].workers, 1L));
                    first_cpu.push_back(costs[i].first_cpu_ms / std::max(costs[i].workers, 1L));
                    if (costs[i].further_ms() >= 0) {
                        per.push_back(costs[i].further_ms());
                        per_cpu.push_back(costs[i].further_cpu_ms());
                    }
                    if (costs[i].samples > 0) wal.push_back(costs[i].wal / costs[i].samples);
                }
                if (share.empty()) {
                    md << "| " << label << " | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |\n";
                    continue;
                }
                sampler_share_max[label] = *std::max_element(share.begin(), share.end());
                sampler_cpu_share_max[label] = *std::max_element(cpu_share.begin(), cpu_share.end());
                md << "| " << label << " | " << Fmt("%.0f", Median(n)) << " | " << Fmt("%.2f ms", Median(ms))
                   << Fmt(" (%.2f)", Median(cpu)) << " | " << Fmt("%.2f ms", Median(first))
                   << Fmt(" (%.2f)", Median(first_cpu)) << " | " << Fmt("%.3f ms", Median(per))
                   << Fmt(" (%.3f)", Median(per_cpu)) << " | " << Fmt("%.3f %%", Median(share)) << " ("
                   << Fmt("%.3f %%", sampler_share_max[label]) << ") | " << Fmt("%.3f %%", Median(cpu_share)) << " ("
                   << Fmt("%.3f %%", sampler_cpu_share_max[label]) << ") | "
                   << Fmt("%.4f %%", 100 * Median(per) / 1000 / interval_s)
                   << Fmt(" (%.4f %%)", 100 * Median(per_cpu) / 1000 / interval_s) << " | " << Bytes(Median(wal))
                   << " |\n";
            }
            double off = Median(Aggregate(sampling["off"]).rate);
            md << "\n**Rows/s** of the same runs: medians, the slowest and fastest run, and the ratio to \"off\""
                  " within each round (the runs next to each other), as its median and range. On two cores"
                  " shared with other work (the \"outside\" column: the CPU the rest of the machine took during"
                  " the runs, median) these move by more than the samples cost.\n\n"
               << "| samples | rows/s | slowest – fastest | vs off | vs off in the same round: median (range) |"
                  " outside load (cores) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n";
            for (const auto& [label, interval_s] : kIntervals) {
                Agg g = Aggregate(sampling[label]);
                if (g.rate.empty()) continue;
                double rate = Median(g.rate);
                std::vector<double> paired;
                for (const auto& r : sampling_rounds)
                    if (r.count(label) && r.count("off") && r.at("off") > 0)
                        paired.push_back(100 * (r.at(label) - r.at("off")) / r.at("off"));
                std::string pr = "n/a";
                if (label != "off" && !paired.empty())
                    pr = Fmt("%+.1f %%", Median(paired)) + " (" +
                         Fmt("%+.1f", *std::min_element(paired.begin(), paired.end())) + " … " +
                         Fmt("%+.1f %%", *std::max_element(paired.begin(), paired.end())) + ")";
                md << "| " << label << " | " << Count(rate) << " | "
                   << Count(*std::min_element(g.rate.begin(), g.rate.end())) << " – "
                   << Count(*std::max_element(g.rate.begin(), g.rate.end())) << " | "
                   << (off > 0 ? Fmt("%+.1f %%", 100 * (rate - off) / off) : "n/a") << " | " << pr << " | "
                   << Fmt("%.2f", Median(g.other)) << " |\n";
            }
            // a job's first hour by the sampling rule (timeline.c, docs/monitoring.md): one sample per
            // interval i, at least a thousandth of the job's age apart (so from 1000 i on, 1000 per
            // e-fold of the age), two forced; at most 1,000 rows kept per lane (the older half thinned)
            md << "\n**Storage.** A row of `mig_job_sample` takes " << Bytes(bytes_per_row)
               << " with its primary key (the table's growth over the " << Count(rows_added)
               << " rows these runs added, pages included); a sample writes " << Bytes(wal_per_sample)
               << " of WAL (all the runs' samples together: the `INSERT` and its index entry, with the"
                  " full-page images after each run's checkpoint; the commit is the chunk's). For a job of one hour, by the sampling rule (one sample per interval, at least a"
                  " thousandth of the job's age apart, two forced; at most 1,000 rows kept per lane, the older"
                  " half thinned out, whose `DELETE`s add WAL not counted here):\n\n"
               << "| samples | samples in the job's first hour | rows kept | table | WAL |\n"
               << "| --- | ---: | ---: | ---: | ---: |\n";
            for (const auto& [label, interval_s] : kIntervals) {
                double hour = 3600, written = 2 + (hour <= 1000 * interval_s ? hour / interval_s
                                                                              : 1000 + 1000 * std::log(hour / (1000 * interval_s)));
                double kept = std::min(written, 1000.0);
                md << "| " << label << " | " << Count(written) << " | " << Count(kept) << " | "
                   << Bytes(kept * bytes_per_row) << " | " << Bytes(written * wal_per_sample) << " |\n";
            }
            md << "\n";
        }

        double first_rate = 0, last_rate = 0, first_cpu = 0, last_cpu = 0;
        long first_rss = 0, last_rss = 0;
        if (o.has("scale")) {
            md << "## Scaling (pg_mig, defaults, autovacuum on the table at its defaults)\n\n"
               << "Rows per cpu-second: of the backends doing the backfill (the worker, with the benchmark's"
                  " two sessions), from `/proc`; on a shared machine the rows/s also depend on the share of the"
                  " CPU the scheduler gave the worker, the rows per cpu-second do not.\n\n"
               << "| rows | rows/s | vs smallest | rows per cpu-second | vs smallest | outside load (cores) |"
                  " longest chunk transaction | longest worker VACUUM | autovacuum runs |"
                  " worker peak private memory (RssAnon) | table after / before |\n"
               << "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
            for (long n : o.scale) {
                Agg g = Aggregate(scaling[std::to_string(n)]);
                double rate = Median(g.rate);
                if (first_rate == 0) first_rate = rate;
                last_rate = rate;
                long rss = scaling[std::to_string(n)].back().peak_rss_kb;
                if (!first_rss) first_rss = rss;
                last_rss = rss;
                double pc = Median(g.per_cpu);
                if (first_cpu == 0) first_cpu = pc;
                last_cpu = pc;
                md << "| " << Count(n) << " | " << Count(rate) << " | " << Fmt("%.2f×", rate / first_rate) << " | "
                   << (pc > 0 ? Count(pc) : "n/a") << " | "
                   << (pc > 0 && first_cpu > 0 ? Fmt("%.2f×", pc / first_cpu) : "n/a") << " | "
                   << Fmt("%.2f", Median(g.other))
                   << " | " << Fmt("%.0f ms", Median(g.xact)) << " | " << Fmt("%.0f ms", Median(g.vac_ms)) << " | "
                   << Fmt("%.0f", Median(g.avs)) << " | "
                   << (rss ? Bytes(rss * 1024.0) : "n/a") << " | "
                   << Fmt("%.2f×", Median(g.size) / Median(g.before)) << " |\n";
            }
            md << "\n";
        }

        // targets: reported, never asserted
        auto mark = [](bool ok) { return ok ? "met" : "**missed**"; };
        md << "## Targets\n\n| target | measured | |\n| --- | --- | --- |\n";
        if (o.has("methods")) {
            Agg B = Aggregate(solo["b"]), C = Aggregate(solo["c"]), D = Aggregate(solo["d"]),
                E = Aggregate(solo["e"]), F = Aggregate(solo["f"]), G = Aggregate(solo["g"]);
            double e_rate = Median(E.rate);
            md << "| (e) ≥ 1.0× (a) rows/s | " << Fmt("%.2f×", e_rate / a_rate) << " (hand-written: (b) "
               << Fmt("%.2f×", Median(B.rate) / a_rate) << ", (c) " << Fmt("%.2f×", Median(C.rate) / a_rate)
               << ") | " << mark(e_rate >= a_rate) << " |\n"
               << "| longest pg_mig chunk transaction ≤ 100 ms (default chunk_time) | "
               << Fmt("%.0f ms", Median(E.xact)) << " | " << mark(Median(E.xact) <= 100) << " |\n";
            if (!D.rate.empty())
                md << "| (e) ≥ 140× (d) rows/s | " << Fmt("%.0f×", e_rate / Median(D.rate)) << " | "
                   << mark(e_rate >= 140 * Median(D.rate)) << " |\n";
            md << "| (f) ≥ 1.5× (g) rows/s, with a lower peak lag | "
               << Fmt("%.2f×", Median(F.rate) / Median(G.rate)) << ", lag " << Bytes(Median(F.lag)) << " vs "
               << Bytes(Median(G.lag)) << " | "
               << mark(Median(F.rate) >= 1.5 * Median(G.rate) && Median(F.lag) < Median(G.lag)) << " |\n";
        }
        if (o.has("lanes") && !solo["p2"].empty()) {
            double p2 = Median(Aggregate(solo["p2"]).rate);
            md << "| (p2) parallel => 2 ≥ 1.3× (a) rows/s | " << Fmt("%.2f×", p2 / a_rate)
               << " (rows per backfill cpu-second: "
               << Fmt("%.2f×", Median(Aggregate(solo["p2"]).per_cpu) / Median(A.per_cpu)) << ") | "
               << mark(p2 >= 1.3 * a_rate) << " |\n";
        }
        if (o.has("load")) {
            double base_tps = Median(baseline_tps);
            Agg LB = Aggregate(loaded["b"]), LE = Aggregate(loaded["e"]), LN = Aggregate(loaded["e_nice"]);
            md << "| during (e) no commit gap much longer than one chunk | " << Fmt("%.0f ms", Median(LE.gap))
               << " (baseline " << Fmt("%.0f ms", Median(baseline_gap)) << ") | " << mark(Median(LE.gap) <= 250)
               << " |\n"
               << "| during (e) TPS ≥ (b)'s | " << Fmt("%.0f", Median(LE.tps)) << " vs "
               << Fmt("%.0f", Median(LB.tps)) << " | " << mark(Median(LE.tps) >= Median(LB.tps)) << " |\n"
               << "| with nice_ratio, TPS ≥ 90 % of baseline | " << Fmt("%.0f %%", 100 * Median(LN.tps) / base_tps)
               << ", at " << Count(Median(LN.rate)) << " rows/s ("
               << Fmt("%.0f %%", 100 * Median(LN.rate) / Median(LE.rate)) << " of (e) under the same load) | "
               << mark(Median(LN.tps) >= 0.9 * base_tps) << " |\n";
        }
        if (o.has("bloat")) {
            for (const char* nap : {"default", "short"}) {
                Agg V = Aggregate(bloat[std::string("e_vac@") + nap]),
                    P = Aggregate(bloat[std::string("e_novac@") + nap]);
                std::string when = std::string(nap) == "default" ? naptime_default : o.short_naptime;
                double grow = Median(V.size) / Median(V.before), cost = Median(V.rate) / Median(P.rate);
                md << "| vacuum_every (naptime " << when << "): table after ≤ 1.3× before | "
                   << Fmt("%.2f×", grow) << " (vacuum_every => 0: " << Fmt("%.2f×", Median(P.size) / Median(P.before))
                   << ") | " << mark(grow <= 1.3) << " |\n"
                   << "| vacuum_every (naptime " << when << "): rows/s ≥ 0.85× vacuum_every => 0 | " << Fmt("%.2f×", cost)
                   << " | " << mark(cost >= 0.85) << " |\n";
            }
        }
        if (o.has("sampling") && sampler_share_max.count("10 s")) {
            double off = Median(Aggregate(sampling["off"]).rate), def = Median(Aggregate(sampling["10 s"]).rate);
            md << "| timeline samples at the default (10 s) cost ≤ 2 % of the job's time (the worker's own"
                  " accounting, the largest run) | "
               << Fmt("%.3f %%", sampler_share_max["10 s"]) << " (CPU: "
               << Fmt("%.3f %%", sampler_cpu_share_max["10 s"]) << "; rows/s vs off: "
               << (off > 0 ? Fmt("%+.1f %%", 100 * (def - off) / off) : "n/a") << ") | "
               << mark(sampler_share_max["10 s"] <= 2) << " |\n";
        }
        if (o.has("scale")) {
            md << "| rows/s at the largest size within 10 % of the smallest (autovacuum on) | "
               << Fmt("%.2f×", last_rate / first_rate) << " (per worker cpu-second: "
               << (first_cpu > 0 ? Fmt("%.2f×", last_cpu / first_cpu) : "n/a") << ") | " << mark(last_rate >= 0.9 * first_rate) << " |\n"
               << "| worker memory flat: peak RssAnon at the largest size ≤ 1.1× the smallest's | "
               << Bytes(last_rss * 1024.0) << " vs " << Bytes(first_rss * 1024.0) << " | "
               << mark(last_rss <= 1.1 * first_rss) << " |\n";
        }

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

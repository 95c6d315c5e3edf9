// cli.cpp -- see cli.hpp.
#include "cli.hpp"

#include "options.hpp"
#include "render.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

namespace migctl {

const std::vector<Command>& Commands()
{
    static const std::vector<Command> commands = {
        {"install", "install [--configure]     create or update the extension; check shared_preload_libraries",
         CmdInstall},
        {"plan", "plan --table T --set EXPR [--where EXPR] [--samples N]\n"
                 "                            dry run: key, rows, triggers, indexes, replicas, sample chunks",
         CmdPlan},
        {"start", "start --table T --set EXPR [--where EXPR] [options] [--wait]\n"
                  "                            start a backfill job and print its id",
         CmdStart},
        {"delete", "delete --table T --where EXPR [options] [--wait]\n"
                   "                            a chunked DELETE of the matching rows",
         CmdDelete},
        {"not-null", "not-null --table T --column C [--wait]\n"
                     "                            SET NOT NULL through a validated check, no long lock",
         CmdNotNull},
        {"validate", "validate --table T --constraint N [--wait]\n"
                     "                            VALIDATE a NOT VALID check or foreign key",
         CmdValidate},
        {"index", "index --table T --columns EXPR [--name N] [--unique] [...] [--wait]\n"
                  "                            CREATE INDEX CONCURRENTLY in the server",
         CmdIndex},
        {"add-fk", "add-fk --table T --columns C,... --references T2 [--orphans fail|delete|set_null] [...]\n"
                   "                            a foreign key: NOT VALID, orphans handled in chunks, VALIDATE",
         CmdAddFk},
        {"status", "status [JOB] [--json] [--watch]\n"
                   "                            jobs with progress, rate, ETA, lag and throttle reason",
         CmdStatus},
        {"pause", "pause JOB | resume JOB | cancel JOB", CmdControl},
        {"resume", nullptr, CmdControl},
        {"cancel", nullptr, CmdControl},
        {"set", "set JOB [--batch-size N] [--sleep D] [...]\n"
                "                            change a running job's knobs (the options of start)",
         CmdSet},
        {"wait", "wait JOB [--timeout D]    block until the job ends (exit 0 succeeded, 1 failed or\n"
                 "                            cancelled, 4 timeout)",
         CmdWait},
        {"events", "events JOB (or log JOB)   the job's history", CmdEvents},
        {"log", nullptr, CmdEvents},
    };
    return commands;
}

CommandLine Parse(const std::string& cmd, const std::vector<std::string>& args, po::options_description& options,
                  const char* usage)
{
    CommandLine cl;
    po::options_description conn("Connection options (libpq; the PG* environment variables and .pgpass apply)");
    conn.add_options()("dsn", po::value(&cl.conn.dsn), "URI or key=value connection string")(
        "host,h", po::value(&cl.conn.host), "server host or socket directory")(
        "port,p", po::value(&cl.conn.port), "server port")("username,U", po::value(&cl.conn.user), "user name")(
        "dbname,d", po::value(&cl.conn.dbname), "database name")("help", "show this help");
    po::options_description hidden;
    hidden.add_options()("command", po::value<std::string>(), "")("job", po::value<std::string>(), "");
    po::options_description all;
    all.add(options).add(conn).add(hidden);
    po::positional_options_description pos;
    pos.add("command", 1).add("job", 1);
    try {
        po::store(po::command_line_parser(args).options(all).positional(pos).run(), cl.vm);
        po::notify(cl.vm);
    } catch (const po::error& e) {
        throw Error(kUsage, e.what(), "Run migctl " + cmd + " --help.");
    }
    if (cl.vm.count("help")) {
        cl.help = true;
        po::options_description shown;
        if (!options.options().empty()) shown.add(options);
        shown.add(conn);
        std::cout << "Usage: migctl " << usage << "\n\n" << shown;
    }
    return cl;
}

long long JobArg(const std::string& s)
{
    try {
        size_t pos;
        long long v = std::stoll(s, &pos);
        if (pos == s.size() && v > 0) return v;
    } catch (const std::exception&) {
    }
    throw Error(kUsage, "invalid job id \"" + s + "\"", "A job id is a positive number; see migctl status.");
}

long long NeedJob(const CommandLine& cl, const std::string& cmd)
{
    if (!cl.vm.count("job")) throw Error(kUsage, cmd + " needs a job id", "Run migctl " + cmd + " --help.");
    return JobArg(cl.vm["job"].as<std::string>());
}

std::optional<long long> OptionalJob(const CommandLine& cl)
{
    if (!cl.vm.count("job")) return std::nullopt;
    return JobArg(cl.vm["job"].as<std::string>());
}

namespace {

// option name, SQL argument, SQL type, kind (i integer, d duration, s size, f float, t text), help
struct KnobSpec {
    const char *opt, *arg, *type;
    char kind;
    const char* help;
};
const KnobSpec kKnobs[] = {
    {"batch-size", "batch_size", "integer", 'i', "rows per chunk (the first size if chunk-time is set)"},
    {"chunk-time", "chunk_time", "interval", 'd', "target duration of a chunk, e.g. 50ms; 0 = fixed size"},
    {"max-lag", "max_lag", "interval", 'd', "pause while a standby replays more than this behind"},
    {"max-lag-bytes", "max_lag_bytes", "bigint", 's', "pause while a standby or slot is this far behind, e.g. 16MB"},
    {"sleep", "sleep", "interval", 'd', "pause after every chunk"},
    {"lock-timeout", "lock_timeout", "interval", 'd', "per chunk; a chunk waiting longer is retried"},
    {"max-retries", "max_retries", "integer", 'i', "retries of one chunk before the job fails"},
    {"statement-timeout", "statement_timeout", "interval", 'd', "per chunk"},
    {"max-wal-rate", "max_wal_rate", "bigint", 's', "WAL bytes per second, e.g. 8MB"},
    {"nice-ratio", "nice_ratio", "double precision", 'f', "sleep this many times each chunk's duration"},
    {"run-window", "run_window", "text", 't', "when the job may run, e.g. '01:00-05:00'"},
    {"throttle-query", "throttle_query", "text", 't', "SELECT returning true while the job must wait"},
    {"max-active-sessions", "max_active_sessions", "integer", 'i', "wait while more sessions are active"},
    {"max-xact-age", "max_xact_age", "interval", 'd', "wait while an older transaction is open"},
    {"max-archive-backlog", "max_archive_backlog", "integer", 'i', "wait while more WAL files await archiving"},
};

}  // namespace

void AddKnobOptions(po::options_description& d, Knobs& k)
{
    d.add_options()("ignore-slot", po::value(&k.ignore_slots), "a replication slot not to wait for (repeatable)")(
        "throttle-on-autovacuum", po::bool_switch(&k.throttle_on_autovacuum),
        "wait while autovacuum works on the table");
    for (const auto& s : kKnobs) d.add_options()(s.opt, po::value(&k.values[s.opt]), s.help);
}

NamedArgs KnobArgs(const Knobs& k, const po::variables_map& vm)
{
    NamedArgs out;
    for (const auto& s : kKnobs) {
        auto it = k.values.find(s.opt);
        if (it == k.values.end() || !vm.count(s.opt) || it->second.empty()) continue;
        std::string value = it->second;
        if (s.kind == 'd') value = DurationToInterval(ParseDuration(value));
        if (s.kind == 's') value = std::to_string(ParseSize(value));
        out.push_back({s.arg, {value, s.type}});
    }
    if (!k.ignore_slots.empty()) out.push_back({"ignore_slots", {TextArrayLiteral(k.ignore_slots), "text[]"}});
    if (k.throttle_on_autovacuum) out.push_back({"throttle_on_autovacuum", {"true", "boolean"}});
    return out;
}

bool Finished(const std::string& s) { return s == "succeeded" || s == "failed" || s == "cancelled"; }

std::string EtaText(const std::string& secs)
{
    if (secs.empty()) return "-";
    long long s = std::stoll(secs);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
}

namespace {

std::string JobLine(const Job& j, long long lag, bool tty)
{
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", j.progress < 0 ? 0.0 : j.progress * 100);
    std::string line = "job " + std::to_string(j.job_id) + " " + j.relation + "  " +
                       (j.kind == "backfill" ? "" : j.kind + "  ") + j.state + "  " +
                       ProgressBar(j.progress < 0 ? 0 : j.progress, 24, tty) + " " + pct + "  " +
                       FormatCount(j.rows_done) + "/" + (j.rows_total < 0 ? "?" : FormatCount(j.rows_total)) +
                       " rows  " + FormatRate(j.rows_per_sec) + " rows/s  ETA " + EtaText(j.eta) + "  batch " +
                       std::to_string(j.batch_size) + "  lag " + FormatCount(lag / 1024) + " kB";
    if (!j.step.empty()) line += "\n    step: " + j.step;
    if (!j.throttled.empty()) line += "\n    throttled: " + j.throttled;
    if (!j.last_error.empty() && j.state == "failed") line += "\n    error: " + j.last_error;
    return line;
}

}  // namespace

int Follow(Api& api, std::optional<long long> job, int64_t timeout_ms)
{
    bool tty = isatty(STDOUT_FILENO);
    auto start = std::chrono::steady_clock::now();
    int drawn = 0;
    std::string last_plain;
    auto last_print = start - std::chrono::hours(1);
    for (;;) {
        auto jobs = api.Jobs(job);
        long long lag = api.MaxLagBytes();
        bool all_done = true;
        std::string frame;
        for (const auto& j : jobs) {
            all_done = all_done && Finished(j.state);
            frame += JobLine(j, lag, tty) + "\n";
        }
        auto now = std::chrono::steady_clock::now();
        if (tty) {
            for (int i = 0; i < drawn; i++) std::cout << "\x1b[1A\x1b[2K";
            std::cout << frame << std::flush;
            drawn = static_cast<int>(std::count(frame.begin(), frame.end(), '\n'));
        } else if (frame != last_plain && (all_done || now - last_print >= std::chrono::seconds(2))) {
            std::cout << frame << std::flush;
            last_plain = frame;
            last_print = now;
        }
        if (all_done) {
            bool ok = std::all_of(jobs.begin(), jobs.end(), [](const Job& j) { return j.state == "succeeded"; });
            return ok ? kOk : kJobFailed;
        }
        if (timeout_ms >= 0 &&
            std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count() >= timeout_ms)
            return kTimeout;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

}  // namespace migctl

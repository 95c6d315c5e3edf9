// main.cpp -- migctl: install, start, status, pause, resume, cancel, wait and
// events for pg_mig jobs. main only dispatches and maps errors to exit codes.
#include "api.hpp"
#include "options.hpp"
#include "pg.hpp"
#include "render.hpp"

#include <boost/program_options.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <set>
#include <thread>

namespace po = boost::program_options;
using namespace migctl;

namespace {

const char* kUsageText =
    "migctl -- controls pg_mig backfill jobs\n\n"
    "Usage: migctl [connection options] COMMAND [options]\n\n"
    "Commands:\n"
    "  install [--configure]     create or update the extension; check shared_preload_libraries\n"
    "  start --table T --set EXPR [--where EXPR] [options] [--wait]\n"
    "                            start a backfill job and print its id\n"
    "  status [JOB] [--json] [--watch]\n"
    "                            jobs with progress, rate, ETA, lag and throttle reason\n"
    "  pause JOB | resume JOB | cancel JOB\n"
    "  set JOB [--batch-size N] [--sleep D] [...]\n"
    "                            change a running job's knobs (the options of start)\n"
    "  wait JOB [--timeout D]    block until the job ends (exit 0 succeeded, 1 failed or\n"
    "                            cancelled, 4 timeout)\n"
    "  events JOB                the job's history\n\n"
    "Connection options (libpq; the PG* environment variables and .pgpass apply):\n"
    "  --dsn DSN                 URI or key=value connection string\n"
    "  -h, --host HOST  -p, --port PORT  -U, --username USER  -d, --dbname DB\n\n"
    "Exit codes: 0 success, 1 job failed or cancelled, 2 bad usage or input,\n"
    "3 cannot connect or server not ready, 4 timeout.\n"
    "Run migctl COMMAND --help for the options of a command.\n";

po::options_description ConnectionOptions(ConnOptions& c)
{
    po::options_description d("Connection options");
    d.add_options()("dsn", po::value(&c.dsn), "URI or key=value connection string")(
        "host,h", po::value(&c.host), "server host or socket directory")("port,p", po::value(&c.port), "server port")(
        "username,U", po::value(&c.user), "user name")("dbname,d", po::value(&c.dbname), "database name")(
        "help", "show this help");
    return d;
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

std::string EtaText(const std::string& secs)
{
    if (secs.empty()) return "-";
    long long s = std::stoll(secs);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
}

std::string JobLine(const Job& j, long long lag, bool tty)
{
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", j.progress < 0 ? 0.0 : j.progress * 100);
    std::string line = "job " + std::to_string(j.job_id) + " " + j.relation + "  " + j.state + "  " +
                       ProgressBar(j.progress < 0 ? 0 : j.progress, 24, tty) + " " + pct + "  " +
                       FormatCount(j.rows_done) + "/" + (j.rows_total < 0 ? "?" : FormatCount(j.rows_total)) +
                       " rows  " + FormatRate(j.rows_per_sec) + " rows/s  ETA " + EtaText(j.eta) + "  batch " +
                       std::to_string(j.batch_size) + "  lag " + FormatCount(lag / 1024) + " kB";
    if (!j.throttled.empty()) line += "\n    throttled: " + j.throttled;
    if (!j.last_error.empty() && j.state == "failed") line += "\n    error: " + j.last_error;
    return line;
}

bool Finished(const std::string& s) { return s == "succeeded" || s == "failed" || s == "cancelled"; }

// Follow: the live view until every job shown has finished (or timeout);
// redraws in place on a terminal, plain lines otherwise. Returns the exit code.
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

int RunCommand(const std::string& cmd, const std::vector<std::string>& args)
{
    ConnOptions conn;
    po::options_description desc = ConnectionOptions(conn);
    po::positional_options_description pos;
    pos.add("command", 1).add("job", 1);
    desc.add_options()("command", po::value<std::string>(), "")("job", po::value<std::string>(), "");

    std::string table, set, where, timeout;
    std::map<std::string, std::string> knob_values;
    // start's knobs: option name -> (SQL argument, SQL type, kind)
    struct Knob { const char* opt; const char* arg; const char* type; char kind; const char* help; };
    static const Knob knobs[] = {
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
    std::vector<std::string> ignore_slots;
    if (cmd == "set") {
        po::options_description s("set options (0 or '' turns an optional limit off)");
        s.add_options()("ignore-slot", po::value(&ignore_slots), "a replication slot not to wait for (repeatable)");
        for (const auto& k : knobs) s.add_options()(k.opt, po::value(&knob_values[k.opt]), k.help);
        desc.add(s);
    } else if (cmd == "start") {
        po::options_description s("start options");
        s.add_options()("table", po::value(&table), "the table to backfill")(
            "set", po::value(&set), "the SET list, e.g. \"col = expr\"")("where", po::value(&where),
                                                                         "rows that still need work")(
            "ignore-slot", po::value(&ignore_slots), "a replication slot not to wait for (repeatable)")(
            "throttle-on-autovacuum", "wait while autovacuum works on the table")(
            "wait", "follow the job to its end (exit codes of wait)");
        for (const auto& k : knobs) s.add_options()(k.opt, po::value(&knob_values[k.opt]), k.help);
        desc.add(s);
    } else if (cmd == "status") {
        desc.add_options()("json", "JSON for scripts")("watch", "redraw until the jobs end");
    } else if (cmd == "wait") {
        desc.add_options()("timeout", po::value(&timeout), "give up after this long (exit 4)");
    } else if (cmd == "install") {
        desc.add_options()("configure", "add pg_mig to shared_preload_libraries with ALTER SYSTEM");
    }

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw Error(kUsage, e.what(), "Run migctl " + cmd + " --help.");
    }
    if (vm.count("help")) {
        std::cout << "Usage: migctl " << cmd << " [options]\n\n" << desc;
        return kOk;
    }
    auto need_job = [&]() -> long long {
        if (!vm.count("job")) throw Error(kUsage, cmd + " needs a job id", "Run migctl " + cmd + " --help.");
        return JobArg(vm["job"].as<std::string>());
    };

    // check everything that needs no server before connecting
    std::vector<std::pair<std::string, std::pair<std::string, std::string>>> start_args;
    if (cmd == "start" || cmd == "set") {
        if (cmd == "start" && (table.empty() || set.empty()))
            throw Error(kUsage, "start needs --table and --set", "e.g. migctl start --table orders --set \"col = expr\"");
        for (const auto& k : knobs) {
            const std::string& v = knob_values[k.opt];
            if (v.empty()) continue;
            std::string value = v;
            if (k.kind == 'd') value = DurationToInterval(ParseDuration(v));
            if (k.kind == 's') value = std::to_string(ParseSize(v));
            start_args.push_back({k.arg, {value, k.type}});
        }
        if (!ignore_slots.empty()) {
            std::string arr = "{";
            for (size_t i = 0; i < ignore_slots.size(); i++) {
                std::string q;
                for (char ch : ignore_slots[i]) {
                    if (ch == '"' || ch == '\\') q += '\\';
                    q += ch;
                }
                arr += (i ? ",\"" : "\"") + q + "\"";
            }
            start_args.push_back({"ignore_slots", {arr + "}", "text[]"}});
        }
        if (vm.count("throttle-on-autovacuum")) start_args.push_back({"throttle_on_autovacuum", {"true", "boolean"}});
    }
    int64_t timeout_ms = timeout.empty() ? -1 : ParseDuration(timeout);
    std::optional<long long> job_id;
    if (cmd == "pause" || cmd == "resume" || cmd == "cancel" || cmd == "wait" || cmd == "events" || cmd == "set")
        job_id = need_job();
    if (cmd == "set" && start_args.empty())
        throw Error(kUsage, "set needs at least one knob to change", "e.g. migctl set 3 --batch-size 5000");
    if (cmd == "status" && vm.count("job")) job_id = JobArg(vm["job"].as<std::string>());

    Connection c(conn);
    Api api(c);
    if (cmd == "install") {
        auto rep = api.Install(vm.count("configure") > 0);
        std::cout << "server: PostgreSQL " << rep.server_version << "\n" << rep.action << "\n";
        if (rep.preloaded) {
            std::cout << "shared_preload_libraries: pg_mig is loaded (library " << rep.lib_version << ")\n";
            return kOk;
        }
        std::cout << "shared_preload_libraries: pg_mig is NOT loaded\n";
        if (!vm.count("configure"))
            std::cout << "HINT: run migctl install --configure (or add pg_mig to shared_preload_libraries in "
                         "postgresql.conf), then restart the server.\n";
        return kNoConnection;
    }
    if (cmd == "start") {
        long long id = api.StartBackfill(table, set, where.empty() ? std::nullopt : std::optional<std::string>(where),
                                         start_args);
        std::cout << id << std::endl;
        return vm.count("wait") ? Follow(api, id, -1) : kOk;
    }
    if (cmd == "status") {
        if (vm.count("watch")) {
            int rc = Follow(api, job_id, -1);
            return rc == kJobFailed ? kOk : rc;
        }
        auto jobs = api.Jobs(job_id);
        if (vm.count("json")) {
            long long lag = api.MaxLagBytes();
            std::cout << "[";
            for (size_t i = 0; i < jobs.size(); i++) {
                const auto& j = jobs[i];
                auto num = [](double v, bool null) { return null ? std::string("null") : std::to_string(v); };
                std::cout << (i ? ",\n " : "")
                          << JsonObject({{"job_id", std::to_string(j.job_id), true},
                                         {"relation", j.relation, false},
                                         {"state", j.state, false},
                                         {"rows_done", std::to_string(j.rows_done), true},
                                         {"rows_total", j.rows_total < 0 ? "null" : std::to_string(j.rows_total), true},
                                         {"progress", num(j.progress, j.progress < 0), true},
                                         {"rows_per_sec", num(j.rows_per_sec, false), true},
                                         {"eta_seconds", j.eta.empty() ? "null" : j.eta, true},
                                         {"batch_size", std::to_string(j.batch_size), true},
                                         {"throttled", j.throttled.empty() ? "null" : "\"" + JsonEscape(j.throttled) + "\"", true},
                                         {"last_error", j.last_error.empty() ? "null" : "\"" + JsonEscape(j.last_error) + "\"", true},
                                         {"owner", j.owner, false},
                                         {"max_lag_bytes", std::to_string(lag), true}});
            }
            std::cout << "]\n";
            return kOk;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& j : jobs) {
            char pct[16];
            std::snprintf(pct, sizeof pct, "%.1f%%", j.progress < 0 ? 0.0 : j.progress * 100);
            rows.push_back({std::to_string(j.job_id), j.relation, j.state, pct, FormatCount(j.rows_done),
                            FormatRate(j.rows_per_sec), EtaText(j.eta), std::to_string(j.batch_size),
                            j.throttled.empty() ? "-" : j.throttled});
        }
        std::cout << FormatTable({"JOB", "TABLE", "STATE", "PROGRESS", "ROWS", "ROWS/S", "ETA", "BATCH", "THROTTLED"},
                                 rows);
        return kOk;
    }
    if (cmd == "pause" || cmd == "resume" || cmd == "cancel") {
        api.Control("mig_" + cmd, *job_id);
        std::cout << "job " << *job_id << ": " << api.State(*job_id) << "\n";
        return kOk;
    }
    if (cmd == "wait") {
        if (isatty(STDOUT_FILENO)) return Follow(api, job_id, timeout_ms);
        auto start = std::chrono::steady_clock::now();
        for (;;) {
            std::string st = api.State(*job_id);
            if (Finished(st)) {
                std::cout << "job " << *job_id << ": " << st << "\n";
                return st == "succeeded" ? kOk : kJobFailed;
            }
            if (timeout_ms >= 0 && std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - start).count() >= timeout_ms) {
                std::cerr << "migctl: timed out waiting for job " << *job_id << " (state " << st << ")\n";
                return kTimeout;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
    }
    if (cmd == "set") {
        api.Set(*job_id, start_args);
        std::cout << "job " << *job_id << ": changed\n";
        return kOk;
    }
    if (cmd == "events") {
        std::cout << FormatTable({"AT", "EVENT", "DETAIL"}, api.Events(*job_id));
        return kOk;
    }
    throw Error(kUsage, "unknown command \"" + cmd + "\"", "Run migctl --help.");
}

}  // namespace

int main(int argc, char** argv)
{
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        static const std::set<std::string> with_value = {"--dsn", "-h", "--host", "-p", "--port",
                                                         "-U", "--username", "-d", "--dbname"};
        std::string cmd;
        for (size_t i = 0; i < args.size(); i++) {
            if (with_value.count(args[i])) { i++; continue; }
            if (args[i] == "--version") { std::cout << "migctl 0.1\n"; return kOk; }
            if (args[i].empty() || args[i][0] != '-') { cmd = args[i]; break; }
        }
        if (cmd.empty()) {
            bool help = std::find(args.begin(), args.end(), "--help") != args.end();
            (help ? std::cout : std::cerr) << kUsageText;
            return help ? kOk : kUsage;
        }
        static const std::set<std::string> commands = {"install", "start", "status", "pause", "resume",
                                                       "cancel", "set", "wait", "events", "log"};
        if (!commands.count(cmd)) throw Error(kUsage, "unknown command \"" + cmd + "\"", "Run migctl --help.");
        return RunCommand(cmd == "log" ? "events" : cmd, args);
    } catch (const Error& e) {
        std::cerr << "migctl: " << e.what() << "\n";
        if (!e.hint.empty()) std::cerr << "HINT: " << e.hint << "\n";
        return e.exit_code;
    } catch (const std::exception& e) {
        std::cerr << "migctl: " << e.what() << "\n";
        return kUsage;
    }
}

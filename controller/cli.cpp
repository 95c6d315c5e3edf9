// cli.cpp -- see cli.hpp.
#include "cli.hpp"

#include "options.hpp"
#include "render.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <thread>

namespace migctl {

const std::vector<Command>& Commands()
{
    static const std::vector<Command> commands = {
        {"install", "install [--configure]     create or update the extension; check shared_preload_libraries",
         CmdInstall,
         "Checks the server, creates the extension in the database (or updates it to this version), and "
         "reports whether pg_mig is in shared_preload_libraries. With --configure it adds pg_mig there with "
         "ALTER SYSTEM, keeping the libraries already listed; the server must then be restarted. Exits 0 "
         "when the extension is there and the library loaded, and when --configure has written the setting "
         "(the server must then be restarted); 3 when the library is not loaded and --configure was not given "
         "(not ready), or the server cannot be reached."},
        {"plan", "plan --table T (--set EXPR [--where EXPR] | --delete --where EXPR) [--samples N]\n"
                 "                            dry run: key, rows, triggers, indexes, replicas, sample chunks",
         CmdPlan,
         "Runs every check of start (or, with --delete, of delete) without making a job, reports the table's "
         "size, the key it would walk, the rows to change or delete, the row triggers that fire on UPDATE (on "
         "DELETE for --delete), the indexes on the changed columns and the replicas with their lag, and runs "
         "--samples chunks in subtransactions that are rolled back to estimate the job's time and WAL."},
        {"start", "start --table T --set EXPR [--where EXPR] [options] [--wait]\n"
                  "                            start a backfill job and print its id",
         CmdStart,
         "Starts a chunked backfill in a background worker and prints the job id on standard output. With "
         "--wait it then prints \"started job N\" and follows the job to its end with the live view, and "
         "exits like wait."},
        {"delete", "delete --table T --where EXPR [options] [--wait]\n"
                   "                            a chunked DELETE of the matching rows",
         CmdDelete},
        {"not-null", "not-null --table T --column C [--wait]\n"
                     "                            SET NOT NULL with no long lock (NOT VALID, then VALIDATE)",
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
        {"repack", "repack --table T [--lock-timeout D] [--max-retries N] [--key K] [--wait]\n"
                   "                            REPACK (CONCURRENTLY) in the server (PostgreSQL 19+)",
         CmdRepack,
         "Starts a job that rewrites the table with REPACK (CONCURRENTLY), giving back the space a big "
         "backfill or delete left, while the application writes. It waits while replicas lag before it "
         "starts; the final short ACCESS EXCLUSIVE lock waits at most --lock-timeout, and a retry copies the "
         "table again. Before PostgreSQL 19 the server refuses it (use pg_repack, or VACUUM FULL in a "
         "maintenance window)."},
        {"change-type", "change-type --table T --column C --type TYPE [--using EXPR] [--cleanup]\n"
                        "                            [--convert-referencing] [--wait]\n"
                        "                            ALTER COLUMN TYPE without the rewrite under lock",
         CmdChangeType,
         "Starts a job that changes the type of a column (e.g. an integer key to bigint) without rewriting "
         "the table under ACCESS EXCLUSIVE: a new column kept equal to the new value by a trigger, the rows "
         "walked in chunks, NOT NULL through a validated check, every index on the column copied "
         "concurrently, then one short swap under --lock-timeout (names, default, sequence made AS bigint, "
         "primary key, the foreign keys that reference the column and its own checks and foreign keys); "
         "--cleanup drops the old column at the end; --convert-referencing changes the referencing columns "
         "of other tables in the same job. Views and other objects that depend on "
         "the column are refused at start. A catalog-only change (varchar(50) to varchar(100)) is one ALTER."},
        {"revert", "revert JOB [options] [--wait]\n"
                   "                            undo a backfill that kept old values, or swap a type change back",
         CmdRevert},
        {"forget", "forget JOB                release a finished job's key and drop what it left", CmdForget,
         "Forgets a finished job (succeeded, failed or cancelled): its job_key is released, a failed job no "
         "longer blocks its table, and what the job left is dropped: the old values a backfill kept, the old "
         "column a type change kept, or the new column a type change given up before its swap built."},
        {"status", "status [JOB] [--json] [--watch]\n"
                   "                            jobs with progress, rate, ETA, lag and throttle reason",
         CmdStatus,
         "Shows every job (or JOB) with its state, progress, rate, ETA, batch size, the replica lag and why "
         "it is throttled. --json gives the same for scripts. --watch redraws one line per job in place on a "
         "terminal until the jobs end (plain lines every few seconds when not on a terminal)."},
        {"pause", "pause JOB | resume JOB | cancel JOB", CmdControl,
         "pause: no chunk starts after it; resume: a paused or failed job goes on from its checkpoint; "
         "cancel: ends the job, the committed chunks stay. pause and resume of a job that is already paused "
         "or running are a notice, not an error."},
        {"resume", nullptr, CmdControl},
        {"cancel", nullptr, CmdControl},
        {"set", "set JOB [--batch-size N] [--sleep D] [...]\n"
                "                            change a running job's knobs (the options of start)",
         CmdSet, "Changes the knobs of a job while it runs. 0 (or an empty value) turns an optional limit off."},
        {"wait", "wait JOB [--timeout D]    block until the job ends (exit 0 succeeded, 1 failed or\n"
                 "                            cancelled, 4 timeout)",
         CmdWait,
         "Blocks until the job ends. On a terminal it shows the live view; otherwise it prints one line "
         "when the job ends. The exit code says how it ended."},
        {"events", "events JOB (or log JOB)   the job's history", CmdEvents,
         "The job's history from mig_job_events: started, paused, resumed, throttled and unthrottled (with "
         "the reason and how long), retried, failed, cancelled, succeeded."},
        {"log", nullptr, CmdEvents},
        {"report", "report JOB [--html FILE]    the job's history as a summary, or as a page of\n"
                   "                            charts (--html)",
         CmdReport,
         "Summarises a job from its timeline (mig_job_timeline) and events: duration, mean and peak rate, "
         "time throttled by reason, peak replica lag, WAL written, retries and the table's size before and "
         "after. With --html FILE it writes a self-contained HTML page instead, with SVG charts of the rows "
         "and the rate, the replica lag against the job's budget, the throttled spans coloured by reason "
         "and the events on the time axis."},
        {"metrics", "metrics [--finished-within D]\n"
                    "                            jobs and replica lag in Prometheus text format",
         CmdMetrics,
         "Prints every job's rows done, estimated rows, rate, ETA, seconds throttled and state, and every "
         "replica's lag, in the Prometheus text exposition format, for node_exporter's textfile collector. "
         "Succeeded and cancelled jobs are shown for --finished-within (default 1d) after they end; failed "
         "jobs until they are resumed or cancelled."},
        {"version", "version (or --version)    the versions of migctl, the library and the extension", CmdVersion,
         "Prints the version of migctl and, when connection options or PG* variables are given, the "
         "version of the library the server loaded and of the extension in the database, with a warning if "
         "they do not agree. Every other command refuses to run on a mismatch (exit 3)."},
        {"help", "help [COMMAND]            this text, or the options of COMMAND (as COMMAND --help)", CmdHelp},
        {"__man", nullptr, CmdMan},
        {"__complete", nullptr, CmdCompleteWords},
        {"__complete-jobs", nullptr, CmdCompleteJobs},
    };
    return commands;
}

const Command* FindCommand(const std::string& name)
{
    for (const auto& c : Commands())
        if (name == c.name) return &c;
    return nullptr;
}

bool Internal(const Command& c) { return c.name[0] == '_' && c.name[1] == '_'; }

std::pair<std::string, std::string> SplitSynopsis(const char* synopsis)
{
    std::string s = synopsis ? synopsis : "", usage, what;
    size_t cut = s.find("  ");
    size_t nl = s.find('\n');
    if (nl != std::string::npos && (cut == std::string::npos || nl < cut)) cut = nl;
    usage = s.substr(0, cut);
    if (cut != std::string::npos) {
        // the rest, with the continuation lines' indentation folded to single spaces
        for (size_t i = cut; i < s.size(); i++) {
            char ch = s[i] == '\n' ? ' ' : s[i];
            if (ch == ' ' && (what.empty() || what.back() == ' ')) continue;
            what += ch;
        }
    }
    while (!what.empty() && what.back() == ' ') what.pop_back();
    return {usage, what};
}

std::string UsageText()
{
    std::string s =
        "migctl -- controls pg_mig jobs\n\n"
        "Usage: migctl [connection options] COMMAND [options]\n\n"
        "Commands:\n";
    for (const auto& c : Commands())
        if (c.synopsis) s += std::string("  ") + c.synopsis + "\n";
    s += "\nConnection options (libpq; the PG* environment variables and .pgpass apply):\n"
         "  --dsn DSN                 URI or key=value connection string\n"
         "  -h, --host HOST  -p, --port PORT  -U, --username USER  -d, --dbname DB\n\n"
         "Exit codes: 0 success, 1 job failed or cancelled, 2 bad usage or input,\n"
         "3 cannot connect or server not ready, 4 timeout.\n"
         "Run migctl help COMMAND (or migctl COMMAND --help) for the options of a command.\n";
    return s;
}

namespace {

HelpRecord* g_capture = nullptr;  // set by CaptureHelp while it runs a command's --help

std::vector<OptionHelp> Options(const po::options_description& d)
{
    std::vector<OptionHelp> out;
    for (const auto& o : d.options()) {
        OptionHelp h;
        h.long_name = "--" + o->long_name();
        std::string shown = o->format_name();  // "--table" or "-h [ --host ]"
        if (shown.size() > 1 && shown[0] == '-' && shown[1] != '-') h.short_name = shown.substr(0, 2);
        h.param = o->format_parameter();
        h.text = o->description();
        out.push_back(h);
    }
    return out;
}

}  // namespace

HelpRecord CaptureHelp(const Command& c)
{
    HelpRecord rec;
    g_capture = &rec;
    try {
        c.run(c.name, {c.name, "--help"});
    } catch (...) {
        g_capture = nullptr;
        throw;
    }
    g_capture = nullptr;
    return rec;
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
        if (g_capture) {
            g_capture->usage = usage;
            if (!options.options().empty()) g_capture->groups.push_back({"options", Options(options)});
            g_capture->groups.push_back({"connection", Options(conn)});
            return cl;
        }
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

// the knobs, from the one table (extension/include/knobs.def, made into
// knobs.inc by scripts/knobs.py at build time); kind: i integer, d duration,
// s size, f float, t text, a list (a repeatable option), b a switch;
// walk_only: an option of the kinds that walk a table's keys (AddWalkOptions)
struct KnobSpec {
    const char *opt, *arg, *type;
    char kind;
    bool walk_only;
    const char* help;
};
const KnobSpec kKnobs[] = {
#include "knobs.inc"
};

const KnobSpec& Knob(const std::string& arg)
{
    for (const auto& s : kKnobs)
        if (arg == s.arg) return s;
    throw std::logic_error("no knob " + arg);
}

}  // namespace

void AddKnobOptions(po::options_description& d, Knobs& k)
{
    // the list and the switch first, then the others in the table's order
    for (const auto& s : kKnobs) {
        if (s.kind == 'a') d.add_options()(s.opt, po::value(&k.ignore_slots), s.help);
        if (s.kind == 'b') d.add_options()(s.opt, po::bool_switch(&k.throttle_on_autovacuum), s.help);
    }
    for (const auto& s : kKnobs)
        if (!s.walk_only && s.kind != 'a' && s.kind != 'b') d.add_options()(s.opt, po::value(&k.values[s.opt]), s.help);
}

NamedArgs KnobArgs(const Knobs& k, const po::variables_map& vm)
{
    NamedArgs out;
    for (const auto& s : kKnobs) {
        auto it = k.values.find(s.opt);
        if (s.walk_only || it == k.values.end() || !vm.count(s.opt) || it->second.empty()) continue;
        std::string value = it->second;
        if (s.kind == 'd') value = DurationToInterval(ParseDuration(value));
        if (s.kind == 's') value = std::to_string(ParseSize(value));
        out.push_back({s.arg, {value, s.type}});
    }
    const KnobSpec& slots = Knob("ignore_slots");
    const KnobSpec& autovacuum = Knob("throttle_on_autovacuum");
    if (!k.ignore_slots.empty()) out.push_back({slots.arg, {TextArrayLiteral(k.ignore_slots), slots.type}});
    if (k.throttle_on_autovacuum) out.push_back({autovacuum.arg, {"true", autovacuum.type}});
    return out;
}

void AddWalkOptions(po::options_description& d, WalkOptions& w, bool with_parallel)
{
    if (with_parallel)
        d.add_options()("parallel", po::value(&w.parallel),
                        "walk the key range in this many lanes at once, one worker each (1-32)");
    const KnobSpec& vacuum = Knob("vacuum_every");
    d.add_options()(vacuum.opt, po::value(&w.vacuum_every), vacuum.help);
}

NamedArgs WalkArgs(const WalkOptions& w, const po::variables_map& vm)
{
    NamedArgs out;
    auto whole = [](const std::string& v) {
        return !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
    };
    if (vm.count("parallel")) {
        if (!whole(w.parallel) || std::stoll(w.parallel) < 1 || std::stoll(w.parallel) > 32)
            throw Error(kUsage, "--parallel needs a number of lanes from 1 to 32, not \"" + w.parallel + "\"",
                        "e.g. --parallel 4: each lane takes a pg_mig worker.");
        out.push_back({"parallel", {w.parallel, "integer"}});
    }
    const KnobSpec& vacuum = Knob("vacuum_every");
    if (vm.count(vacuum.opt)) {
        if (!whole(w.vacuum_every))
            throw Error(kUsage, "--vacuum-every needs a number of rows, not \"" + w.vacuum_every + "\"",
                        "e.g. --vacuum-every 1000000; 0 turns it off.");
        out.push_back({vacuum.arg, {w.vacuum_every, vacuum.type}});
    }
    return out;
}

std::string KnobOption(const std::string& arg)
{
    for (const auto& s : kKnobs)
        if (arg == s.arg) return std::string("--") + s.opt;
    return "";
}

void AddKeyOption(po::options_description& d, std::string& key)
{
    d.add_options()("key", po::value(&key),
                    "a name for this step (e.g. deploy-42-backfill): run again with the same key, it starts "
                    "nothing and returns that job");
}

NamedArgs KeyArgs(const std::string& key, const po::variables_map& vm)
{
    if (!vm.count("key")) return {};
    if (key.empty())
        throw Error(kUsage, "--key needs a name", "e.g. --key deploy-42-backfill: the same key names the same job.");
    return {{"job_key", {key, "text"}}};
}

std::string LanesText(const Job& j)
{
    if (j.parallel <= 1 || j.lanes.empty()) return "";
    int running = 0, waiting = 0, done = 0;
    for (const auto& l : j.lanes) {
        running += l.state == "running";
        waiting += l.state == "waiting for a worker";
        done += l.state == "done";
    }
    std::string n = std::to_string(j.lanes.size());
    if (j.state != "running" && j.state != "queued") return std::to_string(done) + "/" + n + " done";
    std::string out = std::to_string(running) + "/" + n + " running";
    if (waiting) out += ", " + std::to_string(waiting) + " waiting";
    if (done) out += ", " + std::to_string(done) + " done";
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

std::string WatchLine(const Job& j, long long lag_bytes, bool utf8)
{
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", j.progress < 0 ? 0.0 : j.progress * 100);
    std::string line = "job " + std::to_string(j.job_id) + " " + j.relation + "  " +
                       (j.kind.empty() || j.kind == "backfill" ? "" : j.kind + "  ") + j.state + "  " +
                       ProgressBar(j.progress < 0 ? 0 : j.progress, 20, utf8) + " " + pct + "  " +
                       FormatCount(j.rows_done) + "/" + (j.rows_total < 0 ? "?" : FormatCount(j.rows_total)) +
                       " rows  " + FormatRate(j.rows_per_sec) + " rows/s  ETA " + EtaText(j.eta) + "  lag " +
                       FormatBytes(static_cast<double>(lag_bytes));
    if (!j.step.empty()) line += "  step: " + j.step;
    if (!LanesText(j).empty()) line += "  lanes " + LanesText(j);
    line += WhyText(j).empty() ? "" : "  " + WhyText(j);
    for (auto& ch : line)
        if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
    return line;
}

std::string WhyText(const Job& j)
{
    std::string why;
    if (!j.throttled.empty()) why = "throttled: " + j.throttled;
    if (!j.last_error.empty() && j.state == "failed") why = "error: " + j.last_error;
    for (auto& ch : why)
        if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
    return why;
}

std::vector<std::string> WatchLines(const Job& j, long long lag_bytes, bool utf8, int cols)
{
    std::string full = WatchLine(j, lag_bytes, utf8);
    std::string why = WhyText(j);
    if (static_cast<int>(full.size()) <= cols || why.empty()) return {FitToWidth(full, cols)};
    // the reason on a line of its own, under the figures, rather than cut off
    Job bare = j;
    bare.throttled.clear();
    bare.last_error.clear();
    return {FitToWidth(WatchLine(bare, lag_bytes, utf8), cols), FitToWidth("    " + why, cols)};
}

std::vector<Job> WatchedJobs(std::vector<Job> jobs)
{
    jobs.erase(std::remove_if(jobs.begin(), jobs.end(), [](const Job& j) { return !j.recent; }), jobs.end());
    return jobs;
}

namespace {

// TerminalColumns: the width of the terminal on stdout (80 if unknown)
int TerminalColumns()
{
    struct winsize ws {};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

}  // namespace

int Started(Api& api, long long job, bool wait)
{
    if (!wait) {
        std::cout << job << std::endl;
        return kOk;
    }
    std::cout << "started job " << job << std::endl;
    return Follow(api, job, -1);
}

int Follow(Api& api, std::optional<long long> job, int64_t timeout_ms)
{
    bool tty = isatty(STDOUT_FILENO);
    auto start = std::chrono::steady_clock::now();
    int drawn = 0;
    std::string last_plain;
    auto last_print = start - std::chrono::hours(1);
    for (;;) {
        auto jobs = api.Jobs(job);
        if (!job) jobs = WatchedJobs(jobs);  // not every old job: the live ones and the latest ended
        long long lag = api.MaxLagBytes();
        bool all_done = true;
        auto now = std::chrono::steady_clock::now();
        if (tty) {
            // one line per job, cut to the terminal's width so that no line
            // wraps: then moving the cursor up one row per line redraws the
            // frame in place and nothing scrolls
            int cols = TerminalColumns();
            std::string frame;
            int lines = 0;
            for (int i = 0; i < drawn; i++) frame += "\x1b[1A";
            for (const auto& j : jobs) {
                all_done = all_done && Finished(j.state);
                for (const auto& l : WatchLines(j, lag, true, cols - 1)) {
                    frame += "\r\x1b[2K" + l + "\n";
                    lines++;
                }
            }
            for (int i = lines; i < drawn; i++) frame += "\r\x1b[2K\n";  // fewer lines now
            std::cout << frame << std::flush;
            drawn = std::max(drawn, lines);
        } else {
            std::string frame;
            for (const auto& j : jobs) {
                all_done = all_done && Finished(j.state);
                frame += WatchLine(j, lag, false) + "\n";
            }
            if (frame != last_plain && (all_done || now - last_print >= std::chrono::seconds(2))) {
                std::cout << frame << std::flush;
                last_plain = frame;
                last_print = now;
            }
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

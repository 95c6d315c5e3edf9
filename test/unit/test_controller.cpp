// Unit tests of migctl's parsing, rendering and exit-code mapping.
#include "cli.hpp"
#include "estimate.hpp"
#include "hints.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "pg.hpp"
#include "render.hpp"
#include "report.hpp"
#include "version.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace migctl;

TEST(Durations, Units)
{
    EXPECT_EQ(500, ParseDuration("500ms"));
    EXPECT_EQ(2000, ParseDuration("2s"));
    EXPECT_EQ(2000, ParseDuration("2"));
    EXPECT_EQ(300000, ParseDuration("5min"));
    EXPECT_EQ(5400000, ParseDuration("1h30m"));
    EXPECT_EQ(86400000, ParseDuration("1d"));
    EXPECT_EQ(1500, ParseDuration("1.5s"));
    EXPECT_EQ("1500 milliseconds", DurationToInterval(1500));
}

TEST(Durations, BadInputIsUsageError)
{
    for (const char* bad : {"", "abc", "5x", "s", "1h30", "-1s"}) {
        try {
            ParseDuration(bad);
            ADD_FAILURE() << bad;
        } catch (const Error& e) {
            EXPECT_EQ(kUsage, e.exit_code) << bad;
        }
    }
}

TEST(Sizes, Units)
{
    EXPECT_EQ(16LL * 1024 * 1024, ParseSize("16MB"));
    EXPECT_EQ(512LL * 1024, ParseSize("512kB"));
    EXPECT_EQ(1024LL * 1024 * 1024, ParseSize("1GB"));
    EXPECT_EQ(100, ParseSize("100"));
    EXPECT_THROW(ParseSize("MB"), Error);
    EXPECT_THROW(ParseSize("12PB"), Error);
}

TEST(Render, JsonEscaping)
{
    EXPECT_EQ("a\\\"b\\\\c\\nd\\u0001", JsonEscape("a\"b\\c\nd\x01"));
    EXPECT_EQ("{\"k\": \"v\\\"\", \"n\": 3}", JsonObject({{"k", "v\"", false}, {"n", "3", true}}));
}

TEST(Render, ProgressBar)
{
    EXPECT_EQ("[#####-----]", ProgressBar(0.5, 10, false));
    EXPECT_EQ("[----------]", ProgressBar(-1, 10, false));
    EXPECT_EQ("[##########]", ProgressBar(2, 10, false));
    EXPECT_EQ("[\u2588\u2591]", ProgressBar(0.5, 2, true));
}

TEST(Render, NumbersAndTable)
{
    EXPECT_EQ("1,234,567", FormatCount(1234567));
    EXPECT_EQ("999", FormatCount(999));
    EXPECT_EQ("48.2k", FormatRate(48213.2));
    EXPECT_EQ("1.5M", FormatRate(1500000));
    EXPECT_EQ("A    BB\nxyz  1\n", FormatTable({"A", "BB"}, {{"xyz", "1"}}));
}

TEST(ExitCodes, FromSqlStateAlone)
{
    EXPECT_EQ(kUsage, ExitCodeForSqlState("42P01"));  // relation does not exist
    EXPECT_EQ(kUsage, ExitCodeForSqlState("22023"));  // invalid parameter value
    EXPECT_EQ(kUsage, ExitCodeForSqlState("42501"));  // permission denied
    // an unknown function in --set is bad input, whatever its name
    EXPECT_EQ(kUsage, ExitCodeForSqlState("42883"));
    EXPECT_EQ(kUsage, ExitCodeForSqlState("55000"));  // e.g. job already finished
    EXPECT_EQ(kUsage, ExitCodeForSqlState("55P03"));  // lock not available
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("08006"));  // connection failure
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("57P03"));  // starting up
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("53300"));  // too many connections
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("28P01"));  // password authentication failed
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("58P01"));  // library file missing
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("3D000"));  // no such database
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState(""));       // no SQLSTATE: the connection broke
}

TEST(Render, BytesAndMillis)
{
    EXPECT_EQ("0 bytes", FormatBytes(0));
    EXPECT_EQ("1023 bytes", FormatBytes(1023));
    EXPECT_EQ("1.0 kB", FormatBytes(1024));
    EXPECT_EQ("3.6 MB", FormatBytes(3735952));
    EXPECT_EQ("70 MB", FormatBytes(70.0 * 1024 * 1024));
    EXPECT_EQ("45.3 ms", FormatMillis(45.3));
    EXPECT_EQ("1.5 s", FormatMillis(1500));
    EXPECT_EQ("2 min 05 s", FormatMillis(125000));
    EXPECT_EQ("2 h 05 min", FormatMillis(7500000));
}

namespace {
migctl::PlanReport Report(long long keys, std::vector<migctl::PlanSample> samples)
{
    migctl::PlanReport r;
    r.keys_estimate = keys;
    r.rows_estimate = keys / 2;
    r.samples = std::move(samples);
    r.preloaded = true;
    r.replicas = {{"standby", "s1", "t", "0", ""}};
    return r;
}
}  // namespace

TEST(Plan, EstimateFromSamples)
{
    using namespace migctl;
    // 2 samples of 10,000 keys, half of them selected, 50 ms and 2 MB each
    auto r = Report(1000000, {{"t", 10000, 5000, 2 << 20, 50}, {"t", 10000, 5000, 2 << 20, 50}});
    PlanLimits l;
    l.batch_size = 10000;
    l.chunk_time_ms = 100;
    auto e = EstimatePlan(r, l);
    ASSERT_TRUE(e.measured);
    EXPECT_EQ(500000, e.rows);
    EXPECT_EQ(100, e.chunks);
    EXPECT_DOUBLE_EQ(5.0, e.work_s);  // 100 chunks x 50 ms
    EXPECT_DOUBLE_EQ(5.0, e.total_s);
    EXPECT_EQ(100LL * (2 << 20), e.wal_bytes);
    EXPECT_EQ(20000, e.batch_for_chunk_time);
    EXPECT_TRUE(PlanWarnings(r, e, l).empty());

    // sleeps and the nice ratio add up; a WAL rate can set the pace
    l.sleep_ms = 100;
    l.nice_ratio = 1;
    e = EstimatePlan(r, l);
    EXPECT_DOUBLE_EQ(5.0 * 2 + 100 * 0.1, e.total_s);
    EXPECT_FALSE(e.wal_paced);
    l.max_wal_rate = 1 << 20;  // 200 MB at 1 MB/s
    e = EstimatePlan(r, l);
    EXPECT_TRUE(e.wal_paced);
    EXPECT_DOUBLE_EQ(200.0, e.total_s);
}

TEST(Plan, NoSamplesKeepsThePlannerEstimate)
{
    using namespace migctl;
    auto r = Report(1000, {});
    PlanLimits l;
    l.batch_size = 300;
    auto e = EstimatePlan(r, l);
    EXPECT_FALSE(e.measured);
    EXPECT_EQ(500, e.rows);
    EXPECT_EQ(4, e.chunks);
}

TEST(Plan, Warnings)
{
    using namespace migctl;
    auto r = Report(1000, {{"t", 1000, 0, 1000, 500}});
    r.preloaded = false;
    r.triggers = {"audit (BEFORE UPDATE, t)"};
    r.indexes = {"t_col_idx"};
    r.replicas = {{"physical slot", "old", "f", "123", ""}};
    PlanLimits l;
    l.batch_size = 1000;
    l.chunk_time_ms = 100;
    auto w = PlanWarnings(r, EstimatePlan(r, l), l);
    auto has = [&](const std::string& s) {
        return std::any_of(w.begin(), w.end(), [&](const std::string& x) { return x.find(s) != std::string::npos; });
    };
    EXPECT_TRUE(has("shared_preload_libraries"));
    EXPECT_TRUE(has("row trigger"));
    EXPECT_TRUE(has("HOT"));
    EXPECT_TRUE(has("slot old is inactive"));
    EXPECT_TRUE(has("over twice chunk_time"));
    EXPECT_TRUE(has("changed no row"));
    r.replicas.clear();
    w = PlanWarnings(r, EstimatePlan(r, l), l);
    EXPECT_TRUE(has("no streaming standby"));
}

TEST(Render, TextArrayLiteral)
{
    EXPECT_EQ("{}", migctl::TextArrayLiteral({}));
    EXPECT_EQ("{\"a\",\"b c\"}", migctl::TextArrayLiteral({"a", "b c"}));
    EXPECT_EQ("{\"x,y\",\"q\\\"t\",\"b\\\\s\"}", migctl::TextArrayLiteral({"x,y", "q\"t", "b\\s"}));
}

namespace {
std::string ReadSource(const std::string& path)
{
    std::ifstream f(std::string(PGMIG_SOURCE_DIR) + "/" + path);
    std::stringstream s;
    s << f.rdbuf();
    EXPECT_TRUE(f.good() || f.eof()) << path;
    return s.str();
}
std::string Match(const std::string& text, const std::string& re)
{
    std::smatch m;
    return std::regex_search(text, m, std::regex(re)) ? m[1].str() : "(not found: " + re + ")";
}
}  // namespace

// One version number: CMakeLists.txt's project VERSION (compiled into migctl)
// is also the library's PG_MIG_VERSION, the control file's default_version
// and the Debian package's upstream version.
TEST(Version, OneNumberForTheProject)
{
    std::string v = kVersion;
    EXPECT_EQ(v, Match(ReadSource("CMakeLists.txt"), R"(project\(pg_mig VERSION ([0-9.]+))"));
    EXPECT_EQ(v, Match(ReadSource("extension/include/pg_mig.h"), R"re(#define\s+PG_MIG_VERSION\s+"([^"]+)")re"));
    EXPECT_EQ(v, Match(ReadSource("pg_mig.control"), R"(default_version\s*=\s*'([^']+)')"));
    EXPECT_EQ(v, Match(ReadSource("debian/changelog"), R"(^pg-mig \(([0-9.]+)-[^)]*\))"));
    // and an upgrade script reaches it from the version before
    std::string previous = Match(ReadSource("debian/changelog"), R"(\n\npg-mig \(([0-9.]+)-[^)]*\))");
    EXPECT_NE("", ReadSource("sql/pg_mig--" + previous + "--" + v + ".sql")) << previous;
}

TEST(Version, Handshake)
{
    Versions v;
    v.client = v.library = v.extension = "0.3";
    v.database = "app";
    v.server = "15.4";
    v.installed = v.preloaded = true;
    EXPECT_FALSE(VersionProblem(v).has_value());

    auto problem = [&](const Versions& x) {
        auto p = VersionProblem(x);
        EXPECT_TRUE(p.has_value());
        if (p) {
            EXPECT_EQ(kNoConnection, p->exit_code);
        }
        return p ? std::string(p->what()) + " | " + p->hint : std::string();
    };
    Versions old = v;
    old.extension = "0.2";  // library updated, ALTER EXTENSION not run yet
    EXPECT_EQ("the pg_mig library loaded by the server is version 0.3 but the extension in database \"app\" is "
              "version 0.2 | Run migctl install to update the extension to 0.3.",
              problem(old));
    Versions oldlib = v;
    oldlib.library = "0.2";  // new files installed, server not restarted
    EXPECT_NE(std::string::npos, problem(oldlib).find("restart the server")) << problem(oldlib);
    Versions client = v;
    client.library = client.extension = "0.2";  // a newer migctl against an older server
    EXPECT_EQ("migctl is version 0.3 but the pg_mig extension in database \"app\" is version 0.2 | Install the "
              "pg_mig 0.3 library on the server, restart it, then run migctl install to update the extension.",
              problem(client));
    Versions none = v;
    none.installed = false;
    EXPECT_NE(std::string::npos, problem(none).find("not installed in database \"app\"")) << problem(none);
    Versions nopreload = v;
    nopreload.preloaded = false;
    EXPECT_NE(std::string::npos, problem(nopreload).find("shared_preload_libraries")) << problem(nopreload);

    EXPECT_EQ("migctl 0.3\nlibrary   0.3 (loaded by PostgreSQL 15.4)\nextension 0.3 in database \"app\"\n",
              VersionReport(v));
    EXPECT_LT(CompareVersions("0.2", "0.10"), 0);
    EXPECT_EQ(0, CompareVersions("0.3", "0.3"));
    EXPECT_GT(CompareVersions("1.0", "0.9"), 0);
}

TEST(Metrics, ExpositionFormat)
{
    MetricsReport r;
    r.database = "app";
    JobMetrics j;
    j.job_id = 7;
    j.relation = "public.\"Odd \\ name\"";
    j.state = "running";
    j.rows_done = 1500;
    j.rows_total = 3000;
    j.progress = 0.5;
    j.rows_per_sec = 250.5;
    j.eta_seconds = 6;
    j.throttled_seconds = 12.25;
    j.throttled_for_seconds = 2;
    r.jobs.push_back(j);
    JobMetrics k;
    k.job_id = 8;
    k.relation = "t";
    k.kind = "index";
    k.state = "failed";
    r.jobs.push_back(k);
    r.replicas.push_back({"standby1", "standby", 2048, 0.5});
    r.replicas.push_back({"old_slot", "physical slot", std::nullopt, std::nullopt});
    std::string text = MetricsText(r);

    std::string labels7 = R"(job_id="7",relation="public.\"Odd \\ name\"",kind="backfill",database="app")";
    EXPECT_NE(std::string::npos, text.find("pg_mig_job_rows_done_total{" + labels7 + "} 1500\n")) << text;
    EXPECT_NE(std::string::npos, text.find("pg_mig_job_rows_estimated{" + labels7 + "} 3000\n")) << text;
    EXPECT_NE(std::string::npos, text.find("pg_mig_job_rows_per_second{" + labels7 + "} 250.5\n")) << text;
    EXPECT_NE(std::string::npos, text.find("pg_mig_job_throttled_seconds_total{" + labels7 + "} 12.25\n")) << text;
    EXPECT_NE(std::string::npos, text.find("pg_mig_job_state{" + labels7 + ",state=\"running\"} 1\n")) << text;
    EXPECT_EQ(std::string::npos, text.find("pg_mig_job_state{" + labels7 + ",state=\"failed\"}")) << text;
    EXPECT_NE(std::string::npos,
              text.find(R"(pg_mig_job_state{job_id="8",relation="t",kind="index",database="app",state="failed"} 1)"))
        << text;
    // unknown values are left out, not written as 0
    EXPECT_EQ(std::string::npos, text.find("pg_mig_job_eta_seconds{job_id=\"8\"")) << text;
    EXPECT_NE(std::string::npos,
              text.find(R"(pg_mig_replica_lag_bytes{replica="standby1",type="standby",database="app"} 2048)"))
        << text;
    EXPECT_EQ(std::string::npos, text.find("replica=\"old_slot\"")) << text;
    // every sample's family has HELP and TYPE before it; counters end in _total, nothing else does
    std::set<std::string> typed;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# TYPE ", 0) == 0) {
            std::string name = line.substr(7, line.find(' ', 7) - 7), type = line.substr(line.rfind(' ') + 1);
            bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
            EXPECT_EQ(type == "counter", total) << line;
            EXPECT_EQ(0u, name.rfind("pg_mig_", 0)) << line;
            typed.insert(name);
        } else if (line[0] != '#') {
            EXPECT_TRUE(typed.count(line.substr(0, line.find('{')))) << line;
        }
    }
    EXPECT_GE(typed.size(), 10u);
}

TEST(Watch, OneLinePerJobThatFitsTheTerminal)
{
    Job j;
    j.job_id = 3;
    j.relation = "orders";
    j.state = "running";
    j.rows_done = 1000;
    j.rows_total = 4000;
    j.progress = 0.25;
    j.throttled = "standby1 is 2.0 MB behind (max_lag_bytes 2 MB);\nwaiting until below 1 MB";
    std::string line = WatchLine(j, 2 << 20, true);
    EXPECT_EQ(std::string::npos, line.find('\n')) << line;
    EXPECT_NE(std::string::npos, line.find("throttled: standby1 is 2.0 MB behind")) << line;
    EXPECT_NE(std::string::npos, line.find("lag 2.0 MB")) << line;
    EXPECT_EQ("abc", FitToWidth("abc", 10));
    EXPECT_EQ("abcdefg...", FitToWidth("abcdefghijklmnop", 10));
    // block characters are three bytes but one column
    std::string cut = FitToWidth(line, 60);
    int cols = 0;
    for (unsigned char c : cut) cols += (c & 0xC0) != 0x80;
    EXPECT_EQ(60, cols) << cut;
}

TEST(Help, EveryCommandHasUsageAndOptions)
{
    int shown = 0;
    for (const auto& c : Commands()) {
        if (Internal(c)) continue;
        auto h = CaptureHelp(c);
        EXPECT_FALSE(h.usage.empty()) << c.name;
        ASSERT_FALSE(h.groups.empty()) << c.name;
        EXPECT_EQ("connection", h.groups.back().first) << c.name;
        shown += c.synopsis != nullptr;
    }
    EXPECT_GE(shown, 10);
    auto [usage, what] = SplitSynopsis("wait JOB [--timeout D]    block until the job ends (exit 0 succeeded, 1 "
                                       "failed or\n                            cancelled, 4 timeout)");
    EXPECT_EQ("wait JOB [--timeout D]", usage);
    EXPECT_EQ("block until the job ends (exit 0 succeeded, 1 failed or cancelled, 4 timeout)", what);
    auto start = CaptureHelp(*FindCommand("start"));
    auto& opts = start.groups.front().second;
    EXPECT_TRUE(std::any_of(opts.begin(), opts.end(), [](const OptionHelp& o) { return o.long_name == "--table"; }));
}

TEST(Lanes, ParallelAndVacuumEveryOptions)
{
    auto parse = [](const std::vector<std::string>& args) {
        WalkOptions w;
        po::options_description d;
        AddWalkOptions(d, w, true);
        po::variables_map vm;
        po::store(po::command_line_parser(args).options(d).run(), vm);
        po::notify(vm);
        return WalkArgs(w, vm);
    };
    auto a = parse({"--parallel", "4", "--vacuum-every", "100000"});
    ASSERT_EQ(2u, a.size());
    EXPECT_EQ("parallel", a[0].first);
    EXPECT_EQ("4", a[0].second.first);
    EXPECT_EQ("integer", a[0].second.second);
    EXPECT_EQ("vacuum_every", a[1].first);
    EXPECT_EQ("bigint", a[1].second.second);
    EXPECT_TRUE(parse({}).empty());
    for (auto bad : std::vector<std::vector<std::string>>{{"--parallel", "0"}, {"--parallel", "33"},
                                                          {"--parallel", "2x"}, {"--parallel", "-1"},
                                                          {"--vacuum-every", "-1"}, {"--vacuum-every", "1e6"}}) {
        try {
            parse(bad);
            ADD_FAILURE() << bad[0] << " " << bad[1] << " was accepted";
        } catch (const Error& e) {
            EXPECT_EQ(kUsage, e.exit_code) << e.what();
        }
    }
    // set takes --vacuum-every only
    WalkOptions w;
    po::options_description d;
    AddWalkOptions(d, w, false);
    EXPECT_EQ(nullptr, d.find_nothrow("parallel", false));
    EXPECT_NE(nullptr, d.find_nothrow("vacuum-every", false));
}

TEST(Lanes, LanesTextAndWatchLine)
{
    Job j;
    j.job_id = 7;
    j.relation = "orders";
    j.state = "running";
    EXPECT_EQ("", LanesText(j));  // one walker: nothing new
    EXPECT_EQ(std::string::npos, WatchLine(j, 0, false).find("lanes"));
    j.parallel = 4;
    for (const char* s : {"running", "running", "waiting for a worker", "done"}) {
        Lane l;
        l.state = s;
        j.lanes.push_back(l);
    }
    EXPECT_EQ("2/4 running, 1 waiting, 1 done", LanesText(j));
    EXPECT_NE(std::string::npos, WatchLine(j, 0, false).find("lanes 2/4 running, 1 waiting, 1 done"));
    j.state = "succeeded";
    for (auto& l : j.lanes) l.state = "done";
    EXPECT_EQ("4/4 done", LanesText(j));
}

// Issue 22 item 3: the SQL that migctl writes (all of it is in api.cpp and
// pg.cpp) names pg_mig's objects with the extension's schema and every
// operator with pg_catalog, so that objects other roles create cannot
// capture it; the integration test Migctl.PlantedObjectsDoNotCaptureMigctl
// proves it for the statements it runs, this guards every statement.
TEST(Trust, EverySqlTextIsQualified)
{
    for (const char* file : {"controller/api.cpp", "controller/pg.cpp"}) {
        std::string src = ReadSource(file);
        // without character literals and comments, whose quotes are not strings
        src = std::regex_replace(src, std::regex(R"re('(\\.|[^'\\])')re"), "' '");
        src = std::regex_replace(src, std::regex(R"(//[^\n]*)"), "");
        // the string literals, joined as the compiler joins adjacent ones;
        // the SQL among them (messages and hints are not)
        std::string sql, group;
        size_t group_end = std::string::npos;
        std::regex literal(R"re("((?:[^"\\\n]|\\.)*)")re");
        auto flush = [&] {
            if (std::regex_search(group, std::regex(R"(\b(SELECT|FROM|WHERE|JOIN|EXTENSION)\b)"))) sql += group + "\n";
            group.clear();
        };
        for (auto it = std::sregex_iterator(src.begin(), src.end(), literal); it != std::sregex_iterator(); ++it) {
            std::string s = (*it)[1].str();
            auto at = static_cast<size_t>(it->position());
            bool adjacent = group_end != std::string::npos &&
                            src.substr(group_end, at - group_end).find_first_not_of(" \t\n") == std::string::npos;
            if (!adjacent) flush();
            group_end = at + static_cast<size_t>(it->length());
            if (std::regex_match(s, std::regex(R"(mig_\w+)"))) continue;  // a function's name, checked by value
            group += s;
        }
        flush();
        std::smatch m;
        // a pg_mig function or view only after @extschema@.
        EXPECT_FALSE(std::regex_search(sql, m, std::regex(R"((^|[^.\w])mig_\w+)"))) << file << ": " << m[0];
        // no operator looked up by name (=, <>, ||, ->>, IN (...), NULLIF):
        // each is OPERATOR(pg_catalog.x); => names an argument, and SET x =
        // assigns a setting
        std::string ops = std::regex_replace(sql, std::regex(R"(OPERATOR\(pg_catalog\.[^)]+\))"), " ");
        ops = std::regex_replace(ops, std::regex(R"(=>|SET \w+ =|'[^']*')"), " ");
        EXPECT_FALSE(std::regex_search(ops, m, std::regex(R"([-=<>|&*/+]|\b(IN|NULLIF|nullif|in)\s*\()")))
            << file << ": an operator looked up by name: \"" << m[0] << "\" in "
            << ops.substr(static_cast<size_t>(std::max<long>(0, m.position(0) - 40)), 80);
        // every cast names its type with its schema
        EXPECT_FALSE(std::regex_search(sql, m, std::regex(R"(::(?!pg_catalog\.)\w+)"))) << file << ": " << m[0];
    }
}

// Issue 21 items 2 and 6: a hint names a path that works from where the
// caller stands; in migctl that is a migctl command, not a SQL function.
TEST(Hints, ServerHintsInMigctlWords)
{
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"Resume it with mig_resume(7), or cancel it with mig_cancel(7) first.",
         "Resume it with migctl resume 7, or cancel it with migctl cancel 7 first."},
        {"Wait for job 12 with mig_wait(), or cancel it with mig_cancel(12).",
         "Wait for job 12 with migctl wait 12, or cancel it with migctl cancel 12."},
        {"Start a new job with mig_start_backfill().", "Start a new job with migctl start."},
        {"Run ALTER EXTENSION pg_mig UPDATE (or migctl install).", "Run migctl install."},
        {"Run ALTER EXTENSION pg_mig UPDATE.", "Run migctl install."},
        {"Run CREATE EXTENSION pg_mig.", "Run migctl install."},
        {"Add pg_mig to shared_preload_libraries in postgresql.conf and restart the server.",
         "Run migctl install --configure, then restart the server."},
        {"See the jobs of this database in mig_jobs.", "See the jobs with migctl status."},
        {"Pass the knobs by name, e.g. mig_set(4, batch_size => 5000).",
         "Pass the knobs as options, e.g. migctl set 4 --batch-size 5000."},
        {"Pass set_clause NULL and a where_clause to plan a mig_start_delete().",
         "Plan a delete with migctl plan --table T --delete --where EXPR."},
        {"Use mig_revert to write the kept values back and mig_forget to drop them.",
         "Use migctl revert to write the kept values back and migctl forget to drop them."},
        {"Drop its kept values with mig_forget(3).", "Drop its kept values with migctl forget 3."},
        // a failed not-null step's error (last_error)
        {"column \"tracking_id\" of table orders has 5 NULL rows (SQLSTATE 23514). Hint: backfill them first, e.g. "
         "with mig_start_backfill(), then run mig_set_not_null() again.",
         "column \"tracking_id\" of table orders has 5 NULL rows (SQLSTATE 23514). Hint: backfill them first, e.g. "
         "with migctl start, then run migctl not-null again."},
        // a foreign key's orphans
        {"Delete them or set them NULL first, or start mig_add_foreign_key() with orphans => 'delete' or 'set_null'.",
         "Delete them or set them NULL first, or run migctl add-fk again with --orphans delete or --orphans "
         "set_null."},
        {"Start mig_add_foreign_key(..., orphans => 'delete').", "Start migctl add-fk ... --orphans delete."},
        {"Run mig_set_not_null('orders', 'tracking_id') again.",
         "Run migctl not-null --table orders --column tracking_id again."},
        {"Start it again with mig_start_backfill(relation => 'public.orders', set_clause => 'n = n + 1', "
         "job_key => 'deploy 7', keep_old_values => true).",
         "Start it again with migctl start --table public.orders --set \"n = n + 1\" --key \"deploy 7\" "
         "--keep-old-values."},
        {"Create it with mig_create_index('t', 'lower(email)', \"unique\" => true).",
         "Create it with migctl index --table t --columns \"lower(email)\" --unique."},
        {"Start the job with parallel => 1, or start one job per partition.",
         "Start the job with --parallel 1, or start one job per partition."},
        {"Change the setting pg_mig.default_max_lag, or pass max_lag => ... explicitly.",
         "Change the setting pg_mig.default_max_lag, or pass --max-lag ... explicitly."},
        // a knob whose option is not its name with dashes (knobs.def)
        {"Pass ignore_slots => ... to leave that slot out.", "Pass --ignore-slot ... to leave that slot out."},
        // nothing of pg_mig's SQL: as it is
        {"Add a primary key, e.g. ALTER TABLE orders ADD PRIMARY KEY (id).",
         "Add a primary key, e.g. ALTER TABLE orders ADD PRIMARY KEY (id)."},
        {"", ""},
        // names that have no migctl command stay
        {"See mig_version().", "See mig_version()."},
    };
    for (const auto& [server, migctl] : cases) EXPECT_EQ(migctl, MigctlHint(server)) << server;
}

TEST(Hints, TheJobsKindChoosesTheCommand)
{
    // a cancel refused on a finished foreign-key job: the server may name
    // any start function; the new job is one of the job's kind
    EXPECT_EQ("Start a new job with migctl add-fk.",
              MigctlHint("Start a new job with mig_start_backfill().", "foreign_key"));
    EXPECT_EQ("Start a new job with migctl not-null.",
              MigctlHint("Start a new job with mig_start_backfill().", "not_null"));
    EXPECT_EQ("Start a new job with migctl start.", MigctlHint("Start a new job with mig_start_backfill().", "backfill"));
    EXPECT_EQ("Start a new job with migctl index.", MigctlHint("Start a new job with mig_add_foreign_key().", "index"));
    EXPECT_EQ("add-fk", KindCommand("foreign_key"));
    EXPECT_EQ("start", KindCommand("backfill"));
    EXPECT_EQ("", KindCommand("no such kind"));
}

// 0.4 monitoring: the live view in a narrow terminal puts the reason on a
// line of its own instead of cutting it off; only live and recent jobs.
TEST(Monitor, WatchLinesPutTheReasonOnItsOwnLine)
{
    Job j;
    j.job_id = 7;
    j.relation = "public.orders";
    j.state = "running";
    j.progress = 0.5;
    j.rows_done = 100000;
    j.rows_total = 200000;
    j.rows_per_sec = 9400;
    j.throttled = "standby1 is 2.0 MB behind (max_lag_bytes 2 MB); waiting until below 1 MB";
    auto wide = WatchLines(j, 2 << 20, false, 400);
    ASSERT_EQ(1u, wide.size());
    EXPECT_NE(std::string::npos, wide[0].find("throttled: standby1"));
    auto narrow = WatchLines(j, 2 << 20, false, 100);
    ASSERT_EQ(2u, narrow.size());
    EXPECT_EQ(std::string::npos, narrow[0].find("throttled"));
    EXPECT_EQ("    throttled: " + j.throttled, narrow[1]);
    for (const auto& l : narrow) EXPECT_LE(l.size(), 100u) << l;
    // a failed job: its error, in the same place
    j.state = "failed";
    j.last_error = "division by zero (SQLSTATE 22012)";
    EXPECT_EQ("error: division by zero (SQLSTATE 22012)", WhyText(j));
    // status --watch without a job: the old ones stay out
    Job old = j;
    old.recent = false;
    auto shown = WatchedJobs({j, old});
    ASSERT_EQ(1u, shown.size());
    EXPECT_TRUE(shown[0].recent);
}

namespace {
ReportData SampleReport()
{
    ReportData d;
    d.job.job_id = 3;
    d.job.relation = "public.orders";
    d.job.state = "succeeded";
    d.job.rows_done = 3000;
    d.job.rows_total = 3000;
    d.job.max_lag_bytes = 2 << 20;
    d.job.throttled_seconds = 2;
    d.started_at = 1000;
    d.finished_at = 1010;
    d.wal_bytes = 5 << 20;
    d.retries = 1;
    auto add = [&](double at, long long rows, double rate, long long lag, const std::string& why) {
        Sample s;
        s.at = at;
        s.rows_done = rows;
        s.rows_per_sec = rate;
        s.lag_bytes = lag;
        s.table_bytes = 1000000 + rows * 100;
        s.throttled = why;
        d.samples.push_back(s);
    };
    add(1000, 0, -1, 0, "");
    add(1002, 1000, 500, 1 << 20, "");
    add(1004, 1000, 0, 3 << 20, "standby1 is 3.0 MB behind (max_lag_bytes 2 MB); waiting until below 1 MB");
    add(1006, 2000, 500, 1 << 19, "");
    add(1010, 3000, 250, 0, "");
    d.events = {{1000, "started", ""}, {1004, "throttled", "standby1 is 3.0 MB behind"}, {1010, "succeeded", ""}};
    return d;
}
}  // namespace

TEST(Monitor, ReportTextSummarisesTheTimeline)
{
    auto d = SampleReport();
    std::string t = ReportText(d);
    EXPECT_NE(std::string::npos, t.find("duration    10.0 s")) << t;
    EXPECT_NE(std::string::npos, t.find("mean 300 rows/s, peak 500 rows/s")) << t;
    EXPECT_NE(std::string::npos, t.find("throttled   2.0 s in all; replica lag 2.0 s")) << t;
    EXPECT_NE(std::string::npos, t.find("peak lag    3.0 MB (max_lag_bytes 2.0 MB)")) << t;
    EXPECT_NE(std::string::npos, t.find("retries     1")) << t;
    EXPECT_NE(std::string::npos, t.find("table size  977 kB before, 1.2 MB after")) << t;
    EXPECT_EQ("replica lag", ReasonClass("standby1 is 3.0 MB behind (max_lag_bytes 2 MB)"));
    EXPECT_EQ("run window", ReasonClass("outside the run window mon-fri 22:00-06:00"));
}

TEST(Monitor, ReportHtmlHasAPointPerSample)
{
    auto d = SampleReport();
    std::string h = ReportHtml(d);
    auto count = [&](const std::string& part) {
        size_t n = 0;
        for (size_t p = h.find(part); p != std::string::npos; p = h.find(part, p + 1)) n++;
        return n;
    };
    EXPECT_EQ(5u, count("class=\"pt-rows\""));
    EXPECT_EQ(4u, count("class=\"pt-rate\""));
    EXPECT_EQ(5u, count("class=\"pt-lag\""));
    EXPECT_EQ(1u, count("class=\"budget\""));
    EXPECT_EQ(2u, count("class=\"span\" data-reason=\"replica lag\"")) << "one span in each chart";
    EXPECT_EQ(6u, count("class=\"ev\"")) << "three events in each chart";
    EXPECT_EQ(std::string::npos, h.find("<script")) << "self-contained, no script";
}

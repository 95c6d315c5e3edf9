// Unit tests of migctl's parsing, rendering and exit-code mapping.
#include "estimate.hpp"
#include "options.hpp"
#include "pg.hpp"
#include "render.hpp"

#include <gtest/gtest.h>

#include <algorithm>

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

TEST(ExitCodes, FromSqlState)
{
    EXPECT_EQ(kUsage, ExitCodeForSqlState("42P01", "relation \"x\" does not exist"));
    EXPECT_EQ(kUsage, ExitCodeForSqlState("22023", "batch_size must be a positive integer"));
    EXPECT_EQ(kUsage, ExitCodeForSqlState("42501", "permission denied"));
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("55000", "pg_mig must be loaded via shared_preload_libraries"));
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("08006", "connection failure"));
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("57P03", "the database system is starting up"));
    EXPECT_EQ(kNoConnection, ExitCodeForSqlState("42883", "function mig_start_backfill does not exist"));
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

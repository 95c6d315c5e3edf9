// Unit tests of migctl's parsing, rendering and exit-code mapping.
#include "options.hpp"
#include "pg.hpp"
#include "render.hpp"

#include <gtest/gtest.h>

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

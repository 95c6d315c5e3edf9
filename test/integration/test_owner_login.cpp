// test_owner_login.cpp -- a job whose owner loses LOGIN while it runs, across
// a restart: the launcher's scan after the restart gives every running job a
// new worker, which would connect as the job's owner. A role that may not
// log in may not run jobs, on every version: PostgreSQL 17 lets a background
// worker connect as a NOLOGIN role (BGWORKER_BYPASS_ROLELOGINCHECK, used
// only so the worker can record why it stops), and before 17 it cannot
// connect at all; either way the job fails with the reason in last_error and
// in its history, and no further chunk runs.
#include "harness.hpp"

#include <gtest/gtest.h>

using namespace pgmig_test;

TEST(OwnerLogin, JobWhoseOwnerLostLoginAcrossARestartFails)
{
    ASSERT_GE(Sandbox::get().pg_major, 15);
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION pg_mig");
    c.exec("CREATE ROLE it_owner LOGIN");
    c.exec("CREATE TABLE owned (id int PRIMARY KEY, who text)");
    c.exec("INSERT INTO owned (id) SELECT g FROM generate_series(1, 2000) g");
    c.exec("GRANT SELECT, UPDATE ON owned TO it_owner");
    long long job;
    {
        Conn owner(Sandbox::get().conninfo("postgres", false, "it_owner"));
        // 200 chunks 50 ms apart: still running when the server restarts
        job = owner.scalar_int(
            "SELECT mig_start_backfill('owned', 'who = current_user', where_clause => 'who IS NULL',"
            " batch_size => 10, chunk_time => NULL, sleep => '50ms')");
    }
    const std::string id = std::to_string(job);
    wait_for([&] { return job_rows_done(c, job) > 0; }, 60, "the job's first chunk");
    c.exec("ALTER ROLE it_owner NOLOGIN");
    ASSERT_EQ(0, Sandbox::get().ctl("primary", "restart -m fast"));

    Conn after(Sandbox::get().conninfo());
    EXPECT_EQ("failed", wait_job(after, job, 300));
    const std::string why = "role \"it_owner\" cannot log in, so it cannot run jobs";
    EXPECT_EQ(why, after.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {id}).value_or(""));
    EXPECT_EQ(1, after.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'failed'"
                                  " AND detail = $2",
                                  {id, why}));
    long long left = after.scalar_int("SELECT count(*) FROM owned WHERE who IS NULL");
    EXPECT_GT(left, 0);
    // what was done, was done as the owner
    EXPECT_EQ(2000 - left, after.scalar_int("SELECT count(*) FROM owned WHERE who = 'it_owner'"));
}

// test_owner_login.cpp -- a job whose owner loses LOGIN while it runs. After
// a restart the launcher's scan gives every running job a new worker, which
// connects as the job's owner: before PostgreSQL 17 no background worker can
// connect as a role without LOGIN, so the scan fails the job with a clear
// last_error; from 17 on the worker connects with
// BGWORKER_BYPASS_ROLELOGINCHECK and the job goes on, as that role.
#include "harness.hpp"

#include <gtest/gtest.h>

using namespace pgmig_test;

TEST(OwnerLogin, JobWhoseOwnerLostLoginAcrossARestart)
{
    const int major = Sandbox::get().pg_major;
    ASSERT_GE(major, 15);
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
    std::string state = wait_job(after, job, 300);
    if (major >= 17) {
        EXPECT_EQ("succeeded", state) << after.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {id})
                                             .value_or("");
        EXPECT_EQ(0, after.scalar_int("SELECT count(*) FROM owned WHERE who IS DISTINCT FROM 'it_owner'"));
    } else {
        EXPECT_EQ("failed", state);
        EXPECT_EQ("role \"it_owner\" cannot log in",
                  after.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {id}).value_or(""));
        EXPECT_EQ(1, after.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'failed'"
                                      " AND detail = 'role \"it_owner\" cannot log in'",
                                      {id}));
        EXPECT_GT(after.scalar_int("SELECT count(*) FROM owned WHERE who IS NULL"), 0);
    }
}

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

// A login role whose sessions take on a group role (ALTER ROLE deployer SET
// role = app_owner, so that what its migrations create belongs to the
// group): a job started as the group was refused (it may not log in), and
// one started as the login role after SET ROLE NONE failed at once, "the
// worker runs as role with OID ..., not as the job's owner": the worker
// connected as the login role and took on the group too.  The refusal now
// names SET ROLE NONE, and the worker runs as the role that started the job.
TEST(OwnerLogin, ALoginRoleWhoseSessionsSetAGroupRoleRunsItsJobs)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE ROLE it_group NOLOGIN");
    c.exec("CREATE ROLE it_deployer LOGIN IN ROLE it_group");
    c.exec("ALTER ROLE it_deployer SET role = 'it_group'");
    c.exec("CREATE TABLE grouped (id int PRIMARY KEY, who text, n int NOT NULL DEFAULT 0)");
    c.exec("INSERT INTO grouped (id) SELECT g FROM generate_series(1, 2000) g");
    c.exec("ALTER TABLE grouped OWNER TO it_group");
    c.exec("GRANT CREATE ON SCHEMA public TO it_group");
    Conn deployer(Sandbox::get().conninfo("postgres", false, "it_deployer"));
    ASSERT_EQ("it_group", *deployer.scalar("SELECT current_user::text"));
    try {
        deployer.exec("SELECT mig_start_backfill('grouped', 'who = current_user')");
        ADD_FAILURE() << "a job of a role that may not log in was started";
    } catch (const PgError& e) {
        EXPECT_EQ("28000", e.sqlstate);
        EXPECT_EQ("Run SET ROLE NONE first to start the job as role \"it_deployer\", the role you logged in as.", e.hint);
    }
    deployer.exec("SET ROLE NONE");
    long long backfill = deployer.scalar_int("SELECT mig_start_backfill('grouped', 'who = current_user')");
    EXPECT_EQ("succeeded", wait_job(deployer, backfill, 120))
        << deployer.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {std::to_string(backfill)})
               .value_or("");
    EXPECT_EQ(2000, c.scalar_int("SELECT count(*) FROM grouped WHERE who = 'it_deployer'"));
    // a kind of schema steps too: the role is a member of the table's owner
    long long index = deployer.scalar_int("SELECT mig_create_index('grouped', '(n)')");
    EXPECT_EQ("succeeded", wait_job(deployer, index, 120))
        << deployer.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {std::to_string(index)})
               .value_or("");
}

// pg.hpp -- RAII over libpq and errors typed by SQLSTATE.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace migctl {

// Exit codes of the contract.
enum Exit { kOk = 0, kJobFailed = 1, kUsage = 2, kNoConnection = 3, kTimeout = 4 };

// Error: a failure found by migctl itself (bad usage, cannot connect, a
// version mismatch), with the exit code it means and a hint.
struct Error : std::runtime_error {
    Error(int code, const std::string& msg, std::string h = "")
        : std::runtime_error(msg), exit_code(code), hint(std::move(h)) {}
    int exit_code;
    std::string hint;
};

// SqlError: an error the server reported, with its SQLSTATE, primary
// message and hint. What exit code it means is decided in main only
// (ExitCodeForSqlState), never from the message text.
struct SqlError : std::runtime_error {
    SqlError(std::string state, const std::string& msg, std::string h)
        : std::runtime_error(msg), sqlstate(std::move(state)), hint(std::move(h)) {}
    std::string sqlstate;  // five characters; empty if the server sent none
    std::string hint;
};

// ExitCodeForSqlState maps a server error to the exit code of the contract:
// 3 (cannot connect, server not ready) for connection, resource, operator
// intervention, system and internal errors; 2 (bad input) for the rest.
int ExitCodeForSqlState(const std::string& sqlstate);

struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

using Param = std::optional<std::string>;

// TextArrayLiteral: {"a","b"} -- a text[] value to send as a parameter
std::string TextArrayLiteral(const std::vector<std::string>& items);

class Result {
public:
    explicit Result(ResultPtr r) : r_(std::move(r)) {}
    int rows() const { return PQntuples(r_.get()); }
    int cols() const { return PQnfields(r_.get()); }
    std::string name(int col) const { return PQfname(r_.get(), col); }
    bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col); }
    std::string get(int row, int col) const { return null(row, col) ? "" : PQgetvalue(r_.get(), row, col); }
    int col(const std::string& name) const { return PQfnumber(r_.get(), name.c_str()); }

private:
    ResultPtr r_;
};

// Connection: libpq connection options from a dsn plus -h/-p/-U/-d and PG*.
struct ConnOptions {
    std::string dsn, host, port, user, dbname;
};

// kPinnedSearchPath: the search_path of migctl's session. What migctl
// writes names every function, view, type and operator with its schema;
// the pinned path is the second line of defence for anything that could
// still be looked up by name (the implicit pg_catalog first, no user
// schema, pg_temp last).
constexpr const char* kPinnedSearchPath = "pg_catalog, pg_temp";

class Connection {
public:
    // Connection: connects, reads the search_path the session started with
    // (the caller's: from the role, the database, PGOPTIONS or the dsn) and
    // pins the session's to kPinnedSearchPath
    explicit Connection(const ConnOptions& opts);
    // exec: one statement with $n parameters, under the pinned search_path
    Result exec(const std::string& sql, const std::vector<Param>& params = {});
    // execAsCaller: one statement that resolves or shows names the user
    // gave (a table, the clauses of a job) as the user sees them: in a
    // transaction of its own with the caller's search_path (SET LOCAL).
    // The statement itself must still qualify everything it names.
    Result execAsCaller(const std::string& sql, const std::vector<Param>& params = {});
    const std::string& callerSearchPath() const { return caller_search_path_; }
    PGconn* raw() { return conn_.get(); }

private:
    ConnPtr conn_;
    std::string caller_search_path_;
};

}  // namespace migctl

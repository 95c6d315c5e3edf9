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

// An error with the exit code it maps to and the server's hint, if any.
struct Error : std::runtime_error {
    Error(int code, const std::string& msg, std::string h = "")
        : std::runtime_error(msg), exit_code(code), hint(std::move(h)) {}
    int exit_code;
    std::string hint;
};

// ExitCodeForSqlState maps a server error to the exit code of the contract.
int ExitCodeForSqlState(const std::string& sqlstate, const std::string& message);

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

class Connection {
public:
    explicit Connection(const ConnOptions& opts);
    Result exec(const std::string& sql, const std::vector<Param>& params = {});
    PGconn* raw() { return conn_.get(); }

private:
    ConnPtr conn_;
};

}  // namespace migctl

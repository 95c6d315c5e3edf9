// pg.cpp -- see pg.hpp.
#include "pg.hpp"

namespace migctl {

int ExitCodeForSqlState(const std::string& s)
{
    if (s.size() != 5) return kNoConnection;  // no SQLSTATE: the connection broke
    std::string cls = s.substr(0, 2);
    // 08 connection exception, 28 invalid authorization, 3D000 no such
    // database, 53 insufficient resources, 57 operator intervention (shutdown,
    // starting up), 58 system error (e.g. the library file is missing), XX
    // internal error: the server is not there or not ready
    if (cls == "08" || cls == "28" || cls == "53" || cls == "57" || cls == "58" || cls == "XX" || s == "3D000")
        return kNoConnection;
    return kUsage;
}

std::string TextArrayLiteral(const std::vector<std::string>& items)
{
    std::string arr = "{";
    for (size_t i = 0; i < items.size(); i++) {
        arr += i ? ",\"" : "\"";
        for (char ch : items[i]) {
            if (ch == '"' || ch == '\\') arr += '\\';
            arr += ch;
        }
        arr += '"';
    }
    return arr + "}";
}

Connection::Connection(const ConnOptions& o)
{
    std::vector<const char*> keys, values;
    auto add = [&](const char* k, const std::string& v) {
        if (!v.empty()) { keys.push_back(k); values.push_back(v.c_str()); }
    };
    add("dbname", o.dsn);  // expanded: a URI or key=value string; later keys override
    add("host", o.host);
    add("port", o.port);
    add("user", o.user);
    if (!o.dbname.empty()) add("dbname", o.dbname);
    add("application_name", "migctl");
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_.reset(PQconnectdbParams(keys.data(), values.data(), 1));
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
        std::string msg = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        for (auto& ch : msg) if (ch == '\n') ch = ' ';
        throw Error(kNoConnection, "cannot connect: " + msg,
                    "Check --dsn, -h/-p/-U/-d or the PG* environment variables.");
    }
    caller_search_path_ = exec("SELECT pg_catalog.current_setting('search_path')").get(0, 0);
    exec("SELECT pg_catalog.set_config('search_path', $1::pg_catalog.text, false)", {std::string(kPinnedSearchPath)});
}

Result Connection::execAsCaller(const std::string& sql, const std::vector<Param>& params)
{
    exec("BEGIN");
    try {
        exec("SELECT pg_catalog.set_config('search_path', $1::pg_catalog.text, true)", {caller_search_path_});
        Result r = exec(sql, params);
        exec("COMMIT");
        return r;
    } catch (...) {
        // the transaction is aborted (or the connection is gone): end it,
        // and report the statement's own error, not the rollback's
        if (PQtransactionStatus(conn_.get()) == PQTRANS_INERROR || PQtransactionStatus(conn_.get()) == PQTRANS_INTRANS)
            PQclear(PQexec(conn_.get(), "ROLLBACK"));
        throw;
    }
}

Result Connection::exec(const std::string& sql, const std::vector<Param>& params)
{
    std::vector<const char*> v;
    for (const auto& p : params) v.push_back(p ? p->c_str() : nullptr);
    ResultPtr r(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(v.size()), nullptr, v.data(),
                             nullptr, nullptr, 0));
    auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
        const char* msg = r ? PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
        const char* hint = r ? PQresultErrorField(r.get(), PG_DIAG_MESSAGE_HINT) : nullptr;
        std::string m = msg ? msg : PQerrorMessage(conn_.get());
        for (auto& ch : m) if (ch == '\n') ch = ' ';
        throw SqlError(state ? state : "", m, hint ? hint : "");
    }
    return Result(std::move(r));
}

}  // namespace migctl

// cmd_schema.cpp -- the subcommands of the job kinds made of schema steps:
// migctl not-null, validate, index, add-fk, repack and change-type. Each parses its options
// (no I/O), starts the job and prints its id; --wait follows it.
#include "cli.hpp"
#include "options.hpp"

#include <iostream>
#include <sstream>

namespace migctl {

namespace {

// StepKnobs: --lock-timeout and --max-retries, which every schema step has
struct StepKnobs {
    std::string lock_timeout, max_retries, key;
};

void AddStepOptions(po::options_description& d, StepKnobs& k)
{
    d.add_options()("lock-timeout", po::value(&k.lock_timeout), "per DDL attempt; one waiting longer is retried")(
        "max-retries", po::value(&k.max_retries), "retries of a step before the job fails")(
        "wait", "follow the job to its end (exit codes of wait)");
    AddKeyOption(d, k.key);
}

void AppendStepArgs(const StepKnobs& k, const po::variables_map& vm, NamedArgs& named)
{
    for (auto& a : KeyArgs(k.key, vm)) named.push_back(a);
    if (!k.lock_timeout.empty())
        named.push_back({"lock_timeout", {DurationToInterval(ParseDuration(k.lock_timeout)), "interval"}});
    if (!k.max_retries.empty()) {
        size_t pos = 0;
        int n = -1;
        try {
            n = std::stoi(k.max_retries, &pos);
        } catch (const std::exception&) {
        }
        if (n < 0 || pos != k.max_retries.size())
            throw Error(kUsage, "invalid --max-retries \"" + k.max_retries + "\"", "Pass a number, e.g. 10.");
        named.push_back({"max_retries", {std::to_string(n), "integer"}});
    }
}

// SplitList: "a,b, c" -> {"a", "b", "c"}
std::vector<std::string> SplitList(const std::string& s)
{
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        auto b = item.find_first_not_of(" \t");
        auto e = item.find_last_not_of(" \t");
        if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    }
    return out;
}

int StartAndFollow(const CommandLine& cl, const std::string& fn, const NamedArgs& named)
{
    Connection c(cl.conn);
    Api api(c);
    long long id = api.StartKind(fn, named);
    return Started(api, id, cl.vm.count("wait") > 0);
}

void NoJobArg(const CommandLine& cl, const std::string& cmd)
{
    if (cl.vm.count("job")) throw Error(kUsage, cmd + " takes no job id", "Run migctl " + cmd + " --help.");
}

}  // namespace

int CmdNotNull(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, column;
    StepKnobs knobs;
    po::options_description d("not-null options");
    d.add_options()("table", po::value(&table), "the table")("column", po::value(&column),
                                                              "the column to set NOT NULL");
    AddStepOptions(d, knobs);
    auto cl = Parse(cmd, args, d, "not-null --table T --column C [--lock-timeout D] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty() || column.empty())
        throw Error(kUsage, "not-null needs --table and --column", "e.g. migctl not-null --table orders --column tracking_id");
    NoJobArg(cl, cmd);
    NamedArgs named{{"relation", {table, "regclass"}}, {"column_name", {column, "name"}}};
    AppendStepArgs(knobs, cl.vm, named);
    return StartAndFollow(cl, "mig_set_not_null", named);
}

int CmdValidate(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, constraint;
    StepKnobs knobs;
    po::options_description d("validate options");
    d.add_options()("table", po::value(&table), "the table")("constraint", po::value(&constraint),
                                                              "the NOT VALID check or foreign key");
    AddStepOptions(d, knobs);
    auto cl = Parse(cmd, args, d, "validate --table T --constraint N [--lock-timeout D] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty() || constraint.empty())
        throw Error(kUsage, "validate needs --table and --constraint",
                    "e.g. migctl validate --table orders --constraint orders_customer_fk");
    NoJobArg(cl, cmd);
    NamedArgs named{{"relation", {table, "regclass"}}, {"constraint_name", {constraint, "name"}}};
    AppendStepArgs(knobs, cl.vm, named);
    return StartAndFollow(cl, "mig_validate_constraint", named);
}

int CmdRepack(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, max_lag, max_lag_bytes;
    StepKnobs knobs;
    po::options_description d("repack options");
    d.add_options()("table", po::value(&table), "the table to rewrite")(
        "max-lag", po::value(&max_lag), "wait before the repack while a standby replays more than this behind")(
        "max-lag-bytes", po::value(&max_lag_bytes), "wait while a standby or slot is this far behind, e.g. 16MB");
    AddStepOptions(d, knobs);
    auto cl = Parse(cmd, args, d, "repack --table T [--lock-timeout D] [--max-retries N] [--max-lag D] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty())
        throw Error(kUsage, "repack needs --table", "e.g. migctl repack --table orders");
    NoJobArg(cl, cmd);
    NamedArgs named{{"relation", {table, "regclass"}}};
    AppendStepArgs(knobs, cl.vm, named);
    if (!max_lag.empty()) named.push_back({"max_lag", {DurationToInterval(ParseDuration(max_lag)), "interval"}});
    if (!max_lag_bytes.empty()) named.push_back({"max_lag_bytes", {std::to_string(ParseSize(max_lag_bytes)), "bigint"}});
    return StartAndFollow(cl, "mig_repack", named);
}

int CmdChangeType(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, column, type, using_expr, batch_size;
    StepKnobs knobs;
    po::options_description d("change-type options");
    d.add_options()("table", po::value(&table), "the table")("column", po::value(&column), "the column")(
        "type", po::value(&type), "the new type, as ALTER COLUMN TYPE takes it, e.g. bigint")(
        "using", po::value(&using_expr), "the new value, an expression over the table's columns (default: column::type)")(
        "cleanup", "drop the old column at the end")(
        "convert-referencing", "change the columns of other tables that reference it through a foreign key too")(
        "batch-size", po::value(&batch_size), "keys per chunk of the walk");
    AddStepOptions(d, knobs);
    auto cl = Parse(cmd, args, d,
                    "change-type --table T --column C --type TYPE [--using EXPR] [--cleanup] [--convert-referencing] "
                    "[--lock-timeout D] "
                    "[--max-retries N] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty() || column.empty() || type.empty())
        throw Error(kUsage, "change-type needs --table, --column and --type",
                    "e.g. migctl change-type --table orders --column id --type bigint --cleanup");
    NoJobArg(cl, cmd);
    NamedArgs named{{"relation", {table, "regclass"}}, {"column_name", {column, "name"}}, {"new_type", {type, "text"}}};
    if (!using_expr.empty()) named.push_back({"using_expr", {using_expr, "text"}});
    if (cl.vm.count("cleanup")) named.push_back({"cleanup", {"true", "boolean"}});
    if (cl.vm.count("convert-referencing")) named.push_back({"convert_referencing", {"true", "boolean"}});
    if (!batch_size.empty()) {
        size_t pos = 0;
        int n = 0;
        try {
            n = std::stoi(batch_size, &pos);
        } catch (const std::exception&) {
        }
        if (n <= 0 || pos != batch_size.size())
            throw Error(kUsage, "invalid --batch-size \"" + batch_size + "\"", "Pass a number, e.g. 5000.");
        named.push_back({"batch_size", {std::to_string(n), "integer"}});
    }
    AppendStepArgs(knobs, cl.vm, named);
    return StartAndFollow(cl, "mig_change_type", named);
}

int CmdIndex(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, columns, name, method, where, include, max_lag, max_lag_bytes;
    StepKnobs knobs;
    po::options_description d("index options");
    d.add_options()("table", po::value(&table), "the table")(
        "columns", po::value(&columns), "the column list, e.g. \"lower(email)\" or \"customer_id, created_at DESC\"")(
        "name", po::value(&name), "the index name (default: PostgreSQL's usual one)")(
        "unique", "a unique index")("method", po::value(&method), "the access method (default btree)")(
        "where", po::value(&where), "the predicate of a partial index")(
        "include", po::value(&include), "columns to store in the index, e.g. a,b")(
        "max-lag", po::value(&max_lag), "wait before the build while a standby replays more than this behind")(
        "max-lag-bytes", po::value(&max_lag_bytes), "wait while a standby or slot is this far behind, e.g. 16MB");
    AddStepOptions(d, knobs);
    auto cl = Parse(cmd, args, d,
                    "index --table T --columns EXPR [--name N] [--unique] [--method M] [--where EXPR]\n"
                    "       [--include C,...] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty() || columns.empty())
        throw Error(kUsage, "index needs --table and --columns", "e.g. migctl index --table users --columns \"lower(email)\"");
    NoJobArg(cl, cmd);
    NamedArgs named{{"relation", {table, "regclass"}}, {"columns", {columns, "text"}}};
    if (!name.empty()) named.push_back({"index_name", {name, "name"}});
    if (cl.vm.count("unique")) named.push_back({"\"unique\"", {"true", "boolean"}});
    if (!method.empty()) named.push_back({"method", {method, "text"}});
    if (!where.empty()) named.push_back({"where_clause", {where, "text"}});
    if (!include.empty()) named.push_back({"include", {TextArrayLiteral(SplitList(include)), "name[]"}});
    if (!max_lag.empty()) named.push_back({"max_lag", {DurationToInterval(ParseDuration(max_lag)), "interval"}});
    if (!max_lag_bytes.empty())
        named.push_back({"max_lag_bytes", {std::to_string(ParseSize(max_lag_bytes)), "bigint"}});
    AppendStepArgs(knobs, cl.vm, named);
    return StartAndFollow(cl, "mig_create_index", named);
}

int CmdAddFk(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, columns, references, ref_columns, name, on_delete, orphans, key;
    Knobs knobs;
    po::options_description d("add-fk options (and the chunk and throttle options of start, for the orphan walk)");
    d.add_options()("table", po::value(&table), "the referencing table")(
        "columns", po::value(&columns), "the referencing columns, e.g. customer_id")(
        "references", po::value(&references), "the referenced table")(
        "ref-columns", po::value(&ref_columns), "the referenced columns (default: its primary key)")(
        "name", po::value(&name), "the constraint name (default: PostgreSQL's usual one)")(
        "on-delete", po::value(&on_delete), "no action | restrict | cascade | set null | set default")(
        "orphans", po::value(&orphans), "fail (default) | delete | set_null: what to do with rows without a match")(
        "wait", "follow the job to its end (exit codes of wait)");
    AddKeyOption(d, key);
    AddKnobOptions(d, knobs);
    auto cl = Parse(cmd, args, d,
                    "add-fk --table T --columns C[,C...] --references T2 [--ref-columns C,...] [--name N]\n"
                    "       [--on-delete ACTION] [--orphans fail|delete|set_null] [options] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty() || columns.empty() || references.empty())
        throw Error(kUsage, "add-fk needs --table, --columns and --references",
                    "e.g. migctl add-fk --table orders --columns customer_id --references customers");
    NoJobArg(cl, cmd);
    NamedArgs named{{"relation", {table, "regclass"}},
                    {"columns", {TextArrayLiteral(SplitList(columns)), "name[]"}},
                    {"ref_relation", {references, "regclass"}}};
    if (!ref_columns.empty()) named.push_back({"ref_columns", {TextArrayLiteral(SplitList(ref_columns)), "name[]"}});
    if (!name.empty()) named.push_back({"constraint_name", {name, "name"}});
    if (!on_delete.empty()) named.push_back({"on_delete", {on_delete, "text"}});
    if (!orphans.empty()) named.push_back({"orphans", {orphans, "text"}});
    for (auto& a : KnobArgs(knobs, cl.vm)) named.push_back(a);
    for (auto& a : KeyArgs(key, cl.vm)) named.push_back(a);
    return StartAndFollow(cl, "mig_add_foreign_key", named);
}

}  // namespace migctl

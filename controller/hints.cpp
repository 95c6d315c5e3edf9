// hints.cpp -- see hints.hpp. The mapping from pg_mig's SQL paths to
// migctl's commands: one table of functions and views (kPaths), one of the
// whole sentences that need more than a name changed (kSentences).
#include "hints.hpp"

#include "cli.hpp"

#include <cctype>
#include <functional>
#include <regex>
#include <vector>

namespace migctl {

namespace {

// SqlPath: a pg_mig function or view and the migctl command that does what
// it does; positional: the option each positional argument of a call
// becomes ("JOB": the job id, as it is)
struct SqlPath {
    const char* sql;
    const char* kind;     // the job kind it starts, or nullptr
    const char* command;  // the migctl command, e.g. "not-null"
    std::vector<const char*> positional;
};

const std::vector<SqlPath>& Paths()
{
    static const std::vector<SqlPath> paths = {
        {"mig_start_backfill", "backfill", "start", {"--table", "--set", "--where"}},
        {"mig_start_delete", "delete", "delete", {"--table", "--where"}},
        {"mig_set_not_null", "not_null", "not-null", {"--table", "--column"}},
        {"mig_add_foreign_key", "foreign_key", "add-fk",
         {"--table", "--columns", "--references", "--ref-columns", "--name", "--on-delete", "--orphans"}},
        {"mig_validate_constraint", "validate", "validate", {"--table", "--constraint"}},
        {"mig_create_index", "index", "index",
         {"--table", "--columns", "--name", "--unique", "--method", "--where", "--include"}},
        {"mig_revert", "revert", "revert", {"JOB"}},
        {"mig_repack", "repack", "repack", {"--table"}},
        {"mig_change_type", "change_type", "change-type", {"--table", "--column", "--type", "--using", "--cleanup", "--convert-referencing"}},
        {"mig_forget", nullptr, "forget", {"JOB"}},
        {"mig_pause", nullptr, "pause", {"JOB"}},
        {"mig_resume", nullptr, "resume", {"JOB"}},
        {"mig_cancel", nullptr, "cancel", {"JOB"}},
        {"mig_wait", nullptr, "wait", {"JOB", "--timeout"}},
        {"mig_set", nullptr, "set", {"JOB"}},
        {"mig_plan", nullptr, "plan",
         {"--table", "--set", "--where", "--batch-size", "--samples", "--lock-timeout", "--parallel"}},
        {"mig_job_events", nullptr, "events", {}},
        {"mig_job_lanes", nullptr, "status --json", {}},
        {"mig_jobs", nullptr, "status", {}},
    };
    return paths;
}

const SqlPath* FindPath(const std::string& sql)
{
    for (const auto& p : Paths())
        if (sql == p.sql) return &p;
    return nullptr;
}

// OptionOf: the migctl option of a named argument of fn
std::string OptionOf(const std::string& fn, const std::string& arg)
{
    std::string a = arg;
    if (a.size() >= 2 && a.front() == '"' && a.back() == '"') a = a.substr(1, a.size() - 2);
    if (a == "relation") return "--table";
    if (a == "set_clause") return "--set";
    if (a == "where_clause") return "--where";
    if (a == "column_name") return "--column";
    if (a == "ref_relation") return "--references";
    if (a == "index_name") return "--name";
    if (a == "job_key") return "--key";
    if (a == "job_id") return "JOB";
    if (a == "constraint_name") return fn == "mig_add_foreign_key" ? "--name" : "--constraint";
    if (!KnobOption(a).empty()) return KnobOption(a);
    for (auto& ch : a)
        if (ch == '_') ch = '-';
    return "--" + a;
}

std::string Trim(const std::string& s)
{
    auto b = s.find_first_not_of(" \t\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

// ShellValue: a SQL value as a migctl argument: 'a b' -> "a b", 'x' -> x
std::string ShellValue(const std::string& v)
{
    std::string s = v;
    if (s.size() >= 2 && s.front() == '\'' && s.back() == '\'') {
        std::string inner;
        for (size_t i = 1; i + 1 < s.size(); i++) {
            inner += s[i];
            if (s[i] == '\'' && i + 2 < s.size() && s[i + 1] == '\'') i++;
        }
        s = inner;
    }
    bool plain = !s.empty();
    for (char ch : s) plain = plain && (std::isalnum(static_cast<unsigned char>(ch)) || std::string("_.,-:").find(ch) != std::string::npos);
    return plain || s == "..." ? s : "\"" + s + "\"";
}

// Argument: one argument of a call as migctl words ("" for none)
std::string Argument(const std::string& fn, const std::string& option, const std::string& value)
{
    if (option.empty()) return value == "..." ? "..." : "";
    if (value == "...") return option == "JOB" ? "JOB" : option + " ...";
    if (option == "JOB") return value;
    std::string lower;
    for (char ch : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    // the boolean options are flags
    if (option == "--unique" || option == "--keep-old-values" || option == "--throttle-on-autovacuum" ||
        option == "--wait")
        return lower == "true" ? option : "";
    if (lower == "null") return "";
    (void)fn;
    return option + " " + ShellValue(value);
}

// SplitArgs: the top-level arguments of a call's argument list
std::vector<std::string> SplitArgs(const std::string& list)
{
    std::vector<std::string> out;
    std::string cur;
    int depth = 0;
    bool quoted = false;
    for (char ch : list) {
        if (ch == '\'') quoted = !quoted;
        if (!quoted && (ch == '(' || ch == '[')) depth++;
        if (!quoted && (ch == ')' || ch == ']')) depth--;
        if (!quoted && depth == 0 && ch == ',') {
            out.push_back(Trim(cur));
            cur.clear();
            continue;
        }
        cur += ch;
    }
    if (!Trim(cur).empty() || !out.empty()) out.push_back(Trim(cur));
    return out;
}

// Call: "mig_resume(7)" -> "migctl resume 7"
std::string Call(const SqlPath& p, const std::string& arglist)
{
    std::string out = std::string("migctl ") + p.command;
    size_t positional = 0;
    for (const auto& a : SplitArgs(arglist)) {
        if (a.empty()) continue;
        std::string word;
        auto arrow = a.find("=>");
        if (a == "..." || a == "…") {
            word = "...";
        } else if (arrow != std::string::npos) {
            word = Argument(p.sql, OptionOf(p.sql, Trim(a.substr(0, arrow))), Trim(a.substr(arrow + 2)));
        } else {
            std::string option = positional < p.positional.size() ? p.positional[positional] : "";
            positional++;
            word = Argument(p.sql, option, a);
        }
        if (!word.empty()) out += " " + word;
    }
    return out;
}

// Sentences that need more than the names changed, tried before the names
struct Sentence {
    std::regex pattern;
    std::function<std::string(const std::smatch&)> say;
};

const std::vector<Sentence>& Sentences()
{
    auto lit = [](const char* s) { return [s](const std::smatch&) { return std::string(s); }; };
    static const std::vector<Sentence> sentences = {
        {std::regex(R"(Run ALTER EXTENSION pg_mig UPDATE \(or migctl install\))"), lit("Run migctl install")},
        {std::regex(R"(Run ALTER EXTENSION pg_mig UPDATE in that database)"),
         lit("Run migctl install -d DATABASE in that database")},
        {std::regex(R"(ALTER EXTENSION pg_mig UPDATE( TO '[^']*')?)"), lit("migctl install")},
        {std::regex(R"(CREATE EXTENSION pg_mig)"), lit("migctl install")},
        {std::regex(R"(Add pg_mig to shared_preload_libraries in postgresql\.conf and restart the server)"),
         lit("Run migctl install --configure, then restart the server")},
        {std::regex(R"(See the jobs of this database in mig_jobs)"), lit("See the jobs with migctl status")},
        {std::regex(R"(Wait for job (\d+) with mig_wait\(\))"),
         [](const std::smatch& m) { return "Wait for job " + m[1].str() + " with migctl wait " + m[1].str(); }},
        {std::regex(R"(Pass the knobs by name, e\.g\. mig_set\((\d+), (\w+) => ([^)]*)\))"),
         [](const std::smatch& m) {
             return "Pass the knobs as options, e.g. migctl set " + m[1].str() + " " +
                    Argument("mig_set", OptionOf("mig_set", m[2].str()), m[3].str());
         }},
        {std::regex(R"(Pass set_clause NULL and a where_clause to plan a mig_start_delete\(\))"),
         lit("Plan a delete with migctl plan --table T --delete --where EXPR")},
        {std::regex(R"(start mig_add_foreign_key\(\) with orphans => '(\w+)' or '(\w+)')"),
         [](const std::smatch& m) {
             return "run migctl add-fk again with --orphans " + m[1].str() + " or --orphans " + m[2].str();
         }},
        {std::regex(R"(or pass another constraint_name)"), lit("or pass another --name")},
        {std::regex(R"(Pass NULL to change every row)"), lit("Leave out --where to change every row")},
    };
    return sentences;
}

// KnobSentence: a knob named outside a call ("pass max_lag => ... explicitly",
// "parallel => 1"), after the calls are done
const Sentence& KnobSentence()
{
    static const Sentence knobs = {std::regex(R"(\b([a-z][a-z_]*) => ('[^']*'|\.\.\.|[A-Za-z0-9_.]+))"),
                                   [](const std::smatch& m) {
                                       std::string word = Argument("", OptionOf("", m[1].str()), m[2].str());
                                       return word.empty() ? m[0].str() : word;
                                   }};
    return knobs;
}

std::string ReplaceAll(const std::string& text, const Sentence& s)
{
    std::string out;
    auto begin = text.cbegin();
    std::smatch m;
    while (std::regex_search(begin, text.cend(), m, s.pattern)) {
        out.append(begin, m[0].first);
        out += s.say(m);
        begin = m[0].second;
    }
    out.append(begin, text.cend());
    return out;
}

// Names: every mig_ name of the table, as a call (with its arguments) or
// a bare name, in migctl's words; names outside the table stay
std::string Names(const std::string& text)
{
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        bool word_start = i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '_' ||
                                      text[i - 1] == '.');
        if (!word_start || text.compare(i, 4, "mig_") != 0) {
            out += text[i++];
            continue;
        }
        size_t end = i;
        while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) end++;
        const SqlPath* p = FindPath(text.substr(i, end - i));
        if (!p) {
            out += text.substr(i, end - i);
            i = end;
            continue;
        }
        if (end < text.size() && text[end] == '(') {
            // the call's argument list, up to its closing parenthesis
            int depth = 0;
            bool quoted = false;
            size_t close = std::string::npos;
            for (size_t k = end; k < text.size(); k++) {
                if (text[k] == '\'') quoted = !quoted;
                if (quoted) continue;
                if (text[k] == '(') depth++;
                if (text[k] == ')' && --depth == 0) {
                    close = k;
                    break;
                }
            }
            if (close != std::string::npos) {
                out += Call(*p, text.substr(end + 1, close - end - 1));
                i = close + 1;
                continue;
            }
        }
        out += std::string("migctl ") + p->command;
        i = end;
    }
    return out;
}

}  // namespace

std::string KindCommand(const std::string& kind)
{
    for (const auto& p : Paths())
        if (p.kind && kind == p.kind) return p.command;
    return "";
}

std::string MigctlHint(const std::string& text, const std::string& kind)
{
    if (text.find("mig_") == std::string::npos && text.find("EXTENSION pg_mig") == std::string::npos &&
        text.find("shared_preload_libraries in postgresql.conf") == std::string::npos &&
        text.find(" => ") == std::string::npos)
        return text;
    std::string out = text;
    // a new job of the kind this one is, whatever start function the server names
    if (!kind.empty()) {
        for (const auto& p : Paths())
            if (p.kind && kind == p.kind) {
                out = std::regex_replace(out, std::regex(R"(Start a new job with mig_\w+\(\))"),
                                         std::string("Start a new job with ") + p.sql + "()");
                break;
            }
    }
    for (const auto& s : Sentences()) out = ReplaceAll(out, s);
    return ReplaceAll(Names(out), KnobSentence());
}

}  // namespace migctl

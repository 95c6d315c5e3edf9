// hints.hpp -- what the server says in SQL, said in migctl's words.
//
// The extension's hints (and the "Hint: ..." in a failed job's error) name
// the SQL path: mig_resume(7), mig_start_backfill(), ALTER EXTENSION pg_mig
// UPDATE. A migctl user is in another layer; every such path has a migctl
// command, and one table (hints.cpp) maps the one to the other.
#pragma once

#include <string>

namespace migctl {

// MigctlHint: text (a server's hint, an error text, an event's detail) with
// every pg_mig SQL call or name in it replaced by the migctl command that
// does the same; text without any is returned as it is. kind: the kind of
// the job the text is about, if known ("foreign_key", ...), so that "Start
// a new job with mig_start_backfill()" about a foreign-key job names
// migctl add-fk.
std::string MigctlHint(const std::string& text, const std::string& kind = "");

// KindCommand: the migctl command that starts a job of this kind ("start"
// for backfill, "add-fk" for foreign_key, ...), or "" if there is none
std::string KindCommand(const std::string& kind);

}  // namespace migctl

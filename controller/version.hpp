// version.hpp -- the version of pg_mig that this migctl belongs to. The one
// source is the project VERSION in CMakeLists.txt (MIGCTL_VERSION); the
// extension's PG_MIG_VERSION and pg_mig.control must agree (unit test
// Version.OneNumberForTheProject).
#pragma once

namespace migctl {

constexpr const char* kVersion = MIGCTL_VERSION;

}  // namespace migctl

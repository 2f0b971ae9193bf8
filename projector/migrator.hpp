#pragma once
// The migration runner moved to schema/migrator.hpp and the stored cursors to
// projector/cursors.hpp. This header keeps the names callers outside this module (server/main.cpp,
// tools/xtrace_replay.cpp) still use; new code includes those two headers instead, and this one
// goes once no caller is left.

#include "projector/cursors.hpp"
#include "schema/migrator.hpp"

namespace xtrace::projector {

using schema::ApplyMigrations;
using schema::MigrationsPending;

}  // namespace xtrace::projector

#pragma once
// The SQL migrations of schema/migrations/, compiled into the binary so a deployed server needs
// no source tree. migrator.hpp applies them.

#include <span>
#include <string_view>

namespace xtrace::schema {

struct Migration {
  int version;            // NNNN of the file name
  std::string_view name;  // file name without the extension
  std::string_view sql;
};

// All migrations, ascending by version.
std::span<const Migration> Migrations();

}  // namespace xtrace::schema

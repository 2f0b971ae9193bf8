#include "projector/failure.hpp"

#include <pqxx/except>

#include <array>

namespace xtrace::projector {

FailureKind ClassifySqlState(std::string_view sqlstate) {
  static constexpr std::array<std::string_view, 15> kTransientClasses = {
      "08", "0A", "25", "28", "3D", "3F", "40", "42", "53", "55", "57", "58", "F0", "P0", "XX"};
  if (sqlstate.size() != 5) return FailureKind::kTransient;  // not from the server
  for (const auto cls : kTransientClasses) {
    if (sqlstate.starts_with(cls)) return FailureKind::kTransient;
  }
  return FailureKind::kData;
}

FailureKind ClassifyFailure(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    return ClassifySqlState(sql->sqlstate());
  }
  if (dynamic_cast<const pqxx::conversion_error*>(&e) != nullptr) return FailureKind::kData;
  return FailureKind::kTransient;
}

}  // namespace xtrace::projector

#pragma once
// 128-bit identifiers as clients send them: hyphenated (any case) or 32 plain hex digits.
// Rendered lowercase hyphenated, as PostgreSQL's uuid type and xtrace do.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xtrace::common {

struct Uuid {
  std::array<uint8_t, 16> bytes{};

  static std::optional<Uuid> Parse(std::string_view text);
  // A random version-4 UUID (used to name a WAL, not for anything secret).
  static Uuid Random();
  std::string ToString() const;

  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

}  // namespace xtrace::common

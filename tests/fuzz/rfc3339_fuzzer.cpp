// common::ParseRfc3339: timestamps of request bodies and query parameters. Whatever it accepts
// must survive the round trip through the canonical form the API prints, which it also accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/time.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto t = xtrace::common::ParseRfc3339(text);
  if (!t) return 0;
  if (xtrace::common::ParseRfc3339(xtrace::common::FormatRfc3339(*t)) != t) std::abort();
  if (xtrace::common::ParseRfc3339(xtrace::common::FormatRfc3339Offset(*t)) != t) std::abort();
  return 0;
}

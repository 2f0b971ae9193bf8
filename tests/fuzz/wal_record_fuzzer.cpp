// schema::DecodeRecord and PeekRecordKind on arbitrary bytes: a damaged WAL value, or one written
// by another build, must give an error, never a crash. A record that decodes must re-encode to
// bytes that decode to the same record, and Peek must agree with the full decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "schema/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xtrace::schema;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto kind = PeekRecordKind(bytes);
  const auto record = DecodeRecord(bytes);
  if (!record) return 0;
  if (!kind) std::abort();
  const bool is_entities = std::holds_alternative<EntityBatch>(record->events);
  if (is_entities != (*kind == RecordKind::kEntities)) std::abort();

  // Compared as bytes, not with operator==, so a NaN read from the input compares equal.
  const std::string encoded = EncodeRecord(*record);
  const auto again = DecodeRecord(encoded);
  if (!again || EncodeRecord(*again) != encoded) std::abort();
  return 0;
}

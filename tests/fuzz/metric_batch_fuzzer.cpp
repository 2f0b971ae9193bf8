// ingest::ParseMetricBatch: the body of POST /v1/metrics/batch. Whatever it accepts is a WAL record
// the codec can store and read back unchanged (compared as bytes, so a NaN would compare equal).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/time.hpp"
#include "ingest/metrics.hpp"
#include "schema/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  xtrace::ingest::IngestContext ctx;
  ctx.received_at = xtrace::common::ParseRfc3339("2026-01-01T00:00:00Z").value();
  const auto record = xtrace::ingest::ParseMetricBatch(body, ctx);
  if (!record) return 0;
  const std::string encoded = xtrace::schema::EncodeRecord(*record);
  const auto decoded = xtrace::schema::DecodeRecord(encoded);
  if (!decoded || xtrace::schema::EncodeRecord(*decoded) != encoded) std::abort();
  return 0;
}

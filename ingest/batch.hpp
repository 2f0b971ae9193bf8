#pragma once
// POST /v1/l/batch: the xtrace batch body, parsed and validated into a WAL record.

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/time.hpp"
#include "schema/events.hpp"

namespace xtrace::ingest {

struct IngestContext {
  std::string project_id = "default";   // events that name no project belong here
  std::string environment = "default";  // events that name no environment belong here
  common::TimePoint received_at;
};

// Malformed JSON → kMalformedJson; a wrong shape or type → kInvalidField naming the JSON path.
// Pure: no I/O, so every validation rule has a unit test.
common::Result<schema::WalRecord> ParseTraceBatch(std::string_view body, const IngestContext& ctx);

// True for application/json and application/*+json, with or without parameters.
bool IsJsonContentType(std::string_view content_type);

}  // namespace xtrace::ingest

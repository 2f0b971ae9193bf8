#pragma once
// POST /v1/l/batch: the xtrace batch body, parsed and validated into a WAL record.

#include <string>
#include <string_view>
#include <variant>

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

// A WAL record of the given events, stamped with the request's context.
schema::WalRecord MakeRecord(const IngestContext& ctx, schema::Source source,
                             std::variant<schema::EntityBatch, schema::MetricBatch> events);

// True for application/json and application/*+json, with or without parameters.
bool IsJsonContentType(std::string_view content_type);

}  // namespace xtrace::ingest

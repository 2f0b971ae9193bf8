#pragma once
// POST /v1/metrics/batch: time-series points, parsed and validated into a WAL record.

#include <string_view>

#include "common/error.hpp"
#include "ingest/batch.hpp"
#include "schema/events.hpp"

namespace xtrace::ingest {

// {"metrics":[{"name":s,"labels":{s:s},"value":n,"timestamp":rfc3339}, ...]}: `metrics`, and per
// point name, value and timestamp, are required; labels are optional string-to-string maps.
// Labels are stored sorted by key, so a series has one identity however the client ordered them.
common::Result<schema::WalRecord> ParseMetricBatch(std::string_view body, const IngestContext& ctx);

}  // namespace xtrace::ingest

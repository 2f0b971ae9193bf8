#pragma once
// Every limit ingest enforces so that what it acknowledges PostgreSQL will accept, the rollups can
// add up and the read paths can render. One place: the front doors read them from here and
// docs/api.md lists them with these values.
//
// Why these numbers:
// - PostgreSQL refuses a btree index row over 2704 bytes (one third of an 8 KiB page). The widest
//   key we write is the daily usage rollup's (project, environment, day, dims, model), where dims
//   holds the trace's name, user, version, release and tags; the metric series key is (project,
//   environment, name, labels). The text limits below keep each of those keys under ~2300 bytes
//   with every field at its limit (the generative test writes exactly that), whatever the
//   compression.
// - Sums: token counts and costs are bounded per event, and the rollups keep token sums as NUMERIC
//   and cost sums as double precision, so no sum of bounded values can overflow.
// - Names and label keys are identifiers shown in lists and used as group keys: no control
//   characters (a NUL would be truncated by PostgreSQL's text handling).

#include <cstddef>
#include <cstdint>

namespace xtrace::ingest::limits {

// Trace and observation text that is indexed or grouped by.
inline constexpr size_t kNameBytes = 512;        // trace and observation name
inline constexpr size_t kUserIdBytes = 256;      // userId
inline constexpr size_t kSessionIdBytes = 256;   // sessionId
inline constexpr size_t kEnvironmentBytes = 64;  // environment
inline constexpr size_t kReleaseBytes = 128;     // release
inline constexpr size_t kVersionBytes = 128;     // version
inline constexpr size_t kModelBytes = 256;       // model
inline constexpr size_t kProjectIdBytes = 128;   // projectId
inline constexpr size_t kTagBytes = 128;         // one tag
inline constexpr size_t kTags = 32;              // tags per trace
inline constexpr size_t kTagsTotalBytes = 768;   // all tags of a trace together
inline constexpr size_t kShortTextBytes = 1024;  // type, level, unit, prompt and model ids

// Numbers. Token counts are integers in [0, kMaxTokens]; costs, prices and latencies are finite
// numbers in [0, kMaxAmount]. 10^12 tokens or dollars or seconds is far beyond any real call and
// leaves every per-row sum (prompt + completion, a trace's total) inside int64 and double.
inline constexpr int64_t kMaxTokens = 1'000'000'000'000;
inline constexpr double kMaxAmount = 1e12;

// Metrics. The series key (name + labels) stays under the index limit with every field at its
// limit; values are bounded so that a step rollup's sum cannot overflow a double even with one
// point per microsecond for a day (8.64e10 points of 1e100 is ~1e111).
inline constexpr size_t kMetricNameBytes = 256;
inline constexpr size_t kLabels = 32;
inline constexpr size_t kLabelKeyBytes = 128;
inline constexpr size_t kLabelValueBytes = 256;
inline constexpr size_t kLabelsTotalBytes = 1536;  // keys and values of one point together
inline constexpr double kMaxMetricMagnitude = 1e100;

}  // namespace xtrace::ingest::limits

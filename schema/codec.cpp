#include "schema/codec.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <memory>

#include "schema/wal.capnp.h"

namespace xtrace::schema {
namespace {

namespace cw = capnp_wal;
using common::Error;
using common::ErrorCode;

// ---- encode helpers ---------------------------------------------------------------------------

capnp::Text::Reader TextOf(const std::string& s) {
  return {s.data(), s.size()};
}
capnp::Data::Reader DataOf(const Uuid& u) {
  return {u.bytes.data(), u.bytes.size()};
}

// Sets a Text field only when the value is present, so absence survives the round trip.
#define XT_SET_TEXT(builder, Field, opt) \
  if (opt) builder.set##Field(TextOf(*(opt)))
#define XT_SET_OPT(builder, Field, opt, member) \
  if (opt) builder.init##Field().set##member(*(opt))
#define XT_SET_TIME(builder, Field, opt) \
  if (opt) builder.init##Field().setMicros((opt)->time_since_epoch().count())

void EncodeTrace(const TraceEvent& t, cw::Trace::Builder b) {
  b.setId(DataOf(t.id));
  XT_SET_TIME(b, Timestamp, t.timestamp);
  XT_SET_TEXT(b, Name, t.name);
  XT_SET_TEXT(b, UserId, t.user_id);
  XT_SET_TEXT(b, SessionId, t.session_id);
  XT_SET_TEXT(b, Release, t.release);
  XT_SET_TEXT(b, Version, t.version);
  XT_SET_TEXT(b, ExternalId, t.external_id);
  XT_SET_TEXT(b, ProjectId, t.project_id);
  XT_SET_TEXT(b, Environment, t.environment);
  XT_SET_TEXT(b, InputJson, t.input_json);
  XT_SET_TEXT(b, OutputJson, t.output_json);
  XT_SET_TEXT(b, MetadataJson, t.metadata_json);
  if (t.tags) {
    auto tags = b.initTags(static_cast<unsigned>(t.tags->size()));
    for (unsigned i = 0; i < t.tags->size(); ++i) tags.set(i, TextOf((*t.tags)[i]));
  }
  XT_SET_OPT(b, Public, t.is_public, Value);
  XT_SET_OPT(b, Bookmarked, t.bookmarked, Value);
  XT_SET_OPT(b, Latency, t.latency, Value);
  XT_SET_OPT(b, TotalCost, t.total_cost, Value);
}

void EncodeObservation(const ObservationEvent& o, cw::Observation::Builder b) {
  b.setId(DataOf(o.id));
  b.setTraceId(DataOf(o.trace_id));
  XT_SET_TEXT(b, Type, o.type);
  XT_SET_TEXT(b, Name, o.name);
  XT_SET_TIME(b, StartTime, o.start_time);
  XT_SET_TIME(b, EndTime, o.end_time);
  XT_SET_TIME(b, CompletionStartTime, o.completion_start_time);
  XT_SET_TEXT(b, Model, o.model);
  XT_SET_TEXT(b, ModelParametersJson, o.model_parameters_json);
  XT_SET_TEXT(b, InputJson, o.input_json);
  XT_SET_TEXT(b, OutputJson, o.output_json);
  XT_SET_TEXT(b, UsageJson, o.usage_json);
  XT_SET_TEXT(b, MetadataJson, o.metadata_json);
  XT_SET_TEXT(b, Level, o.level);
  XT_SET_TEXT(b, StatusMessage, o.status_message);
  if (o.parent_observation_id) b.setParentObservationId(DataOf(*o.parent_observation_id));
  XT_SET_TEXT(b, PromptId, o.prompt_id);
  XT_SET_TEXT(b, PromptName, o.prompt_name);
  XT_SET_TEXT(b, PromptVersion, o.prompt_version);
  XT_SET_TEXT(b, ModelId, o.model_id);
  XT_SET_OPT(b, InputPrice, o.input_price, Value);
  XT_SET_OPT(b, OutputPrice, o.output_price, Value);
  XT_SET_OPT(b, TotalPrice, o.total_price, Value);
  XT_SET_OPT(b, CalculatedInputCost, o.calculated_input_cost, Value);
  XT_SET_OPT(b, CalculatedOutputCost, o.calculated_output_cost, Value);
  XT_SET_OPT(b, CalculatedTotalCost, o.calculated_total_cost, Value);
  XT_SET_OPT(b, Latency, o.latency, Value);
  XT_SET_OPT(b, TimeToFirstToken, o.time_to_first_token, Value);
  XT_SET_OPT(b, CompletionTokens, o.completion_tokens, Value);
  XT_SET_OPT(b, PromptTokens, o.prompt_tokens, Value);
  XT_SET_OPT(b, TotalTokens, o.total_tokens, Value);
  XT_SET_TEXT(b, Unit, o.unit);
  XT_SET_TEXT(b, ProjectId, o.project_id);
  XT_SET_TEXT(b, Environment, o.environment);
}

#undef XT_SET_TEXT
#undef XT_SET_OPT
#undef XT_SET_TIME

// ---- decode helpers ---------------------------------------------------------------------------

// With its size: converting a Text::Reader to std::string implicitly goes through its C string
// and would cut the text at an embedded NUL, which JSON (`\u0000`) can carry.
std::string StringOf(capnp::Text::Reader r) {
  return std::string(r.begin(), r.size());
}

OptString TextOpt(bool has, capnp::Text::Reader r) {
  if (!has) return std::nullopt;
  return StringOf(r);
}

Uuid UuidOf(capnp::Data::Reader d) {
  if (d.size() != 16)
    throw common::ErrorException(Error{ErrorCode::kInternal, "uuid field is not 16 bytes", {}});
  Uuid u;
  std::memcpy(u.bytes.data(), d.begin(), 16);
  return u;
}

#define XT_GET_TEXT(reader, Field) TextOpt(reader.has##Field(), reader.get##Field())
#define XT_GET_OPT(reader, Field, member) \
  (reader.has##Field() ? std::make_optional(reader.get##Field().get##member()) : std::nullopt)
#define XT_GET_TIME(reader, Field)                                                      \
  (reader.has##Field()                                                                  \
       ? std::make_optional(TimePoint(common::Micros(reader.get##Field().getMicros()))) \
       : std::nullopt)

TraceEvent DecodeTrace(cw::Trace::Reader r) {
  TraceEvent t;
  t.id = UuidOf(r.getId());
  t.timestamp = XT_GET_TIME(r, Timestamp);
  t.name = XT_GET_TEXT(r, Name);
  t.user_id = XT_GET_TEXT(r, UserId);
  t.session_id = XT_GET_TEXT(r, SessionId);
  t.release = XT_GET_TEXT(r, Release);
  t.version = XT_GET_TEXT(r, Version);
  t.external_id = XT_GET_TEXT(r, ExternalId);
  t.project_id = XT_GET_TEXT(r, ProjectId);
  t.environment = XT_GET_TEXT(r, Environment);
  t.input_json = XT_GET_TEXT(r, InputJson);
  t.output_json = XT_GET_TEXT(r, OutputJson);
  t.metadata_json = XT_GET_TEXT(r, MetadataJson);
  if (r.hasTags()) {
    std::vector<std::string> tags;
    for (auto tag : r.getTags()) tags.emplace_back(tag.begin(), tag.size());
    t.tags = std::move(tags);
  }
  t.is_public = XT_GET_OPT(r, Public, Value);
  t.bookmarked = XT_GET_OPT(r, Bookmarked, Value);
  t.latency = XT_GET_OPT(r, Latency, Value);
  t.total_cost = XT_GET_OPT(r, TotalCost, Value);
  return t;
}

ObservationEvent DecodeObservation(cw::Observation::Reader r) {
  ObservationEvent o;
  o.id = UuidOf(r.getId());
  o.trace_id = UuidOf(r.getTraceId());
  o.type = XT_GET_TEXT(r, Type);
  o.name = XT_GET_TEXT(r, Name);
  o.start_time = XT_GET_TIME(r, StartTime);
  o.end_time = XT_GET_TIME(r, EndTime);
  o.completion_start_time = XT_GET_TIME(r, CompletionStartTime);
  o.model = XT_GET_TEXT(r, Model);
  o.model_parameters_json = XT_GET_TEXT(r, ModelParametersJson);
  o.input_json = XT_GET_TEXT(r, InputJson);
  o.output_json = XT_GET_TEXT(r, OutputJson);
  o.usage_json = XT_GET_TEXT(r, UsageJson);
  o.metadata_json = XT_GET_TEXT(r, MetadataJson);
  o.level = XT_GET_TEXT(r, Level);
  o.status_message = XT_GET_TEXT(r, StatusMessage);
  if (r.hasParentObservationId()) o.parent_observation_id = UuidOf(r.getParentObservationId());
  o.prompt_id = XT_GET_TEXT(r, PromptId);
  o.prompt_name = XT_GET_TEXT(r, PromptName);
  o.prompt_version = XT_GET_TEXT(r, PromptVersion);
  o.model_id = XT_GET_TEXT(r, ModelId);
  o.input_price = XT_GET_OPT(r, InputPrice, Value);
  o.output_price = XT_GET_OPT(r, OutputPrice, Value);
  o.total_price = XT_GET_OPT(r, TotalPrice, Value);
  o.calculated_input_cost = XT_GET_OPT(r, CalculatedInputCost, Value);
  o.calculated_output_cost = XT_GET_OPT(r, CalculatedOutputCost, Value);
  o.calculated_total_cost = XT_GET_OPT(r, CalculatedTotalCost, Value);
  o.latency = XT_GET_OPT(r, Latency, Value);
  o.time_to_first_token = XT_GET_OPT(r, TimeToFirstToken, Value);
  o.completion_tokens = XT_GET_OPT(r, CompletionTokens, Value);
  o.prompt_tokens = XT_GET_OPT(r, PromptTokens, Value);
  o.total_tokens = XT_GET_OPT(r, TotalTokens, Value);
  o.unit = XT_GET_TEXT(r, Unit);
  o.project_id = XT_GET_TEXT(r, ProjectId);
  o.environment = XT_GET_TEXT(r, Environment);
  return o;
}

#undef XT_GET_TEXT
#undef XT_GET_OPT
#undef XT_GET_TIME

void CheckFormatVersion(uint16_t version) {
  if (version == 0 || version > kFormatVersion) {
    throw common::ErrorException(
        Error{ErrorCode::kInternal,
              "unsupported WAL record format version " + std::to_string(version),
              {}});
  }
}

WalRecord DecodeRoot(cw::WalRecord::Reader r) {
  WalRecord rec;
  rec.format_version = r.getFormatVersion();
  CheckFormatVersion(rec.format_version);
  rec.received_at = TimePoint(common::Micros(r.getReceivedAtMicros()));
  rec.project_id = StringOf(r.getProjectId());
  rec.environment = StringOf(r.getEnvironment());
  auto events = r.getEvents();
  if (events.isBatch()) {
    if (r.getSource() != cw::Source::XTRACE_BATCH) {
      throw common::ErrorException(
          Error{ErrorCode::kInternal, "source does not match the trace batch payload", {}});
    }
    TraceBatch batch;
    auto b = events.getBatch();
    if (b.hasTrace()) batch.trace = DecodeTrace(b.getTrace());
    for (auto o : b.getObservations()) batch.observations.push_back(DecodeObservation(o));
    rec.events = std::move(batch);
  } else {
    if (r.getSource() != cw::Source::METRICS_BATCH) {
      throw common::ErrorException(
          Error{ErrorCode::kInternal, "source does not match the metrics payload", {}});
    }
    MetricBatch metrics;
    for (auto p : events.getMetrics()) {
      MetricPoint point;
      point.name = StringOf(p.getName());
      for (auto l : p.getLabels()) {
        point.labels.emplace_back(StringOf(l.getKey()), StringOf(l.getValue()));
      }
      point.value = p.getValue();
      point.timestamp = TimePoint(common::Micros(p.getTimestampMicros()));
      metrics.points.push_back(std::move(point));
    }
    rec.events = std::move(metrics);
  }
  return rec;
}

}  // namespace

std::string EncodeRecord(const WalRecord& record) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<cw::WalRecord>();
  root.setFormatVersion(kFormatVersion);
  root.setReceivedAtMicros(record.received_at.time_since_epoch().count());
  root.setProjectId(TextOf(record.project_id));
  root.setEnvironment(TextOf(record.environment));
  if (const auto* batch = std::get_if<TraceBatch>(&record.events)) {
    root.setSource(cw::Source::XTRACE_BATCH);
    auto b = root.getEvents().initBatch();
    if (batch->trace) EncodeTrace(*batch->trace, b.initTrace());
    auto list = b.initObservations(static_cast<unsigned>(batch->observations.size()));
    for (unsigned i = 0; i < batch->observations.size(); ++i) {
      EncodeObservation(batch->observations[i], list[i]);
    }
  } else {
    const auto& metrics = std::get<MetricBatch>(record.events);
    root.setSource(cw::Source::METRICS_BATCH);
    auto list = root.getEvents().initMetrics(static_cast<unsigned>(metrics.points.size()));
    for (unsigned i = 0; i < metrics.points.size(); ++i) {
      const auto& p = metrics.points[i];
      auto pb = list[i];
      pb.setName(TextOf(p.name));
      auto labels = pb.initLabels(static_cast<unsigned>(p.labels.size()));
      for (unsigned j = 0; j < p.labels.size(); ++j) {
        labels[j].setKey(TextOf(p.labels[j].first));
        labels[j].setValue(TextOf(p.labels[j].second));
      }
      pb.setValue(p.value);
      pb.setTimestampMicros(p.timestamp.time_since_epoch().count());
    }
  }
  const auto words = capnp::messageToFlatArray(message);
  const auto bytes = words.asChars();
  return std::string(bytes.begin(), bytes.size());
}

namespace {

// Runs read(root) over the record's words, mapping Cap'n Proto's exceptions and ours to errors.
template <typename T, typename Read>
common::Result<T> ReadRoot(std::string_view bytes, Read read) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Error{ErrorCode::kInternal,
                 "WAL record of " + std::to_string(bytes.size()) + " bytes is not whole words",
                 {}};
  }
  // Cap'n Proto reads words in place and insists on 8-byte alignment.
  std::unique_ptr<capnp::word[]> aligned;
  const capnp::word* words = reinterpret_cast<const capnp::word*>(bytes.data());
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) != 0) {
    aligned = std::make_unique<capnp::word[]>(bytes.size() / sizeof(capnp::word));
    std::memcpy(aligned.get(), bytes.data(), bytes.size());
    words = aligned.get();
  }
  const size_t word_count = bytes.size() / sizeof(capnp::word);
  // Our encoder writes every object once, so reading a record of ours visits each word at most
  // once. Allowing more (Cap'n Proto's default is 8 Mi words whatever the size) would let a small
  // damaged record decode as millions of points, through shared pointers or lists of empty
  // structs, which Cap'n Proto counts at one word each against this limit.
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * word_count + 64;
  try {
    capnp::FlatArrayMessageReader reader(kj::ArrayPtr<const capnp::word>(words, word_count),
                                         options);
    return read(reader.getRoot<cw::WalRecord>());
  } catch (const kj::Exception& e) {
    return Error{
        ErrorCode::kInternal, std::string("corrupt WAL record: ") + e.getDescription().cStr(), {}};
  } catch (const common::ErrorException& e) {
    return e.error();
  }
}

}  // namespace

common::Result<WalRecord> DecodeRecord(std::string_view bytes) {
  return ReadRoot<WalRecord>(bytes, [](cw::WalRecord::Reader r) { return DecodeRoot(r); });
}

common::Result<RecordKind> PeekRecordKind(std::string_view bytes) {
  return ReadRoot<RecordKind>(bytes, [](cw::WalRecord::Reader r) {
    CheckFormatVersion(r.getFormatVersion());
    return r.getEvents().isBatch() ? RecordKind::kTraceBatch : RecordKind::kMetricBatch;
  });
}

}  // namespace xtrace::schema

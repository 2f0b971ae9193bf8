#include "schema/codec.hpp"

#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cctype>
#include <cstring>
#include <memory>

#include "common/uuid.hpp"
#include "schema/wal.capnp.h"

namespace xtrace::schema {
namespace {

namespace cw = capnp_wal;
using common::Error;
using common::ErrorCode;

[[noreturn]] void Corrupt(std::string why) {
  throw common::ErrorException(Error{ErrorCode::kInternal, std::move(why), {}});
}

// The ordinal of the field whose generated accessors are named `accessor` ("UserId" for
// userId), read from the compiled-in schema once per call site (see XT_ORDINAL).
template <class Struct>
uint16_t OrdinalOf(std::string_view accessor) {
  std::string name(accessor);
  name[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[0])));
  return capnp::Schema::from<Struct>()
      .getFieldByName(kj::StringPtr(name.c_str()))
      .getProto()
      .getOrdinal()
      .getExplicit();
}
#define XT_ORDINAL(Struct, F)                              \
  [] {                                                     \
    static const uint16_t ordinal = OrdinalOf<Struct>(#F); \
    return ordinal;                                        \
  }()

// ---- encode helpers ---------------------------------------------------------------------------

capnp::Text::Reader TextOf(const std::string& s) {
  return {s.data(), s.size()};
}

// Collects the ordinals of a struct's explicitly null fields, written into its `nulls` list.
class Nulls {
 public:
  void Add(uint16_t ordinal) { ordinals_.push_back(ordinal); }
  template <class Builder>
  void WriteTo(Builder b) const {
    if (ordinals_.empty()) return;
    auto list = b.initNulls(static_cast<unsigned>(ordinals_.size()));
    for (unsigned i = 0; i < ordinals_.size(); ++i) list.set(i, ordinals_[i]);
  }

 private:
  std::vector<uint16_t> ordinals_;
};

// Each writes a Field: the value when it has one, its ordinal in `nulls` when it is null,
// nothing when it is absent. `S` is the Cap'n Proto struct being built.
#define XT_PUT(S, b, F, f, ...)    \
  do {                             \
    if ((f).has_value()) {         \
      __VA_ARGS__;                 \
    } else if ((f).is_null()) {    \
      nulls.Add(XT_ORDINAL(S, F)); \
    }                              \
  } while (false)
#define XT_PUT_TEXT(S, b, F, f) XT_PUT(S, b, F, f, b.set##F(TextOf(*(f))))
#define XT_PUT_OPT(S, b, F, f) XT_PUT(S, b, F, f, b.init##F().setValue(*(f)))
#define XT_PUT_TIME(S, b, F, f) \
  XT_PUT(S, b, F, f, b.init##F().setMicros((f)->time_since_epoch().count()))

void EncodeTrace(const TraceEvent& t, cw::Trace::Builder b) {
  using S = cw::Trace;
  Nulls nulls;
  b.setKey(TextOf(t.id));
  XT_PUT_TIME(S, b, Timestamp, t.timestamp);
  XT_PUT_TEXT(S, b, Name, t.name);
  XT_PUT_TEXT(S, b, UserId, t.user_id);
  XT_PUT_TEXT(S, b, SessionId, t.session_id);
  XT_PUT_TEXT(S, b, Release, t.release);
  XT_PUT_TEXT(S, b, Version, t.version);
  XT_PUT_TEXT(S, b, ExternalId, t.external_id);
  XT_PUT_TEXT(S, b, ProjectId, t.project_id);
  XT_PUT_TEXT(S, b, Environment, t.environment);
  XT_PUT_TEXT(S, b, InputJson, t.input_json);
  XT_PUT_TEXT(S, b, OutputJson, t.output_json);
  XT_PUT_TEXT(S, b, MetadataJson, t.metadata_json);
  XT_PUT(S, b, Tags, t.tags, {
    auto tags = b.initTags(static_cast<unsigned>(t.tags->size()));
    for (unsigned i = 0; i < t.tags->size(); ++i) tags.set(i, TextOf((*t.tags)[i]));
  });
  XT_PUT_OPT(S, b, Public, t.is_public);
  XT_PUT_OPT(S, b, Bookmarked, t.bookmarked);
  XT_PUT_OPT(S, b, Latency, t.latency);
  XT_PUT_OPT(S, b, TotalCost, t.total_cost);
  nulls.WriteTo(b);
}

void EncodeObservation(const ObservationEvent& o, cw::Observation::Builder b) {
  using S = cw::Observation;
  Nulls nulls;
  b.setKey(TextOf(o.id));
  b.setTraceKey(TextOf(o.trace_id));
  XT_PUT_TEXT(S, b, Type, o.type);
  XT_PUT_TEXT(S, b, Name, o.name);
  XT_PUT_TIME(S, b, StartTime, o.start_time);
  XT_PUT_TIME(S, b, EndTime, o.end_time);
  XT_PUT_TIME(S, b, CompletionStartTime, o.completion_start_time);
  XT_PUT_TEXT(S, b, Model, o.model);
  XT_PUT_TEXT(S, b, ModelParametersJson, o.model_parameters_json);
  XT_PUT_TEXT(S, b, InputJson, o.input_json);
  XT_PUT_TEXT(S, b, OutputJson, o.output_json);
  XT_PUT_TEXT(S, b, UsageJson, o.usage_json);
  XT_PUT_TEXT(S, b, MetadataJson, o.metadata_json);
  XT_PUT_TEXT(S, b, Level, o.level);
  XT_PUT_TEXT(S, b, StatusMessage, o.status_message);
  XT_PUT_TEXT(S, b, ParentKey, o.parent_observation_id);
  XT_PUT_TEXT(S, b, PromptId, o.prompt_id);
  XT_PUT_TEXT(S, b, PromptName, o.prompt_name);
  XT_PUT_TEXT(S, b, PromptVersion, o.prompt_version);
  XT_PUT_TEXT(S, b, ModelId, o.model_id);
  XT_PUT_OPT(S, b, InputPrice, o.input_price);
  XT_PUT_OPT(S, b, OutputPrice, o.output_price);
  XT_PUT_OPT(S, b, TotalPrice, o.total_price);
  XT_PUT_OPT(S, b, CalculatedInputCost, o.calculated_input_cost);
  XT_PUT_OPT(S, b, CalculatedOutputCost, o.calculated_output_cost);
  XT_PUT_OPT(S, b, CalculatedTotalCost, o.calculated_total_cost);
  XT_PUT_OPT(S, b, Latency, o.latency);
  XT_PUT_OPT(S, b, TimeToFirstToken, o.time_to_first_token);
  XT_PUT_OPT(S, b, CompletionTokens, o.completion_tokens);
  XT_PUT_OPT(S, b, PromptTokens, o.prompt_tokens);
  XT_PUT_OPT(S, b, TotalTokens, o.total_tokens);
  XT_PUT_TEXT(S, b, Unit, o.unit);
  XT_PUT_TEXT(S, b, ProjectId, o.project_id);
  XT_PUT_TEXT(S, b, Environment, o.environment);
  nulls.WriteTo(b);
}

cw::ScoreDataType DataTypeOf(ScoreDataType t) {
  switch (t) {
    case ScoreDataType::kNumeric: return cw::ScoreDataType::NUMERIC;
    case ScoreDataType::kCategorical: return cw::ScoreDataType::CATEGORICAL;
    case ScoreDataType::kBoolean: return cw::ScoreDataType::BOOLEAN;
  }
  return cw::ScoreDataType::NUMERIC;
}

void EncodeScore(const ScoreEvent& s, cw::Score::Builder b) {
  using S = cw::Score;
  Nulls nulls;
  b.setKey(TextOf(s.id));
  XT_PUT_TIME(S, b, Timestamp, s.timestamp);
  XT_PUT_TEXT(S, b, TraceKey, s.trace_id);
  XT_PUT_TEXT(S, b, ObservationKey, s.observation_id);
  XT_PUT_TEXT(S, b, SessionId, s.session_id);
  XT_PUT_TEXT(S, b, Name, s.name);
  XT_PUT(S, b, DataType, s.data_type, b.initDataType().setValue(DataTypeOf(*s.data_type)));
  XT_PUT_OPT(S, b, Value, s.value);
  XT_PUT_TEXT(S, b, StringValue, s.string_value);
  XT_PUT_TEXT(S, b, Comment, s.comment);
  XT_PUT_TEXT(S, b, Source, s.source);
  XT_PUT_TEXT(S, b, ConfigId, s.config_id);
  XT_PUT_TEXT(S, b, MetadataJson, s.metadata_json);
  XT_PUT_TEXT(S, b, ProjectId, s.project_id);
  XT_PUT_TEXT(S, b, Environment, s.environment);
  nulls.WriteTo(b);
}

cw::Deletion::Entity EntityOf(DeletionEvent::Entity e) {
  switch (e) {
    case DeletionEvent::Entity::kTrace: return cw::Deletion::Entity::TRACE;
    case DeletionEvent::Entity::kObservation: return cw::Deletion::Entity::OBSERVATION;
    case DeletionEvent::Entity::kScore: return cw::Deletion::Entity::SCORE;
  }
  return cw::Deletion::Entity::TRACE;
}

void EncodeDeletion(const DeletionEvent& d, cw::Deletion::Builder b) {
  b.setEntity(EntityOf(d.entity));
  b.setKey(TextOf(d.id));
  if (d.project_id) b.setProjectId(TextOf(*d.project_id));
}

void EncodeEvent(const EntityEvent& event, cw::Event::Builder b) {
  std::visit(
      [&](const auto& e) {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, TraceEvent>) EncodeTrace(e, b.initTrace());
        if constexpr (std::is_same_v<E, ObservationEvent>) {
          EncodeObservation(e, b.initObservation());
        }
        if constexpr (std::is_same_v<E, ScoreEvent>) EncodeScore(e, b.initScore());
        if constexpr (std::is_same_v<E, DeletionEvent>) EncodeDeletion(e, b.initDeletion());
      },
      event);
}

#undef XT_PUT
#undef XT_PUT_TEXT
#undef XT_PUT_OPT
#undef XT_PUT_TIME

// ---- decode helpers ---------------------------------------------------------------------------

// With its size: converting a Text::Reader to std::string implicitly goes through its C string
// and would cut the text at an embedded NUL, which JSON (`\u0000`) can carry.
std::string StringOf(capnp::Text::Reader r) {
  return std::string(r.begin(), r.size());
}

// Format 1 ids: 16 bytes, read as the canonical text the xtrace route renders.
std::string UuidTextOf(capnp::Data::Reader d) {
  if (d.size() != 16) Corrupt("uuid field is not 16 bytes");
  common::Uuid u;
  std::memcpy(u.bytes.data(), d.begin(), 16);
  return u.ToString();
}

// Format 2 ids: Text, as the front door validated them.
std::string KeyOf(bool has, capnp::Text::Reader r, const char* what) {
  if (!has || r.size() == 0 || r.size() > kMaxIdBytes) {
    Corrupt(std::string(what) + " is missing or longer than " + std::to_string(kMaxIdBytes));
  }
  return StringOf(r);
}

// The ordinals a struct lists as explicitly null.
class NullSet {
 public:
  explicit NullSet(capnp::List<uint16_t>::Reader list) : list_(list) {}
  bool Contains(uint16_t ordinal) const {
    for (auto o : list_) {
      if (o == ordinal) return true;
    }
    return false;
  }

 private:
  capnp::List<uint16_t>::Reader list_;
};

// Each reads a Field: a value when the field is set, null when its ordinal is listed.
#define XT_GET(S, r, F, T, ...)                                       \
  (r.has##F()                         ? schema::Field<T>(__VA_ARGS__) \
   : nulls.Contains(XT_ORDINAL(S, F)) ? schema::Field<T>::Null()      \
                                      : schema::Field<T>())
#define XT_GET_TEXT(S, r, F) XT_GET(S, r, F, std::string, StringOf(r.get##F()))
#define XT_GET_OPT(S, r, F, T) XT_GET(S, r, F, T, r.get##F().getValue())
#define XT_GET_TIME(S, r, F) \
  XT_GET(S, r, F, TimePoint, TimePoint(common::Micros(r.get##F().getMicros())))

TraceEvent DecodeTrace(cw::Trace::Reader r) {
  using S = cw::Trace;
  const NullSet nulls(r.getNulls());
  TraceEvent t;
  t.id =
      r.hasObsoleteId() ? UuidTextOf(r.getObsoleteId()) : KeyOf(r.hasKey(), r.getKey(), "trace id");
  t.timestamp = XT_GET_TIME(S, r, Timestamp);
  t.name = XT_GET_TEXT(S, r, Name);
  t.user_id = XT_GET_TEXT(S, r, UserId);
  t.session_id = XT_GET_TEXT(S, r, SessionId);
  t.release = XT_GET_TEXT(S, r, Release);
  t.version = XT_GET_TEXT(S, r, Version);
  t.external_id = XT_GET_TEXT(S, r, ExternalId);
  t.project_id = XT_GET_TEXT(S, r, ProjectId);
  t.environment = XT_GET_TEXT(S, r, Environment);
  t.input_json = XT_GET_TEXT(S, r, InputJson);
  t.output_json = XT_GET_TEXT(S, r, OutputJson);
  t.metadata_json = XT_GET_TEXT(S, r, MetadataJson);
  t.tags = XT_GET(S, r, Tags, std::vector<std::string>, [&] {
    std::vector<std::string> tags;
    for (auto tag : r.getTags()) tags.push_back(StringOf(tag));
    return tags;
  }());
  t.is_public = XT_GET_OPT(S, r, Public, bool);
  t.bookmarked = XT_GET_OPT(S, r, Bookmarked, bool);
  t.latency = XT_GET_OPT(S, r, Latency, double);
  t.total_cost = XT_GET_OPT(S, r, TotalCost, double);
  return t;
}

ObservationEvent DecodeObservation(cw::Observation::Reader r) {
  using S = cw::Observation;
  const NullSet nulls(r.getNulls());
  ObservationEvent o;
  if (r.hasObsoleteId()) {  // format 1
    o.id = UuidTextOf(r.getObsoleteId());
    o.trace_id = UuidTextOf(r.getObsoleteTraceId());
    if (r.hasObsoleteParentObservationId()) {
      o.parent_observation_id = UuidTextOf(r.getObsoleteParentObservationId());
    }
  } else {
    o.id = KeyOf(r.hasKey(), r.getKey(), "observation id");
    o.trace_id = KeyOf(r.hasTraceKey(), r.getTraceKey(), "observation trace id");
    o.parent_observation_id = XT_GET_TEXT(S, r, ParentKey);
  }
  o.type = XT_GET_TEXT(S, r, Type);
  o.name = XT_GET_TEXT(S, r, Name);
  o.start_time = XT_GET_TIME(S, r, StartTime);
  o.end_time = XT_GET_TIME(S, r, EndTime);
  o.completion_start_time = XT_GET_TIME(S, r, CompletionStartTime);
  o.model = XT_GET_TEXT(S, r, Model);
  o.model_parameters_json = XT_GET_TEXT(S, r, ModelParametersJson);
  o.input_json = XT_GET_TEXT(S, r, InputJson);
  o.output_json = XT_GET_TEXT(S, r, OutputJson);
  o.usage_json = XT_GET_TEXT(S, r, UsageJson);
  o.metadata_json = XT_GET_TEXT(S, r, MetadataJson);
  o.level = XT_GET_TEXT(S, r, Level);
  o.status_message = XT_GET_TEXT(S, r, StatusMessage);
  o.prompt_id = XT_GET_TEXT(S, r, PromptId);
  o.prompt_name = XT_GET_TEXT(S, r, PromptName);
  o.prompt_version = XT_GET_TEXT(S, r, PromptVersion);
  o.model_id = XT_GET_TEXT(S, r, ModelId);
  o.input_price = XT_GET_OPT(S, r, InputPrice, double);
  o.output_price = XT_GET_OPT(S, r, OutputPrice, double);
  o.total_price = XT_GET_OPT(S, r, TotalPrice, double);
  o.calculated_input_cost = XT_GET_OPT(S, r, CalculatedInputCost, double);
  o.calculated_output_cost = XT_GET_OPT(S, r, CalculatedOutputCost, double);
  o.calculated_total_cost = XT_GET_OPT(S, r, CalculatedTotalCost, double);
  o.latency = XT_GET_OPT(S, r, Latency, double);
  o.time_to_first_token = XT_GET_OPT(S, r, TimeToFirstToken, double);
  o.completion_tokens = XT_GET_OPT(S, r, CompletionTokens, int64_t);
  o.prompt_tokens = XT_GET_OPT(S, r, PromptTokens, int64_t);
  o.total_tokens = XT_GET_OPT(S, r, TotalTokens, int64_t);
  o.unit = XT_GET_TEXT(S, r, Unit);
  o.project_id = XT_GET_TEXT(S, r, ProjectId);
  o.environment = XT_GET_TEXT(S, r, Environment);
  return o;
}

ScoreDataType DataTypeOf(cw::ScoreDataType t) {
  switch (t) {
    case cw::ScoreDataType::NUMERIC: return ScoreDataType::kNumeric;
    case cw::ScoreDataType::CATEGORICAL: return ScoreDataType::kCategorical;
    case cw::ScoreDataType::BOOLEAN: return ScoreDataType::kBoolean;
  }
  Corrupt("unknown score data type " + std::to_string(static_cast<int>(t)));
}

ScoreEvent DecodeScore(cw::Score::Reader r) {
  using S = cw::Score;
  const NullSet nulls(r.getNulls());
  ScoreEvent s;
  s.id = KeyOf(r.hasKey(), r.getKey(), "score id");
  s.timestamp = XT_GET_TIME(S, r, Timestamp);
  s.trace_id = XT_GET_TEXT(S, r, TraceKey);
  s.observation_id = XT_GET_TEXT(S, r, ObservationKey);
  s.session_id = XT_GET_TEXT(S, r, SessionId);
  s.name = XT_GET_TEXT(S, r, Name);
  s.data_type = XT_GET(S, r, DataType, ScoreDataType, DataTypeOf(r.getDataType().getValue()));
  s.value = XT_GET_OPT(S, r, Value, double);
  s.string_value = XT_GET_TEXT(S, r, StringValue);
  s.comment = XT_GET_TEXT(S, r, Comment);
  s.source = XT_GET_TEXT(S, r, Source);
  s.config_id = XT_GET_TEXT(S, r, ConfigId);
  s.metadata_json = XT_GET_TEXT(S, r, MetadataJson);
  s.project_id = XT_GET_TEXT(S, r, ProjectId);
  s.environment = XT_GET_TEXT(S, r, Environment);
  return s;
}

DeletionEvent DecodeDeletion(cw::Deletion::Reader r) {
  DeletionEvent d;
  switch (r.getEntity()) {
    case cw::Deletion::Entity::TRACE: d.entity = DeletionEvent::Entity::kTrace; break;
    case cw::Deletion::Entity::OBSERVATION: d.entity = DeletionEvent::Entity::kObservation; break;
    case cw::Deletion::Entity::SCORE: d.entity = DeletionEvent::Entity::kScore; break;
    default: Corrupt("unknown deleted entity " + std::to_string(static_cast<int>(r.getEntity())));
  }
  d.id = KeyOf(r.hasKey(), r.getKey(), "deleted id");
  if (r.hasProjectId()) d.project_id = StringOf(r.getProjectId());
  return d;
}

EntityEvent DecodeEvent(cw::Event::Reader r) {
  switch (r.which()) {
    case cw::Event::TRACE: return DecodeTrace(r.getTrace());
    case cw::Event::OBSERVATION: return DecodeObservation(r.getObservation());
    case cw::Event::SCORE: return DecodeScore(r.getScore());
    case cw::Event::DELETION: return DecodeDeletion(r.getDeletion());
  }
  Corrupt("unknown event kind " + std::to_string(static_cast<int>(r.which())));
}

#undef XT_GET
#undef XT_GET_TEXT
#undef XT_GET_OPT
#undef XT_GET_TIME

void CheckFormatVersion(uint16_t version) {
  if (version == 0 || version > kFormatVersion) {
    Corrupt("unsupported WAL record format version " + std::to_string(version));
  }
}

Source SourceOf(cw::Source s) {
  switch (s) {
    case cw::Source::XTRACE_BATCH: return Source::kXtraceBatch;
    case cw::Source::METRICS_BATCH: return Source::kMetricsBatch;
    case cw::Source::LANGFUSE: return Source::kLangfuse;
    case cw::Source::OTLP_TRACES: return Source::kOtlpTraces;
    case cw::Source::OTLP_METRICS: return Source::kOtlpMetrics;
  }
  Corrupt("unknown record source " + std::to_string(static_cast<int>(s)));
}

cw::Source SourceOf(Source s) {
  switch (s) {
    case Source::kXtraceBatch: return cw::Source::XTRACE_BATCH;
    case Source::kMetricsBatch: return cw::Source::METRICS_BATCH;
    case Source::kLangfuse: return cw::Source::LANGFUSE;
    case Source::kOtlpTraces: return cw::Source::OTLP_TRACES;
    case Source::kOtlpMetrics: return cw::Source::OTLP_METRICS;
  }
  return cw::Source::XTRACE_BATCH;
}

bool IsMetricSource(Source s) {
  return s == Source::kMetricsBatch || s == Source::kOtlpMetrics;
}

// The kind of the record's events, checked against its source.
RecordKind KindOf(cw::WalRecord::Reader r) {
  const Source source = SourceOf(r.getSource());
  const auto events = r.getEvents();
  switch (events.which()) {
    case cw::WalRecord::Events::BATCH:
      if (source != Source::kXtraceBatch) Corrupt("source does not match the trace batch payload");
      return RecordKind::kEntities;
    case cw::WalRecord::Events::ENTITIES:
      if (IsMetricSource(source)) Corrupt("source does not match the entity events");
      return RecordKind::kEntities;
    case cw::WalRecord::Events::METRICS:
      if (!IsMetricSource(source)) Corrupt("source does not match the metrics payload");
      return RecordKind::kMetrics;
  }
  Corrupt("unknown record payload " + std::to_string(static_cast<int>(events.which())));
}

WalRecord DecodeRoot(cw::WalRecord::Reader r) {
  WalRecord rec;
  rec.format_version = r.getFormatVersion();
  CheckFormatVersion(rec.format_version);
  rec.received_at = TimePoint(common::Micros(r.getReceivedAtMicros()));
  rec.project_id = StringOf(r.getProjectId());
  rec.environment = StringOf(r.getEnvironment());
  rec.source = SourceOf(r.getSource());
  const RecordKind kind = KindOf(r);
  auto events = r.getEvents();
  if (kind == RecordKind::kMetrics) {
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
    return rec;
  }
  EntityBatch batch;
  if (events.isBatch()) {  // format 1: the trace, then the observations
    auto b = events.getBatch();
    if (b.hasTrace()) batch.events.emplace_back(DecodeTrace(b.getTrace()));
    for (auto o : b.getObservations()) batch.events.emplace_back(DecodeObservation(o));
  } else {
    for (auto e : events.getEntities()) batch.events.push_back(DecodeEvent(e));
  }
  rec.events = std::move(batch);
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
  root.setSource(SourceOf(record.source));
  if (const auto* batch = std::get_if<EntityBatch>(&record.events)) {
    auto list = root.getEvents().initEntities(static_cast<unsigned>(batch->events.size()));
    for (unsigned i = 0; i < batch->events.size(); ++i) EncodeEvent(batch->events[i], list[i]);
  } else {
    const auto& metrics = std::get<MetricBatch>(record.events);
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
    return KindOf(r);
  });
}

}  // namespace xtrace::schema

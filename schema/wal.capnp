# The WAL record: one accepted ingest request, normalized, as stored in the RocksDB log.
#
#   RocksDB key   : 8 bytes, big-endian uint64 sequence number (gap-free, assigned by the committer)
#   RocksDB value : one Cap'n Proto message, unpacked, single segment framing
#                   (capnp::messageToFlatArray), root struct WalRecord:
#
#   +---------------+------------------+-----------+-------------+--------+---------------------+
#   | formatVersion | receivedAtMicros | projectId | environment | source | events (union)      |
#   | UInt16        | Int64            | Text      | Text        | enum   | entities | metrics  |
#   |               |                  |           |             |        | (batch: format 1)   |
#   +---------------+------------------+-----------+-------------+--------+---------------------+
#
#   entities: List(Event), in the order the events apply; an Event is one of trace,
#   observation, score (upserts, each carrying only the fields the client mentioned) or deletion.
#   metrics:  List(MetricPoint).
#
# Versions:
#   1  entity records hold `batch` (one optional trace, then observations) with 16-byte UUID ids
#      (`obsoleteId…` fields); nothing was ever explicitly null.
#   2  entity records hold `entities`; ids are Text (`key` fields); explicit nulls are listed.
#   Readers decode both: a format-1 record is a list with the trace first, ids as canonical
#   UUID text.
#
# Presence: a field is absent, explicitly null, or has a value. Absent is an unset pointer field:
# Text/List fields are simply not set, and optional numbers, booleans and times are wrapped in the
# small Opt* structs below, so "absent" and "zero" stay distinct. Explicit null is an unset field
# whose ordinal is listed in the struct's `nulls`. What null means (keep or clear the stored
# value) depends on the record's source (schema::MergeRuleOf).
#
# JSON payloads (input, output, metadata, usage, modelParameters) travel as the compact JSON text
# the ingest front end validated, never re-parsed on the write path.
#
# Evolution rules (the log outlives binaries; the replay tool reads records written by older ones):
#   * fields are append-only: never renumber, retype or reuse an ordinal; mark retired ones
#     `obsolete…` and stop writing them;
#   * a new optional field needs no version bump: old records read it as unset;
#   * bump kFormatVersion (schema/codec.hpp) only when the *meaning* of existing fields changes,
#     and keep decoding every older version;
#   * readers reject records whose formatVersion is newer than they know.
@0xcc6d6150df595e60;

$import "/capnp/c++.capnp".namespace("xtrace::schema::capnp_wal");

struct OptFloat64 { value @0 :Float64; }
struct OptInt64 { value @0 :Int64; }
struct OptBool { value @0 :Bool; }
struct OptTime { micros @0 :Int64; }  # microseconds since the Unix epoch, UTC

enum Source {
  xtraceBatch @0;   # POST /v1/l/batch
  metricsBatch @1;  # POST /v1/metrics/batch
  langfuse @2;      # the Langfuse public API
  otlpTraces @3;    # OTLP/HTTP traces
  otlpMetrics @4;   # OTLP/HTTP metrics
}

struct OptScoreDataType { value @0 :ScoreDataType; }
enum ScoreDataType {
  numeric @0;
  categorical @1;
  boolean @2;
}

struct Trace {
  obsoleteId @0 :Data;  # format 1: 16 bytes
  timestamp @1 :OptTime;
  name @2 :Text;
  userId @3 :Text;
  sessionId @4 :Text;
  release @5 :Text;
  version @6 :Text;
  externalId @7 :Text;
  projectId @8 :Text;    # unset: the record's projectId
  environment @9 :Text;  # unset: the record's environment
  inputJson @10 :Text;
  outputJson @11 :Text;
  metadataJson @12 :Text;
  tags @13 :List(Text);  # unset: not sent
  public @14 :OptBool;
  bookmarked @15 :OptBool;
  latency @16 :OptFloat64;
  totalCost @17 :OptFloat64;
  key @18 :Text;                # the id (format 2)
  nulls @19 :List(UInt16);      # ordinals of the fields sent as explicit null
}

struct Observation {
  obsoleteId @0 :Data;       # format 1
  obsoleteTraceId @1 :Data;  # format 1
  type @2 :Text;
  name @3 :Text;
  startTime @4 :OptTime;
  endTime @5 :OptTime;
  completionStartTime @6 :OptTime;
  model @7 :Text;
  modelParametersJson @8 :Text;
  inputJson @9 :Text;
  outputJson @10 :Text;
  usageJson @11 :Text;
  metadataJson @12 :Text;
  level @13 :Text;
  statusMessage @14 :Text;
  obsoleteParentObservationId @15 :Data;  # format 1
  promptId @16 :Text;
  promptName @17 :Text;
  promptVersion @18 :Text;
  modelId @19 :Text;
  inputPrice @20 :OptFloat64;
  outputPrice @21 :OptFloat64;
  totalPrice @22 :OptFloat64;
  calculatedInputCost @23 :OptFloat64;
  calculatedOutputCost @24 :OptFloat64;
  calculatedTotalCost @25 :OptFloat64;
  latency @26 :OptFloat64;
  timeToFirstToken @27 :OptFloat64;
  completionTokens @28 :OptInt64;
  promptTokens @29 :OptInt64;
  totalTokens @30 :OptInt64;
  unit @31 :Text;
  projectId @32 :Text;
  environment @33 :Text;
  key @34 :Text;        # format 2: the id
  traceKey @35 :Text;   # format 2: the trace's id
  parentKey @36 :Text;  # format 2: the parent observation's id
  nulls @37 :List(UInt16);
}

struct Score {
  key @0 :Text;
  timestamp @1 :OptTime;
  traceKey @2 :Text;
  observationKey @3 :Text;
  sessionId @4 :Text;
  name @5 :Text;
  dataType @6 :OptScoreDataType;
  value @7 :OptFloat64;
  stringValue @8 :Text;
  comment @9 :Text;
  source @10 :Text;
  configId @11 :Text;
  metadataJson @12 :Text;
  projectId @13 :Text;
  environment @14 :Text;
  nulls @15 :List(UInt16);
}

struct Deletion {
  entity @0 :Entity;
  key @1 :Text;
  projectId @2 :Text;  # unset: the record's projectId
  enum Entity {
    trace @0;
    observation @1;
    score @2;
  }
}

struct Event {
  union {
    trace @0 :Trace;
    observation @1 :Observation;
    score @2 :Score;
    deletion @3 :Deletion;
  }
}

struct Label {
  key @0 :Text;
  value @1 :Text;
}

struct MetricPoint {
  name @0 :Text;
  labels @1 :List(Label);  # sorted by key, unique
  value @2 :Float64;
  timestampMicros @3 :Int64;
}

struct WalRecord {
  formatVersion @0 :UInt16;
  receivedAtMicros @1 :Int64;
  projectId @2 :Text;
  environment @3 :Text;
  source @4 :Source;
  events :union {
    batch :group {  # format 1 only
      trace @5 :Trace;  # unset: the request carried no trace
      observations @6 :List(Observation);
    }
    metrics @7 :List(MetricPoint);
    entities @8 :List(Event);  # format 2
  }
}

# The WAL record: one accepted ingest request, normalized, as stored in the RocksDB log.
#
#   RocksDB key   : 8 bytes, big-endian uint64 sequence number (gap-free, assigned by the committer)
#   RocksDB value : one Cap'n Proto message, unpacked, single segment framing
#                   (capnp::messageToFlatArray), root struct WalRecord:
#
#   +----------------+-------------------+-----------+-------------+--------+-----------------+
#   | formatVersion  | receivedAtMicros  | projectId | environment | source | events (union)  |
#   | UInt16         | Int64             | Text      | Text        | enum   | batch | metrics |
#   +----------------+-------------------+-----------+-------------+--------+-----------------+
#
# Presence: an optional value the client did not send (or sent as null) is an unset pointer
# field: Text/List fields are simply not set, and optional numbers, booleans and times are
# wrapped in the small Opt* structs below, so "absent" and "zero" stay distinct. The projector's
# merge rules depend on that distinction (absent keeps the stored value).
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
}

struct Trace {
  id @0 :Data;  # 16 bytes
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
}

struct Observation {
  id @0 :Data;
  traceId @1 :Data;
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
  parentObservationId @15 :Data;
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
    batch :group {
      trace @5 :Trace;  # unset: the request carried no trace
      observations @6 :List(Observation);
    }
    metrics @7 :List(MetricPoint);
  }
}

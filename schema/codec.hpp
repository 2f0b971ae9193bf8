#pragma once
// Encoding between WalRecord and the Cap'n Proto bytes stored in the WAL (layout: wal.capnp).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "schema/events.hpp"

namespace xtrace::schema {

// The format version written by this build; see the evolution rules in wal.capnp.
inline constexpr uint16_t kFormatVersion = 2;

std::string EncodeRecord(const WalRecord& record);

// Decodes bytes of any alignment (RocksDB values carry no alignment promise; they are copied
// into word-aligned storage when needed). Fails, never throws, on truncated or corrupt input
// and on a format version newer than kFormatVersion. Records of every older format decode into
// today's events (wal.capnp, "Versions").
common::Result<WalRecord> DecodeRecord(std::string_view bytes);

// Which kind of events a record holds, read without decoding them (the projector's streams
// skip the other kind's records this way). Fails as DecodeRecord would on a damaged header or
// a newer format version.
enum class RecordKind { kEntities, kMetrics };
common::Result<RecordKind> PeekRecordKind(std::string_view bytes);

}  // namespace xtrace::schema

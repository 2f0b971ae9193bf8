#pragma once
// A WAL record as one JSON object (for `xtrace-wal dump`): the record header plus its events
// under the ingest API's key names. Absent optional fields are left out.

#include <boost/json/value.hpp>

#include <cstdint>

#include "schema/events.hpp"

namespace xtrace::tools {

boost::json::object RecordToJson(uint64_t seq, const schema::WalRecord& record);

}  // namespace xtrace::tools

#pragma once
// The seam between the ingest front end and the log: ingest only needs "append these bytes and
// tell me when they are durable". wal::Log implements it; unit tests substitute a fake.

#include <cstdint>
#include <functional>
#include <string>

#include "common/error.hpp"

namespace xtrace::wal {

// Called exactly once: with the record's sequence number once the record is durable (on the
// committer thread), or with an error when it was not written (on the committer thread, or at once
// on the calling thread when the append is refused). Must not block.
using AppendCallback = std::function<void(common::Result<uint64_t>)>;

class Appender {
 public:
  virtual ~Appender() = default;
  virtual void Append(std::string record, AppendCallback done) = 0;
};

}  // namespace xtrace::wal

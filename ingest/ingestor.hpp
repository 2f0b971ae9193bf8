#pragma once
// The ingest routes: request → validated WAL record → durable append → acknowledgement.
// The response is produced asynchronously, from the WAL's committer thread, once the record is
// durable; the caller must hand it back to its own I/O context and not block in `respond`.

#include <functional>
#include <string>

#include "common/api.hpp"
#include "common/error.hpp"
#include "ingest/batch.hpp"
#include "schema/events.hpp"
#include "wal/appender.hpp"

namespace xtrace::ingest {

using Respond = std::function<void(common::Result<common::ApiResponse>)>;

class Ingestor {
 public:
  Ingestor(wal::Appender& wal, std::string default_project_id)
      : wal_(wal), default_project_id_(std::move(default_project_id)) {}

  // POST /v1/l/batch. Invalid input answers at once and appends nothing.
  void TraceBatch(const common::ApiRequest& request, Respond respond);
  // POST /v1/metrics/batch. Same contract.
  void MetricBatch(const common::ApiRequest& request, Respond respond);

 private:
  using Parser = common::Result<schema::WalRecord> (*)(std::string_view, const IngestContext&);
  void Submit(const common::ApiRequest& request, Parser parse, Respond respond);

  wal::Appender& wal_;
  const std::string default_project_id_;
};

}  // namespace xtrace::ingest

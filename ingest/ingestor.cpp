#include "ingest/ingestor.hpp"

#include "ingest/batch.hpp"
#include "schema/codec.hpp"

namespace xtrace::ingest {
namespace {

const char kAccepted[] = R"({"message":"Request Successful."})";

}  // namespace

void Ingestor::TraceBatch(const common::ApiRequest& request, Respond respond) {
  if (!IsJsonContentType(request.content_type)) {
    respond(common::Error{
        common::ErrorCode::kUnsupportedMediaType, "expected Content-Type: application/json", {}});
    return;
  }
  IngestContext ctx;
  ctx.project_id = default_project_id_;
  ctx.received_at = common::Now();
  auto record = ParseTraceBatch(request.body, ctx);
  if (!record) {
    respond(record.error());
    return;
  }
  // `{}` is valid and changes nothing: acknowledge it without spending an fsync on it.
  const auto& batch = std::get<schema::TraceBatch>(record->events);
  if (!batch.trace && batch.observations.empty()) {
    respond(common::ApiResponse::Json(kAccepted));
    return;
  }
  wal_.Append(schema::EncodeRecord(*record),
              [respond = std::move(respond)](common::Result<uint64_t> seq) {
                if (!seq) {
                  respond(seq.error());
                } else {
                  respond(common::ApiResponse::Json(kAccepted));
                }
              });
}

}  // namespace xtrace::ingest

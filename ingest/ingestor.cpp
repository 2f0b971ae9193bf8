#include "ingest/ingestor.hpp"

#include "ingest/batch.hpp"
#include "ingest/metrics.hpp"
#include "schema/codec.hpp"

namespace xtrace::ingest {
namespace {

const char kAccepted[] = R"({"message":"Request Successful."})";

}  // namespace

void Ingestor::TraceBatch(const common::ApiRequest& request, Respond respond) {
  Submit(request, &ParseTraceBatch, std::move(respond));
}

void Ingestor::MetricBatch(const common::ApiRequest& request, Respond respond) {
  Submit(request, &ParseMetricBatch, std::move(respond));
}

void Ingestor::Submit(const common::ApiRequest& request, Parser parse, Respond respond) {
  if (!IsJsonContentType(request.content_type)) {
    respond(common::Error{
        common::ErrorCode::kUnsupportedMediaType, "expected Content-Type: application/json", {}});
    return;
  }
  IngestContext ctx;
  ctx.project_id = default_project_id_;
  ctx.received_at = common::Now();
  auto record = parse(request.body, ctx);
  if (!record) {
    respond(record.error());
    return;
  }
  // A batch that carries nothing changes nothing: acknowledge it without spending an fsync.
  const bool empty = std::visit(
      [](const auto& events) {
        if constexpr (std::is_same_v<std::decay_t<decltype(events)>, schema::EntityBatch>) {
          return events.events.empty();
        } else {
          return events.points.empty();
        }
      },
      record->events);
  if (empty) {
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

#include "projector/projector.hpp"

#include <spdlog/spdlog.h>

#include "projector/cursor.hpp"
#include "projector/pg_sink.hpp"

namespace xtrace::projector {

Projector::Projector(wal::Log& log, Options options) : log_(log), source_(log) {
  for (const Stream stream : kStreams) {
    PgSinkOptions sink;
    sink.database_url = options.database_url;
    sink.session = options.session;
    streams_.push_back(std::make_unique<StreamProjector>(
        source_, stream,
        std::make_unique<PgSink>(log.id(), stream,
                                 std::make_unique<TableCursor>(log.id(), StreamName(stream)),
                                 std::move(sink)),
        options, [this] { Publish(); }));
  }
}

Projector::~Projector() {
  Stop();
}

void Projector::Start() {
  for (auto& s : streams_) s->Start();
}

void Projector::Stop(pg::Clock::time_point abandon_at) {
  // Every stream is told first, then joined: their waits on PostgreSQL overlap, not add up.
  for (auto& s : streams_) s->RequestStop(abandon_at);
  for (auto& s : streams_) s->Stop();
}

void Projector::Publish() {
  std::lock_guard lock(publish_mu_);
  uint64_t least = UINT64_MAX, furthest = 0;
  for (const auto& s : streams_) {
    // Until every stream has read its stored cursor, the WAL keeps what the server told it at
    // start (a stream not yet connected would otherwise count as having projected nothing).
    if (!s->loaded()) return;
    const uint64_t seq = s->projected_seq();
    least = std::min(least, seq);
    furthest = std::max(furthest, seq);
  }
  log_.SetProjected(least, furthest);  // lets the WAL trim and shrink its backlog
}

Status Projector::status() const {
  Status st;
  st.projected_seq = UINT64_MAX;
  st.database_up = true;
  for (size_t i = 0; i < streams_.size(); ++i) {
    const auto& s = *streams_[i];
    const uint64_t seq = s.projected_seq();
    st.projected_seq = std::min(st.projected_seq, seq);
    st.database_up = st.database_up && s.database_up();
    st.quarantined_records += s.quarantined();
    st.streams.push_back({StreamName(kStreams[i]), seq, s.quarantined(), s.halted(), s.attempts()});
  }
  return st;
}

StreamProjector::StreamProjector(const Source& source, Stream stream, std::unique_ptr<Sink> sink,
                                 Options options, std::function<void()> moved)
    : source_(source),
      sink_(std::move(sink)),
      options_(std::move(options)),
      moved_(std::move(moved)),
      loop_(source, stream, *sink_, {options_.chunk_records, options_.chunk_bytes},
            [this](uint64_t position) {
              projected_seq_ = position;
              quarantined_ = loop_.quarantined();
              if (moved_) moved_();
            }) {}

StreamProjector::~StreamProjector() {
  Stop();
}

void StreamProjector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void StreamProjector::RequestStop(pg::Clock::time_point abandon_at) {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  sink_->AbandonAt(abandon_at);
  cv_.notify_all();
}

void StreamProjector::Stop() {
  RequestStop(pg::Clock::time_point::max());
  if (thread_.joinable()) thread_.join();
}

void StreamProjector::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_; });
}

void StreamProjector::Run() {
  auto backoff = options_.min_backoff;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    attempts_++;  // observable progress for tests (StreamStatus::attempts)
    try {
      if (!loop_.IsOpen() && !Connect()) {
        SleepFor(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      const bool idle = !loop_.Step();
      SetHalted({});
      if (idle) {
        loop_.StoreCursor();  // the stored cursor catches up with records moved over in memory
        source_.WaitBeyond(loop_.position(), std::chrono::milliseconds(200));
      }
      backoff = options_.min_backoff;
    } catch (const CursorFenced& e) {
      spdlog::warn("projector[{}]: {}; reloading", loop_.name(), e.what());
      loop_.Close();
    } catch (const Halted& e) {
      // Not PostgreSQL's fault: the connection stays, and status says why the stream stopped.
      if (SetHalted(e.what())) spdlog::error("projector[{}]: {}", loop_.name(), e.what());
      loop_.DropPrefetch();
      SleepFor(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    } catch (const std::exception& e) {
      spdlog::warn("projector[{}]: {} (retrying in {} ms)", loop_.name(), e.what(),
                   backoff.count());
      loop_.Close();
      database_up_ = false;
      SleepFor(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  loop_.DropPrefetch();
  try {
    loop_.StoreCursor();  // a clean stop leaves the stored cursor where the stream is
  } catch (const std::exception& e) {
    spdlog::warn("projector[{}]: cursor not stored at stop: {}", loop_.name(), e.what());
  }
  loop_.Close();
}

bool StreamProjector::Connect() {
  try {
    loop_.Open();
    loaded_ = true;
    if (moved_) moved_();  // the owner counts this stream's position from now on
    database_up_ = true;
    reported_down_ = false;
    spdlog::info("projector[{}]: connected; WAL {} projected up to {}", loop_.name(),
                 source_.id().ToString(), loop_.position());
    return true;
  } catch (const std::exception& e) {
    // Logged once per outage, not on every retry.
    if (!reported_down_) {
      spdlog::warn("projector[{}]: cannot reach PostgreSQL: {}", loop_.name(), e.what());
    }
    reported_down_ = true;
    database_up_ = false;
    return false;
  }
}

bool StreamProjector::SetHalted(std::string reason) {
  std::lock_guard lock(status_mu_);
  if (halted_ == reason) return false;
  halted_ = std::move(reason);
  return true;
}

std::string StreamProjector::halted() const {
  std::lock_guard lock(status_mu_);
  return halted_;
}

}  // namespace xtrace::projector

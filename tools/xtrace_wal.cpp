// xtrace-wal: inspect a write-ahead log directory (read-only; safe while the server runs).
//
//   xtrace-wal stat   --wal-dir DIR                       sequence range, bytes, time span
//   xtrace-wal dump   --wal-dir DIR [--from N] [--to M]   records as JSON lines
//   xtrace-wal verify --wal-dir DIR                       decode every record; exit 1 on any
//   failure

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "common/json.hpp"
#include "common/time.hpp"
#include "record_json.hpp"
#include "schema/codec.hpp"
#include "wal/reader.hpp"

using namespace xtrace;

namespace {

constexpr size_t kPage = 1024;

// Calls visit(entry) for every record in [from, to]; stops early when visit returns false.
template <class Visit>
bool ForEach(const wal::Reader& reader, uint64_t from, uint64_t to, Visit visit) {
  uint64_t cursor = from == 0 ? 0 : from - 1;
  for (;;) {
    auto page = reader.Read(cursor, kPage);
    if (!page) {
      std::fprintf(stderr, "xtrace-wal: %s\n", page.error().message.c_str());
      return false;
    }
    if (page->empty()) return true;
    for (const auto& e : *page) {
      if (e.seq > to) return true;
      if (!visit(e)) return false;
      cursor = e.seq;
    }
  }
}

int Stat(const wal::Reader& r) {
  std::optional<common::TimePoint> oldest, newest;
  for (uint64_t seq : {r.FirstSequence(), r.LastSequence()}) {
    if (seq == 0) continue;
    auto page = r.Read(seq - 1, 1);
    if (page && !page->empty()) {
      if (auto rec = schema::DecodeRecord(page->front().bytes)) {
        (seq == r.FirstSequence() ? oldest : newest) = rec->received_at;
      }
    }
  }
  const uint64_t count = r.LastSequence() == 0 ? 0 : r.LastSequence() - r.FirstSequence() + 1;
  std::printf("wal id:          %s\n", r.id().ToString().c_str());
  std::printf("first sequence:  %llu\n", static_cast<unsigned long long>(r.FirstSequence()));
  std::printf("last sequence:   %llu\n", static_cast<unsigned long long>(r.LastSequence()));
  std::printf("records:         %llu\n", static_cast<unsigned long long>(count));
  std::printf("bytes on disk:   %llu\n", static_cast<unsigned long long>(r.DiskBytes()));
  std::printf("oldest received: %s\n", oldest ? common::FormatRfc3339(*oldest).c_str() : "-");
  std::printf("newest received: %s\n", newest ? common::FormatRfc3339(*newest).c_str() : "-");
  return 0;
}

int Dump(const wal::Reader& r, uint64_t from, uint64_t to) {
  int bad = 0;
  const bool ok = ForEach(r, from, to, [&](const wal::Entry& e) {
    auto rec = schema::DecodeRecord(e.bytes);
    if (!rec) {
      std::fprintf(stderr, "xtrace-wal: record %llu: %s\n", static_cast<unsigned long long>(e.seq),
                   rec.error().message.c_str());
      ++bad;
      return true;
    }
    std::cout << common::SerializeJson(tools::RecordToJson(e.seq, *rec)) << '\n';
    return true;
  });
  return ok && bad == 0 ? 0 : 1;
}

int Verify(const wal::Reader& r) {
  uint64_t records = 0, bad = 0, gaps = 0, expected = r.FirstSequence();
  const bool ok = ForEach(r, 0, UINT64_MAX, [&](const wal::Entry& e) {
    if (e.seq != expected) {
      std::fprintf(stderr, "xtrace-wal: gap: expected sequence %llu, found %llu\n",
                   static_cast<unsigned long long>(expected),
                   static_cast<unsigned long long>(e.seq));
      ++gaps;
    }
    expected = e.seq + 1;
    ++records;
    if (auto rec = schema::DecodeRecord(e.bytes); !rec) {
      std::fprintf(stderr, "xtrace-wal: record %llu does not decode: %s\n",
                   static_cast<unsigned long long>(e.seq), rec.error().message.c_str());
      ++bad;
    }
    return true;
  });
  std::printf("verified %llu records: %llu undecodable, %llu gaps\n",
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(bad),
              static_cast<unsigned long long>(gaps));
  return ok && bad == 0 && gaps == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "xtrace-wal: inspect an xtrace write-ahead log (read-only, safe while the server runs)"};
  app.require_subcommand(1);
  std::string dir = "./data/wal";
  uint64_t from = 0, to = UINT64_MAX;
  auto* stat = app.add_subcommand("stat", "sequence range, record count, bytes, time span");
  auto* dump = app.add_subcommand("dump", "records as JSON lines");
  auto* verify = app.add_subcommand("verify", "decode every record; exit 1 on any failure");
  for (auto* sub : {stat, dump, verify}) {
    sub->add_option("--wal-dir", dir, "WAL directory (XTRACE_WAL_DIR of the server)")
        ->capture_default_str();
  }
  dump->add_option("--from", from, "first sequence to dump");
  dump->add_option("--to", to, "last sequence to dump");
  CLI11_PARSE(app, argc, argv);

  auto reader = wal::Reader::Open(dir);
  if (!reader) {
    std::fprintf(stderr, "xtrace-wal: %s\n", reader.error().message.c_str());
    return 2;
  }
  if (stat->parsed()) return Stat(**reader);
  if (dump->parsed()) return Dump(**reader, from, to);
  return Verify(**reader);
}

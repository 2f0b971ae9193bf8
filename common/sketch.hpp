#pragma once
// The quantile sketch kept in metric_rollups.sketch: logarithmic buckets with relative accuracy
// 1% (DDSketch-style). Every value maps to an integer slot; a sketch is the count per slot, so
// sketches merge by adding counts, in any order, and a resent point can never be told apart from
// a first one here (the projector only feeds points it actually inserted).
//
// Stored form (bytea): the version byte 0x01, then per occupied slot in ascending order the
// zigzag varint of the slot minus the previous slot (the first relative to 0) and the varint of
// its count. Adjacent slots are the common case, so a cell costs two or three bytes per slot.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xtrace::common {

class Sketch {
 public:
  static constexpr double kGamma = 1.01 / 0.99;

  // The slot of a value: 0 for |v| < 1e-9, else ±(kBias + ceil(log_γ |v|)) with the sign of v,
  // so slots sort like the values they stand for.
  static int32_t SlotOf(double value);

  void Add(double value, uint64_t count = 1) { AddSlot(SlotOf(value), count); }
  void AddSlot(int32_t slot, uint64_t count);
  void Merge(const Sketch& other);

  std::string Encode() const;
  // Adds the counts of an encoded sketch; false (and nothing added) if it is malformed.
  bool MergeEncoded(std::string_view bytes);

  uint64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }

  // The q-quantile (0 ≤ q ≤ 1) as the value of rank floor(q·(n−1)) in sorted order, within 1%
  // relative error of the exact value of that rank. 0 when empty.
  double Quantile(double q) const;

 private:
  static constexpr int32_t kBias = 1 << 20;
  // Occupied slots in ascending order: a few hundred at most for real data, so a flat vector
  // beats a node-based map at adding, merging and encoding.
  std::vector<std::pair<int32_t, uint64_t>> slots_;
  uint64_t count_ = 0;
};

// The bytes of a PostgreSQL bytea in its text (hex) output form, "\x0a1b..."; false if not.
bool DecodeByteaHex(std::string_view text, std::string& out);
// The text (hex) input form of bytes, for array literals and text parameters.
std::string EncodeByteaHex(std::string_view bytes);

}  // namespace xtrace::common

#include "common/sketch.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace xtrace::common {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

constexpr char kVersion = 0x01;

}  // namespace

int32_t Sketch::SlotOf(double value) {
  if (!(std::fabs(value) >= 1e-9)) return 0;  // also NaN, which ingest rejects anyway
  const double index = std::ceil(std::log(std::fabs(value)) / std::log(kGamma));
  // |index| < 40000 for every finite double of magnitude ≥ 1e-9.
  const int32_t slot = kBias + static_cast<int32_t>(index);
  return value > 0 ? slot : -slot;
}

void Sketch::AddSlot(int32_t slot, uint64_t count) {
  if (count == 0) return;
  count_ += count;
  // Points of a series arrive with similar values: the slot is usually the last one or near it.
  if (slots_.empty() || slots_.back().first < slot) {
    slots_.emplace_back(slot, count);
    return;
  }
  const auto it = std::lower_bound(slots_.begin(), slots_.end(), slot,
                                   [](const auto& entry, int32_t s) { return entry.first < s; });
  if (it != slots_.end() && it->first == slot) {
    it->second += count;
  } else {
    slots_.insert(it, {slot, count});
  }
}

void Sketch::Merge(const Sketch& other) {
  if (other.slots_.empty()) return;
  std::vector<std::pair<int32_t, uint64_t>> merged;
  merged.reserve(slots_.size() + other.slots_.size());
  auto a = slots_.cbegin(), b = other.slots_.cbegin();
  while (a != slots_.end() || b != other.slots_.end()) {
    if (b == other.slots_.end() || (a != slots_.end() && a->first < b->first)) {
      merged.push_back(*a++);
    } else if (a == slots_.end() || b->first < a->first) {
      merged.push_back(*b++);
    } else {
      merged.emplace_back(a->first, a->second + b->second);
      ++a;
      ++b;
    }
  }
  slots_ = std::move(merged);
  count_ += other.count_;
}

std::string Sketch::Encode() const {
  std::string out(1, kVersion);
  out.reserve(1 + slots_.size() * 3);
  int64_t previous = 0;
  for (const auto& [slot, n] : slots_) {
    const int64_t delta = slot - previous;
    PutVarint(out, (static_cast<uint64_t>(delta) << 1) ^ static_cast<uint64_t>(delta >> 63));
    PutVarint(out, n);
    previous = slot;
  }
  return out;
}

bool Sketch::MergeEncoded(std::string_view bytes) {
  if (bytes.empty() || bytes.front() != kVersion) return false;
  bytes.remove_prefix(1);
  Sketch decoded;
  int64_t slot = 0;
  while (!bytes.empty()) {
    uint64_t zigzag = 0, n = 0;
    if (!GetVarint(bytes, zigzag) || !GetVarint(bytes, n)) return false;
    const int64_t delta = static_cast<int64_t>(zigzag >> 1) ^ -static_cast<int64_t>(zigzag & 1);
    // Slots are int32: a larger step can only come from corrupt bytes (and could overflow).
    if (delta < -(int64_t{1} << 32) || delta > (int64_t{1} << 32)) return false;
    slot += delta;
    if (slot < INT32_MIN || slot > INT32_MAX) return false;
    decoded.AddSlot(static_cast<int32_t>(slot), n);
  }
  Merge(decoded);
  return true;
}

double Sketch::Quantile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::floor(q * static_cast<double>(count_ - 1)));
  uint64_t seen = 0;
  int32_t slot = slots_.rbegin()->first;
  for (const auto& [s, n] : slots_) {
    seen += n;
    if (seen > rank) {
      slot = s;
      break;
    }
  }
  if (slot == 0) return 0;
  // 2γ^i/(γ+1) lies within 1% of every value in bucket i.
  const int index = (slot > 0 ? slot : -slot) - kBias;
  const double estimate = 2.0 * std::pow(kGamma, index) / (kGamma + 1.0);
  return slot > 0 ? estimate : -estimate;
}

bool DecodeByteaHex(std::string_view text, std::string& out) {
  if (!text.starts_with("\\x") || text.size() % 2 != 0) return false;
  text.remove_prefix(2);
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out.resize(text.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

std::string EncodeByteaHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 + bytes.size() * 2, '\0');
  out[0] = '\\';
  out[1] = 'x';
  char* p = out.data() + 2;
  for (const unsigned char c : bytes) {
    *p++ = kHex[c >> 4];
    *p++ = kHex[c & 0x0F];
  }
  return out;
}

}  // namespace xtrace::common

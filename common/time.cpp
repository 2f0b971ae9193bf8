#include "common/time.hpp"

#include <cctype>
#include <cstdio>

namespace xtrace::common {
namespace {

// A tiny cursor over the input; every Read* returns false instead of throwing.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool ReadDigits(size_t n, int& out) {
    if (s_.size() - pos_ < n) return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      const char c = s_[pos_ + i];
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
      v = v * 10 + (c - '0');
    }
    pos_ += n;
    out = v;
    return true;
  }
  bool Expect(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool AtEnd() const { return pos_ == s_.size(); }
  std::string_view Rest() const { return s_.substr(pos_); }
  void Advance(size_t n) { pos_ += n; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<TimePoint> ParseRfc3339(std::string_view text) {
  using namespace std::chrono;
  Scanner sc(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!sc.ReadDigits(4, y) || !sc.Expect('-') || !sc.ReadDigits(2, mo) || !sc.Expect('-') ||
      !sc.ReadDigits(2, d)) {
    return std::nullopt;
  }
  if (!sc.Expect('T') && !sc.Expect('t') && !sc.Expect(' ')) return std::nullopt;
  if (!sc.ReadDigits(2, h) || !sc.Expect(':') || !sc.ReadDigits(2, mi) || !sc.Expect(':') ||
      !sc.ReadDigits(2, s)) {
    return std::nullopt;
  }
  int64_t frac_us = 0;
  if (sc.Expect('.')) {
    int digits = 0;
    int dv = 0;
    while (sc.ReadDigits(1, dv)) {
      if (digits < 6) frac_us = frac_us * 10 + dv;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    for (int i = digits; i < 6; ++i) frac_us *= 10;
  }
  int offset_minutes = 0;
  if (sc.Expect('Z') || sc.Expect('z')) {
  } else if (sc.Rest() == "UTC") {
    sc.Advance(3);
  } else if (sc.Peek('+') || sc.Peek('-')) {
    const int sign = sc.Expect('+') ? 1 : (sc.Expect('-'), -1);
    int oh = 0, om = 0;
    if (!sc.ReadDigits(2, oh)) return std::nullopt;
    sc.Expect(':');
    if (!sc.ReadDigits(2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (!sc.AtEnd()) return std::nullopt;

  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (y < 1 || !ymd.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;
  const auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{s} + microseconds{frac_us} -
                  minutes{offset_minutes};
  // The instant itself must lie in years 0001..9999 UTC, not only the fields as written: an offset
  // moves 0001-01-01T00:00:00+01:00 into year 0 and 9999-12-31T23:00:00-01:00 into year 10000,
  // which FormatRfc3339 would print in a form this function rejects.
  constexpr sys_days kFirstDay{year{1} / January / 1};
  constexpr sys_days kEndDay{year{10000} / January / 1};
  if (tp < kFirstDay || tp >= kEndDay) return std::nullopt;
  return time_point_cast<microseconds>(tp);
}

std::string FormatRfc3339(TimePoint t) {
  using namespace std::chrono;
  const auto day_point = floor<days>(t);
  const year_month_day ymd{day_point};
  const hh_mm_ss hms{t - day_point};
  const int64_t us = hms.subseconds().count();
  char buf[40];
  int n =
      std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                    static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                    static_cast<int>(hms.seconds().count()));
  if (us != 0) {
    if (us % 1000 == 0) {
      n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), ".%03lld",
                         static_cast<long long>(us / 1000));
    } else {
      n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), ".%06lld",
                         static_cast<long long>(us));
    }
  }
  std::string out(buf, static_cast<size_t>(n));
  out.push_back('Z');
  return out;
}

std::string FormatRfc3339Offset(TimePoint t) {
  std::string s = FormatRfc3339(t);
  s.pop_back();  // the 'Z'
  return s + "+00:00";
}

TimePoint Now() {
  return std::chrono::time_point_cast<Micros>(std::chrono::system_clock::now());
}

}  // namespace xtrace::common

#pragma once
// JSON output in the form clients of the reference API expect. Boost.JSON (1.81) prints doubles
// in scientific notation (`1.5E0`); this writer prints the shortest round-trip decimal and
// keeps doubles recognizably floating point (`1.0`, `0.0`, `0.42`), as the reference does.

#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include <cstddef>

namespace xtrace::common {

// The deepest JSON nesting the server accepts in a request body and parses in a stored document.
// One limit for both sides: a document stored from an accepted body is never deeper than the body,
// so every read path can parse whatever ingest accepted. It also bounds parser recursion and stack
// use on hostile input while leaving generous room for real metadata.
inline constexpr std::size_t kMaxJsonDepth = 64;

// Parses with kMaxJsonDepth (Boost.JSON's own default is 32, shallower than what ingest accepts).
// The first form reports errors in `ec`, the second throws boost::system::system_error.
boost::json::value ParseJson(std::string_view text, boost::system::error_code& ec);
boost::json::value ParseJson(std::string_view text);

std::string SerializeJson(const boost::json::value& value);

// The pieces SerializeJson is made of, for writing JSON text without building a document first.
// A string, escaped as Boost.JSON escapes it.
void AppendJsonString(std::string& out, std::string_view s);
// A double in shortest round-trip form, with ".0" when it would read as an integer; null when
// not finite (JSON has no NaN or infinity).
void AppendJsonDouble(std::string& out, double d);
// A JSON text copied without the whitespace between its tokens. PostgreSQL prints jsonb as
// `{"a": [1, 2]}`; this appends `{"a":[1,2]}`, the form SerializeJson writes. `json` must be
// valid JSON (it is not checked); strings inside it are copied byte for byte.
void AppendCompactJson(std::string& out, std::string_view json);

// Writes one JSON document into a string as it is produced, so a large response exists once,
// as its text, instead of also as a document tree. The caller calls in document order; the
// writer places the commas and colons.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Key(std::string_view key) {
    Separate();
    AppendJsonString(out_, key);
    out_.push_back(':');
    first_ = true;  // the value follows without a comma
  }

  void Null() { Raw("null"); }
  void Bool(bool b) { Raw(b ? "true" : "false"); }
  void Int(int64_t n) { Raw(std::to_string(n)); }
  void Double(double d) {
    Separate();
    AppendJsonDouble(out_, d);
  }
  void String(std::string_view s) {
    Separate();
    AppendJsonString(out_, s);
  }
  // A complete JSON value given as text (see AppendCompactJson).
  void Json(std::string_view json) {
    Separate();
    AppendCompactJson(out_, json);
  }

 private:
  void Separate() {
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  void Raw(std::string_view text) {
    Separate();
    out_ += text;
  }
  void Open(char c) {
    Separate();
    out_.push_back(c);
    first_ = true;
  }
  void Close(char c) {
    out_.push_back(c);
    first_ = false;
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace xtrace::common

#pragma once
// JSON output in the form clients of the reference API expect. Boost.JSON (1.81) prints doubles
// in scientific notation (`1.5E0`); this writer prints the shortest round-trip decimal and
// keeps doubles recognizably floating point (`1.0`, `0.0`, `0.42`), as the reference does.

#include <boost/json/value.hpp>

#include <string>

#include <cstddef>

namespace xtrace::common {

// The deepest JSON nesting the server accepts in a request body and parses in a stored document.
// One limit for both sides: a document stored from an accepted body is never deeper than the body,
// so every read path can parse whatever ingest accepted. It also bounds parser recursion and stack
// use on hostile input while leaving generous room for real metadata.
inline constexpr std::size_t kMaxJsonDepth = 64;

std::string SerializeJson(const boost::json::value& value);

}  // namespace xtrace::common

#pragma once
// JSON output in the form clients of the reference API expect. Boost.JSON (1.81) prints doubles
// in scientific notation (`1.5E0`); this writer prints the shortest round-trip decimal and
// keeps doubles recognizably floating point (`1.0`, `0.0`, `0.42`), as the reference does.

#include <boost/json/value.hpp>

#include <string>

namespace xtrace::common {

std::string SerializeJson(const boost::json::value& value);

}  // namespace xtrace::common

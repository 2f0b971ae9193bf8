#pragma once
// A blocking HTTP/1.1 client for end-to-end tests (one connection per request).

#include <cstdint>
#include <map>
#include <string>

namespace xtrace::testing {

struct HttpResult {
  int status = 0;  // 0: the connection failed
  std::string body;
  std::map<std::string, std::string> headers;
};

HttpResult Http(uint16_t port, const std::string& method, const std::string& target,
                const std::string& body = "",
                const std::map<std::string, std::string>& headers = {});

// A free loopback port at the time of the call.
uint16_t FreePort();

}  // namespace xtrace::testing

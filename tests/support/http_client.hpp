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

// A loopback port nothing listened on at the time of the call, for an address that must refuse
// connections. Not for a server to listen on: that would race with whoever takes the port
// meanwhile; servers bind port 0 (server_process.hpp).
uint16_t FreePort();

}  // namespace xtrace::testing

#pragma once
// The HTTP/1.1 front end on Boost.Beast: keep-alive, a request body limit, read timeouts, one
// request at a time per connection, and a graceful stop (no new connections; requests in flight
// finish and are answered before the I/O threads stop). The header is read first: refused framing
// is answered (http_framing.hpp) and credentials are checked before any body is read.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "server/router.hpp"

namespace xtrace::server {

struct HttpLimits {
  uint64_t body_bytes = 20u << 20;
  // Request bytes (declared Content-Length; the body limit for chunked bodies) admitted at once;
  // beyond it a request is answered 503 before its body is read, so memory stays bounded.
  uint64_t inflight_bytes = uint64_t{256} << 20;
  std::chrono::milliseconds read_timeout{30000};
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint,
             Router& router, HttpLimits limits);

  // The bound port (useful when configured as 0).
  uint16_t port() const { return port_; }

  void Start();
  // Closes the listening socket; established connections finish their current request and close.
  void StopAccepting();
  // Requests read but not yet answered.
  size_t InFlight() const { return shared_->in_flight.load(); }

  struct Shared {
    Router* router = nullptr;
    HttpLimits limits;
    std::atomic<size_t> in_flight{0};
    std::atomic<uint64_t> inflight_bytes{0};
    std::atomic<bool> stopping{false};
  };

 private:
  void Accept();

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<Shared> shared_;
  uint16_t port_ = 0;
};

}  // namespace xtrace::server

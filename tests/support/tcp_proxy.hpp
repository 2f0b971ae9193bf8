#pragma once
// A TCP proxy on a loopback port in front of a real PostgreSQL, for tests of a database that
// misbehaves at the network level: it refuses connections, accepts them and never answers, or
// stops answering on connections that were working.

#include <cstdint>
#include <memory>

namespace xtrace::testing {

class TcpProxy {
 public:
  enum class Mode {
    kForward,    // new connections are forwarded to the upstream port
    kBlackHole,  // new connections are accepted and never answered; every open connection
                 // stops being forwarded, for good (its peers see a silent, open socket)
    kRefuse,     // nothing listens on the port: connections are refused
  };

  TcpProxy(uint16_t upstream_port, Mode mode);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const;
  // Takes effect before it returns.
  void SetMode(Mode mode);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xtrace::testing

#include "support/tcp_proxy.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <future>
#include <thread>
#include <vector>

namespace xtrace::testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// One proxied connection. Frozen: bytes from either side are read and dropped, nothing is
// closed, so each peer waits for an answer that never comes.
struct Link : std::enable_shared_from_this<Link> {
  explicit Link(net::io_context& ioc) : client(ioc), upstream(ioc) {}
  tcp::socket client;
  tcp::socket upstream;
  bool frozen = false;
  std::array<char, 16384> to_upstream{};
  std::array<char, 16384> to_client{};

  void Close() {
    boost::system::error_code ec;
    client.close(ec);
    upstream.close(ec);
  }

  void Pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf) {
    from.async_read_some(net::buffer(buf), [self = shared_from_this(), &from, &to, &buf](
                                               boost::system::error_code ec, size_t n) {
      if (ec) {
        if (!self->frozen) self->Close();
        return;
      }
      if (self->frozen) return self->Pump(from, to, buf);
      net::async_write(to, net::buffer(buf.data(), n),
                       [self, &from, &to, &buf](boost::system::error_code wec, size_t) {
                         if (wec) {
                           if (!self->frozen) self->Close();
                           return;
                         }
                         self->Pump(from, to, buf);
                       });
    });
  }
};

}  // namespace

struct TcpProxy::Impl {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  uint16_t port = 0;
  uint16_t upstream_port;
  Mode mode;
  std::vector<std::shared_ptr<Link>> links;  // every link ever made: frozen ones stay open
  std::thread thread;

  Impl(uint16_t upstream, Mode m) : upstream_port(upstream), mode(m) {}

  void Listen() {
    const tcp::endpoint at(net::ip::make_address("127.0.0.1"), port);
    acceptor.open(at.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(at);
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    Accept();
  }

  void Accept() {
    auto link = std::make_shared<Link>(ioc);
    acceptor.async_accept(link->client, [this, link](boost::system::error_code ec) {
      if (ec) return;  // closed (kRefuse) or shutting down
      links.push_back(link);
      if (mode == Mode::kBlackHole) {
        link->frozen = true;
        link->Pump(link->client, link->upstream, link->to_upstream);
      } else {
        boost::system::error_code cec;
        link->upstream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), upstream_port),
                               cec);
        if (cec) {
          link->Close();
        } else {
          link->Pump(link->client, link->upstream, link->to_upstream);
          link->Pump(link->upstream, link->client, link->to_client);
        }
      }
      Accept();
    });
  }

  void Apply(Mode next) {
    if (next == Mode::kBlackHole) {
      for (auto& l : links) l->frozen = true;
    }
    if (next == Mode::kRefuse && acceptor.is_open()) {
      boost::system::error_code ec;
      acceptor.close(ec);
    }
    if (next != Mode::kRefuse && !acceptor.is_open()) Listen();
    mode = next;
  }
};

TcpProxy::TcpProxy(uint16_t upstream_port, Mode mode)
    : impl_(std::make_unique<Impl>(upstream_port, Mode::kForward)) {
  impl_->Listen();  // takes the port even when starting with kRefuse
  impl_->Apply(mode);
  impl_->thread = std::thread([this] {
    auto guard = net::make_work_guard(impl_->ioc);
    impl_->ioc.run();
  });
}

TcpProxy::~TcpProxy() {
  net::post(impl_->ioc, [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    for (auto& l : impl_->links) l->Close();
    impl_->ioc.stop();
  });
  impl_->thread.join();
}

uint16_t TcpProxy::port() const {
  return impl_->port;
}

void TcpProxy::SetMode(Mode mode) {
  std::promise<void> done;
  net::post(impl_->ioc, [this, mode, &done] {
    impl_->Apply(mode);
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace xtrace::testing

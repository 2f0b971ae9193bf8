#include "server/http_server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <optional>

#include "server/error_mapping.hpp"
#include "server/http_framing.hpp"

namespace xtrace::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// After answering a request whose rest was left unread, the connection reads and discards what
// the client still sends for at most this long (or the read timeout, if shorter) before closing.
constexpr std::chrono::seconds kLingerTime{5};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}
  ~Session() { ReleaseBytes(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::ReadHeader, shared_from_this()));
  }

 private:
  void ReadHeader() {
    parser_.emplace();
    ApplyLimits(*parser_, shared_->limits.body_bytes);
    stream_.expires_after(shared_->limits.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) return OnReadFailure(ec);
    if (auto error = CheckHeader(*parser_)) return Reject(ErrorResponse(*error));
    // Credentials are checked on the header, before any body is read: a refused client neither
    // gets `100 Continue` nor has its body waited for. A request without a body takes the usual
    // path, where the same check answers it and the connection stays open.
    if (!parser_->is_done()) {
      if (auto refusal = shared_->router->RefuseCredentials(View())) {
        return Reject(std::move(*refusal));
      }
    }
    if (!ReserveBytes()) return RejectOverloaded();
    // curl and many SDKs send `Expect: 100-continue` for larger bodies and wait for the interim
    // response before sending the body; answer it rather than letting them stall for a second.
    const auto& req = parser_->get();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      http::async_write(stream_, *continue_,
                        [self = shared_from_this()](beast::error_code wec, size_t) {
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) return OnReadFailure(ec);
    stream_.expires_never();  // handlers may legitimately take a while (fsync, SQL)
    shared_->in_flight++;
    started_ = std::chrono::steady_clock::now();
    const auto& req = parser_->get();
    head_ = req.method() == http::verb::head;
    keep_alive_ = req.keep_alive();
    HttpRequestView view = View();
    view.body = req.body();
    // The request stays alive in parser_ until the response is written, so the views remain
    // valid on whatever thread the handler completes.
    shared_->router->Handle(view, [self = shared_from_this()](common::ApiResponse response) {
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Write(std::move(response));
      });
    });
  }

  // The parsed header as the router sees it (no body).
  HttpRequestView View() const {
    const auto& req = parser_->get();
    const std::string_view target = req.target();
    const auto q = target.find('?');
    HttpRequestView view;
    view.method = req.method_string();
    view.path = target.substr(0, q);
    view.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    view.content_type = req[http::field::content_type];
    view.authorization = req[http::field::authorization];
    return view;
  }

  // A read failed: answer what can be answered (bad framing, limits), else just close.
  void OnReadFailure(beast::error_code ec) {
    const auto unparsed = buffer_.cdata();
    const std::string_view bytes(static_cast<const char*>(unparsed.data()), unparsed.size());
    auto error = ReadFailure(ec, *parser_, bytes, shared_->limits.body_bytes);
    if (!error) return Close();
    Reject(ErrorResponse(*error));
  }

  bool ReserveBytes() {
    const auto declared = parser_->content_length();
    // Without Content-Length a request has no body unless it is chunked, whose size is unknown
    // until read: it is charged the whole body limit.
    const uint64_t bytes =
        declared ? *declared : (parser_->chunked() ? shared_->limits.body_bytes : 0);
    const uint64_t total = shared_->inflight_bytes.fetch_add(bytes) + bytes;
    reserved_ = bytes;
    return total <= shared_->limits.inflight_bytes || bytes == total;  // one request always fits
  }

  void ReleaseBytes() {
    shared_->inflight_bytes.fetch_sub(reserved_);
    reserved_ = 0;
  }

  void RejectOverloaded() {
    ReleaseBytes();
    Reject(ErrorResponse(common::Error::Unavailable(
        "too many request bytes in flight (XTRACE_MAX_INFLIGHT_BYTES); retry later")));
  }

  // Answers a request whose rest is unread or cannot be parsed: where the next request would
  // start is unknown, so the connection closes after the answer.
  void Reject(common::ApiResponse response) {
    shared_->in_flight++;
    started_ = std::chrono::steady_clock::now();
    keep_alive_ = false;
    linger_ = true;
    head_ = false;
    Write(std::move(response));
  }

  void Write(common::ApiResponse response) {
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(response.status));
    res_.set(http::field::server, "xtrace");
    if (!response.body.empty()) res_.set(http::field::content_type, "application/json");
    for (auto& [name, value] : response.headers) res_.set(name, value);
    const bool keep = keep_alive_ && !shared_->stopping.load();
    res_.keep_alive(keep);
    if (head_) {
      res_.content_length(response.body.size());
    } else {
      res_.body() = std::move(response.body);
      res_.prepare_payload();
    }
    if (spdlog::should_log(spdlog::level::debug) && parser_) {
      const auto& req = parser_->get();
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started_)
                          .count();
      spdlog::debug("http: {} {} -> {} ({} us)", std::string_view(req.method_string()),
                    std::string_view(req.target()), response.status, us);
    }
    stream_.expires_after(shared_->limits.read_timeout);
    http::async_write(stream_, res_,
                      [self = shared_from_this(), keep](beast::error_code ec, size_t) {
                        self->ReleaseBytes();
                        self->shared_->in_flight--;
                        if (ec) return self->Close();
                        if (!keep) return self->linger_ ? self->LingerThenClose() : self->Close();
                        self->ReadHeader();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // Closing a socket with unread input makes the kernel reset the connection, and a client still
  // sending its request would see the reset instead of the answer it was sent. So after the
  // answer, stop sending and discard input until the client closes, for a bounded time and at
  // most the body limit in bytes; the session (and its socket) ends when the read stops.
  void LingerThenClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return;
    stream_.expires_after(
        std::min<std::chrono::milliseconds>(shared_->limits.read_timeout, kLingerTime));
    Discard(0);
  }

  void Discard(uint64_t discarded) {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64 * 1024),
                            [self = shared_from_this(), discarded](beast::error_code ec, size_t n) {
                              if (ec || discarded + n > self->shared_->limits.body_bytes) return;
                              self->Discard(discarded + n);
                            });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<HttpServer::Shared> shared_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  http::response<http::string_body> res_;
  std::chrono::steady_clock::time_point started_;
  uint64_t reserved_ = 0;  // this request's share of Shared::inflight_bytes
  bool keep_alive_ = true;
  bool linger_ = false;  // the request was answered before it was read whole
  bool head_ = false;
};

}  // namespace

HttpServer::HttpServer(net::io_context& ioc, const tcp::endpoint& endpoint, Router& router,
                       HttpLimits limits)
    : ioc_(ioc), acceptor_(net::make_strand(ioc)), shared_(std::make_shared<Shared>()) {
  shared_->router = &router;
  shared_->limits = limits;
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(net::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

void HttpServer::Start() {
  Accept();
}

void HttpServer::StopAccepting() {
  shared_->stopping = true;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
}

void HttpServer::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), shared_)->Run();
    } else {
      spdlog::warn("http: accept failed: {}", ec.message());
    }
    Accept();
  });
}

}  // namespace xtrace::server

#include "server/http_server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>

#include "server/error_mapping.hpp"

namespace xtrace::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr uint32_t kHeaderLimit = 64 * 1024;

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
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(shared_->limits.body_bytes);
    stream_.expires_after(shared_->limits.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec == http::error::body_limit) return RejectTooLarge();
    if (ec) return Close();
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
    if (ec == http::error::body_limit) return RejectTooLarge();
    if (ec) return Close();
    stream_.expires_never();  // handlers may legitimately take a while (fsync, SQL)
    shared_->in_flight++;
    started_ = std::chrono::steady_clock::now();
    const auto& req = parser_->get();
    head_ = req.method() == http::verb::head;
    keep_alive_ = req.keep_alive();
    const std::string_view target = req.target();
    const auto q = target.find('?');
    HttpRequestView view;
    view.method = req.method_string();
    view.path = target.substr(0, q);
    view.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    view.content_type = req[http::field::content_type];
    view.authorization = req[http::field::authorization];
    view.body = req.body();
    // The request stays alive in parser_ until the response is written, so the views remain
    // valid on whatever thread the handler completes.
    shared_->router->Handle(view, [self = shared_from_this()](common::ApiResponse response) {
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Write(std::move(response));
      });
    });
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
    shared_->in_flight++;
    started_ = std::chrono::steady_clock::now();
    keep_alive_ = false;  // the body is unread
    head_ = false;
    Write(ErrorResponse(common::Error::Unavailable(
        "too many request bytes in flight (XTRACE_MAX_INFLIGHT_BYTES); retry later")));
  }

  void RejectTooLarge() {
    // The rest of the body is unread, so the connection cannot be reused.
    shared_->in_flight++;
    started_ = std::chrono::steady_clock::now();
    keep_alive_ = false;
    head_ = false;
    Write(ErrorResponse(
        {common::ErrorCode::kPayloadTooLarge,
         "request body exceeds " + std::to_string(shared_->limits.body_bytes) + " bytes",
         {}}));
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
                        if (ec || !keep) return self->Close();
                        self->ReadHeader();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
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

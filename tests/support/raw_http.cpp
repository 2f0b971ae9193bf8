#include "support/raw_http.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

namespace xtrace::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

RawConnection::RawConnection(uint16_t port, std::chrono::milliseconds deadline)
    : deadline_(deadline), stream_(ioc_) {
  stream_.expires_after(deadline_);
  stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
}

void RawConnection::Send(const std::string& bytes) {
  stream_.expires_after(deadline_);
  net::write(stream_.socket(), net::buffer(bytes));
}

RawResponse RawConnection::Read() {
  http::response_parser<http::string_body> parser;
  beast::error_code ec;
  stream_.expires_after(deadline_);
  http::async_read(stream_, buffer_, parser, [&ec](beast::error_code e, size_t) { ec = e; });
  Run();
  RawResponse r;
  if (ec) return r;
  r.status = static_cast<int>(parser.get().result_int());
  r.body = parser.get().body();
  r.connection = std::string(parser.get()[http::field::connection]);
  return r;
}

bool RawConnection::ClosedByServer() {
  if (buffer_.size() != 0) return false;
  char byte;
  beast::error_code ec;
  stream_.expires_after(deadline_);
  stream_.async_read_some(net::buffer(&byte, 1), [&ec](beast::error_code e, size_t) { ec = e; });
  Run();
  return ec == net::error::eof;
}

void RawConnection::Close() {
  beast::error_code ec;
  stream_.socket().close(ec);
}

void RawConnection::Run() {
  ioc_.restart();
  ioc_.run();
}

}  // namespace xtrace::testing

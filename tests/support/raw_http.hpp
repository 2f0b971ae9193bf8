#pragma once
// One loopback connection on which a test writes request bytes exactly as it wants them (bad
// framing, a header without its body) and reads responses with a deadline: for what the
// well-behaved client of http_client.hpp cannot send.

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace xtrace::testing {

struct RawResponse {
  int status = 0;  // 0: no response before the deadline, or the connection closed first
  std::string body;
  std::string connection;  // the Connection header
};

class RawConnection {
 public:
  // Every wait on this connection (connect, each write, each read) ends after `deadline`; it
  // only matters against a server that does not answer.
  explicit RawConnection(uint16_t port,
                         std::chrono::milliseconds deadline = std::chrono::seconds(5));

  void Send(const std::string& bytes);

  // The next response; an interim `100 Continue` is a response of its own.
  RawResponse Read();

  // Whether the server closes the connection (end of stream, nothing more sent) before the
  // deadline.
  bool ClosedByServer();

  void Close();

 private:
  void Run();

  const std::chrono::milliseconds deadline_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace xtrace::testing

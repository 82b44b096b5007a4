#include "support/WsClient.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

namespace pgfanout::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

struct WsClient::Impl {
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  beast::flat_buffer buffer;
  websocket::response_type response;
  std::string body;
  std::string subprotocol;
  bool open = false;
  bool reading = false;
  bool read_done = false;
  bool closed = false;
  beast::error_code read_ec;

  // Runs the loop until `done` or the timeout.
  bool run(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(std::chrono::milliseconds(10));
    }
    return done();
  }
};

WsClient::WsClient(int port, const std::string& target, const Headers& headers, int receive_buffer,
                   int max_segment)
    : impl_(std::make_unique<Impl>()) {
  connect("127.0.0.1", port, target, headers, receive_buffer, max_segment);
}

WsClient::WsClient(const std::string& host, int port, const std::string& target,
                   const Headers& headers)
    : impl_(std::make_unique<Impl>()) {
  connect(host, port, target, headers, 0, 0);
}

void WsClient::connect(const std::string& host, int port, const std::string& target,
                       const Headers& headers, int receive_buffer, int max_segment) {
  auto& s = beast::get_lowest_layer(impl_->ws);
  beast::error_code ec;
  s.socket().open(asio::ip::tcp::v4(), ec);
  if (receive_buffer > 0) {
    s.socket().set_option(asio::socket_base::receive_buffer_size(receive_buffer), ec);
  }
  if (max_segment > 0) {
    // Before connect(), so that the SYN announces it.
    ::setsockopt(s.socket().native_handle(), IPPROTO_TCP, TCP_MAXSEG, &max_segment,
                 sizeof max_segment);
  }
  auto address = asio::ip::make_address(host, ec);
  if (ec) return;
  s.socket().connect({address, static_cast<unsigned short>(port)}, ec);
  if (ec) return;
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  impl_->ws.read_message_max(64 * 1024 * 1024);
  bool done = false;
  impl_->ws.async_handshake(impl_->response, host, target, [&](beast::error_code e) {
    done = true;
    impl_->open = !e;
  });
  impl_->run([&] { return done; }, std::chrono::seconds(5));
  impl_->body = impl_->response.body();
  impl_->subprotocol = std::string(impl_->response[beast::http::field::sec_websocket_protocol]);
}

WsClient::~WsClient() {
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

bool WsClient::open() const {
  return impl_->open;
}
int WsClient::http_status() const {
  return static_cast<int>(impl_->response.result_int());
}
const std::string& WsClient::http_body() const {
  return impl_->body;
}
const std::string& WsClient::subprotocol() const {
  return impl_->subprotocol;
}

void WsClient::send(const std::string& text) {
  if (!impl_->open) return;
  bool done = false;
  impl_->ws.text(true);
  impl_->ws.async_write(asio::buffer(text), [&](beast::error_code, std::size_t) { done = true; });
  impl_->run([&] { return done; }, std::chrono::seconds(5));
}

std::optional<std::string> WsClient::receive(std::chrono::milliseconds timeout) {
  if (!impl_->open || impl_->closed) return std::nullopt;
  if (!impl_->reading) {
    impl_->reading = true;
    impl_->read_done = false;
    impl_->ws.async_read(impl_->buffer, [this](beast::error_code ec, std::size_t) {
      impl_->read_done = true;
      impl_->read_ec = ec;
    });
  }
  if (!impl_->run([&] { return impl_->read_done; }, timeout)) return std::nullopt;
  impl_->reading = false;
  if (impl_->read_ec) {
    impl_->closed = true;
    return std::nullopt;
  }
  std::string text = beast::buffers_to_string(impl_->buffer.data());
  impl_->buffer.consume(impl_->buffer.size());
  return text;
}

std::optional<std::string> WsClient::receive_containing(const std::string& needle,
                                                        std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto m = receive(left);
    if (!m) return std::nullopt;
    if (m->find(needle) != std::string::npos) return m;
    skipped.push_back(*m);
  }
  return std::nullopt;
}

std::optional<std::string> WsClient::request(const std::string& json_object,
                                             std::chrono::milliseconds timeout) {
  int ref = next_ref_++;
  std::string text = json_object;
  text.pop_back();  // the closing brace
  text += ",\"ref\":" + std::to_string(ref) + "}";
  send(text);
  return receive_containing("\"ref\":" + std::to_string(ref), timeout);
}

bool WsClient::closed() const {
  return impl_->closed;
}

int WsClient::close_code() const {
  return static_cast<int>(impl_->ws.reason().code);
}

HttpStream::HttpStream(int port, const std::string& request_text)
    : HttpStream("127.0.0.1", port, request_text) {}

HttpStream::HttpStream(const std::string& host, int port, const std::string& request_text) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  ::send(fd_, request_text.data(), request_text.size(), MSG_NOSIGNAL);
}

HttpStream::~HttpStream() {
  if (fd_ >= 0) ::close(fd_);
}

bool HttpStream::wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (text_.find(needle) == std::string::npos && fd_ >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    text_.append(buf, static_cast<std::size_t>(n));
  }
  return text_.find(needle) != std::string::npos;
}

bool HttpStream::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (fd_ >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;
    text_.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

int HttpStream::status() const {
  if (text_.size() < 12) return 0;
  return std::atoi(text_.substr(9, 3).c_str());
}

}  // namespace pgfanout::test

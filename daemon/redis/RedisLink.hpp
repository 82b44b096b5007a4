// RedisConnection::Link: one connect attempt's socket (TCP, Unix socket or TLS over TCP), its
// write buffers, reply reader and handler queue, and the TLS context made for it. Private to
// redis/RedisConnection.cpp (the only file that includes it), kept apart for size.
#pragma once

#include "redis/RedisConnection.hpp"

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "metrics/Metrics.hpp"
#include "redis/RedisReplyReader.hpp"
#include "tls/TlsClient.hpp"

namespace pgfanout::redis {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// Bytes asked of the socket per read; replies larger than this arrive over several reads.
constexpr std::size_t kReadChunk = 16 * 1024;
// A write buffer that grew beyond this (a burst of big commands) is given back after use.
constexpr std::size_t kKeepWriteCapacity = 1024 * 1024;

constexpr const char* kFailureNames[] = {"resolve", "connect", "tls", "login", "timeout"};

bool is_tls_error(const error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() ||
         ec.category() == ssl::error::get_stream_category();
}

// The client context for one connect: a fresh one each time, so renewed files are picked up.
std::shared_ptr<ssl::context> tls_context(const RedisTls& tls, std::string& error) {
  return tls::make_tls_client_context({tls.ca_file, tls.cert_file, tls.key_file}, error);
}

}  // namespace

class RedisConnection::Link : public std::enable_shared_from_this<Link> {
 public:
  Link(asio::io_context& io, RedisConnection* owner_) : owner(owner_), resolver(io) {}

  template <class F>
  void with_stream(F&& f) {
    if (tls) {
      f(*tls);
    } else if (tcp_socket) {
      f(*tcp_socket);
    } else if (local_socket) {
      f(*local_socket);
    }
  }

  void close_socket() {
    error_code ignored;
    resolver.cancel();
    if (tls) tls->next_layer().close(ignored);
    if (tcp_socket) tcp_socket->close(ignored);
    if (local_socket) local_socket->close(ignored);
  }

  // The verification result OpenSSL recorded, when it says more than the handshake's error.
  std::string verify_detail() {
    if (!tls) return {};
    long result = SSL_get_verify_result(tls->native_handle());
    if (result == X509_V_OK) return {};
    return std::string(" (") + X509_verify_cert_error_string(result) + ")";
  }

  void start_read() {
    with_stream([&](auto& s) {
      s.async_read_some(
          asio::buffer(in),
          [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
    });
  }

  void on_read(error_code ec, std::size_t n) {
    if (owner == nullptr) return;
    if (ec) {
      owner->io_failed("read", ec);
      return;
    }
    if (!reader.feed(in.data(), n)) {
      owner->lost("bad reply from Redis: " + reader.error());
      return;
    }
    // A handler may close the connection (owner becomes nullptr): stop handing out replies then;
    // close() gives the handlers still waiting their nullptr.
    while (owner != nullptr) {
      RedisReplyReader::Reply reply = reader.next();
      if (!reply) {
        if (reader.failed()) owner->lost("bad reply from Redis: " + reader.error());
        break;
      }
      if (handlers.empty()) {
        owner->lost("Redis sent a reply no command asked for");
        return;
      }
      ReplyHandler handler = std::move(handlers.front());
      handlers.pop_front();
      if (owner->in_flight_ > 0) --owner->in_flight_;
      owner->last_reply_ = Clock::now();
      handler(reply.get());
    }
    if (owner != nullptr) start_read();
  }

  // Sends what accumulated in `out` unless a write is on the wire; on_write sends the rest.
  void start_write() {
    if (writing_now || out.empty()) return;
    writing.clear();
    writing.swap(out);
    writing_now = true;
    with_stream([&](auto& s) {
      asio::async_write(
          s, asio::buffer(writing),
          [self = shared_from_this()](error_code ec, std::size_t) { self->on_write(ec); });
    });
  }

  void on_write(error_code ec) {
    writing_now = false;
    if (writing.capacity() > kKeepWriteCapacity) std::string().swap(writing);
    if (owner == nullptr) return;
    if (ec) {
      owner->io_failed("write", ec);
      return;
    }
    start_write();
  }

  RedisConnection* owner;  // nullptr once closed: late completions do nothing
  tcp::resolver resolver;
  std::vector<tcp::endpoint> endpoints;       // the addresses to try, in order
  std::shared_ptr<ssl::context> tls_context;  // before `tls`, which uses it
  std::optional<ssl::stream<tcp::socket>> tls;
  std::optional<tcp::socket> tcp_socket;
  std::optional<asio::local::stream_protocol::socket> local_socket;
  std::deque<ReplyHandler> handlers;  // one per command written or waiting to be
  std::string out;                    // formatted commands not yet on the wire
  std::string writing;                // the commands of the write in progress
  bool writing_now = false;
  RedisReplyReader reader;
  std::array<char, kReadChunk> in;
};

}  // namespace pgfanout::redis

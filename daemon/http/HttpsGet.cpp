#include "http/HttpsGet.hpp"

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <memory>

#include "tls/TlsClient.hpp"

namespace pgfanout::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::optional<HttpsUrl> parse_https_url(std::string_view url, std::string& error) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() < kScheme.size() || !beast::iequals(url.substr(0, kScheme.size()), kScheme)) {
    error = "must be an https:// URL";
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    error = "must not hold user info";
    return std::nullopt;
  }
  if (target.find('#') != std::string_view::npos) {
    error = "must not hold a fragment";
    return std::nullopt;
  }
  HttpsUrl out;
  std::string_view port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "has an unclosed [";
      return std::nullopt;
    }
    out.host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      error = "has text after ]";
      return std::nullopt;
    }
    if (!after.empty()) port = after.substr(1);
  } else {
    auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) {
    error = "has no host";
    return std::nullopt;
  }
  if (!port.empty() || authority.ends_with(':')) {
    int n = 0;
    for (char c : port) {
      n = c >= '0' && c <= '9' && n < 65536 ? n * 10 + (c - '0') : 70000;
    }
    if (port.empty() || n < 1 || n > 65535) {
      error = "has a bad port";
      return std::nullopt;
    }
    out.port = std::to_string(n);
  }
  out.target = target.starts_with('?') ? "/" + std::string(target) : std::string(target);
  return out;
}

namespace {

// One request: every step keeps it alive through its handler; the deadline closes the socket (and
// cancels the resolver), which fails whichever step is pending.
struct GetOp : std::enable_shared_from_this<GetOp> {
  GetOp(asio::io_context& io, HttpsUrl u, HttpsGetOptions o, std::shared_ptr<ssl::context> c,
        std::function<void(HttpsGetResult)> d)
      : url(std::move(u)),
        options(std::move(o)),
        tls_context(std::move(c)),
        done(std::move(d)),
        resolver(io),
        stream(io, *tls_context),
        deadline(io) {}

  void start() {
    deadline.expires_after(options.timeout);
    deadline.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->finished) return;
      self->timed_out = true;
      self->resolver.cancel();
      error_code ignored;
      beast::get_lowest_layer(self->stream).socket().close(ignored);
    });
    error_code ignored;
    asio::ip::make_address(url.host, ignored);
    if (ignored) SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());  // a name
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback(ssl::host_name_verification(url.host));
    phase = "resolve";
    resolver.async_resolve(
        url.host, url.port,
        [self = shared_from_this()](error_code ec, tcp::resolver::results_type r) {
          if (ec) return self->fail(ec);
          self->phase = "connect";
          beast::get_lowest_layer(self->stream)
              .async_connect(r, [self](error_code e, const tcp::endpoint&) {
                if (e) return self->fail(e);
                self->handshake();
              });
        });
  }

  void handshake() {
    phase = "tls handshake";
    stream.async_handshake(ssl::stream_base::client, [self = shared_from_this()](error_code ec) {
      if (ec) return self->fail(ec);
      self->write();
    });
  }

  void write() {
    phase = "send";
    req.method(bhttp::verb::get);
    req.target(url.target);
    req.version(11);
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    if (url.port != "443") host += ":" + url.port;
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::user_agent, "pgfanout/" PGFANOUT_VERSION);
    req.set(bhttp::field::accept, "application/json");
    req.set(bhttp::field::connection, "close");
    bhttp::async_write(stream, req, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->fail(ec);
      self->read();
    });
  }

  void read() {
    phase = "response";
    parser.body_limit(options.max_body);
    bhttp::async_read(
        stream, buffer, parser, [self = shared_from_this()](error_code ec, std::size_t) {
          if (ec == bhttp::error::body_limit) {
            return self->finish(0, {},
                                "response: the body is larger than " +
                                    std::to_string(self->options.max_body) + " bytes");
          }
          if (ec) return self->fail(ec);
          auto& res = self->parser.get();
          self->finish(static_cast<int>(res.result_int()), std::move(res.body()), {});
        });
  }

  void fail(error_code ec) {
    if (timed_out) return finish(0, {}, "timeout during " + std::string(phase));
    std::string detail = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
      // OpenSSL's reason, plus the certificate check's result when that is what failed.
      long verify = SSL_get_verify_result(stream.native_handle());
      if (verify != X509_V_OK) {
        detail += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      }
    }
    finish(0, {}, std::string(phase) + ": " + detail);
  }

  void finish(int status, std::string body, std::string error) {
    if (finished) return;
    finished = true;
    deadline.cancel();
    error_code ignored;
    beast::get_lowest_layer(stream).socket().close(ignored);
    HttpsGetResult r;
    r.status = status;
    r.body = std::move(body);
    r.error = std::move(error);
    auto callback = std::move(done);
    if (callback) callback(std::move(r));
  }

  HttpsUrl url;
  HttpsGetOptions options;
  std::shared_ptr<ssl::context> tls_context;
  std::function<void(HttpsGetResult)> done;
  tcp::resolver resolver;
  ssl::stream<beast::tcp_stream> stream;
  asio::steady_timer deadline;
  beast::flat_buffer buffer;
  bhttp::request<bhttp::empty_body> req;
  bhttp::response_parser<bhttp::string_body> parser;
  const char* phase = "resolve";
  bool timed_out = false;
  bool finished = false;
};

}  // namespace

void https_get(asio::io_context& io, const HttpsUrl& url, const HttpsGetOptions& options,
               std::function<void(HttpsGetResult)> done) {
  std::string error;
  auto ctx = tls::make_tls_client_context({options.ca_file, {}, {}}, error);
  if (!ctx) {
    asio::post(io, [done = std::move(done), error = "tls: " + error]() mutable {
      HttpsGetResult r;
      r.error = std::move(error);
      done(std::move(r));
    });
    return;
  }
  auto op = std::make_shared<GetOp>(io, url, options, std::move(ctx), std::move(done));
  op->start();
}

}  // namespace pgfanout::http

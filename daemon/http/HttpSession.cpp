#include "http/HttpSession.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "http/HttpRouter.hpp"
#include "http/HttpServerState.hpp"
#include "http/HttpUpgrade.hpp"

namespace pgfanout::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

std::string endpoint_text(const beast::tcp_stream& stream) {
  beast::error_code ec;
  auto ep = stream.socket().remote_endpoint(ec);
  if (ec) return "?";
  if (ep.address().is_v6())
    return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

HttpSession::HttpSession(asio::ip::tcp::socket&& socket, std::shared_ptr<HttpServerState> state)
    : stream_(std::move(socket)),
      // Room for one full request; the parser's own limits give the precise errors.
      buffer_(state->options.max_header_bytes + state->options.max_body_bytes + 4096),
      state_(std::move(state)) {
  remote_ = endpoint_text(stream_);
}

HttpSession::~HttpSession() {
  std::lock_guard lock(state_->mutex);
  state_->sessions.erase(this);
  if (!state_->detached)
    state_->connections.set(static_cast<std::int64_t>(state_->sessions.size()));
}

void HttpSession::run() {
  {
    std::lock_guard lock(state_->mutex);
    state_->sessions.emplace(this, weak_from_this());
    state_->connections.set(static_cast<std::int64_t>(state_->sessions.size()));
  }
  asio::dispatch(stream_.get_executor(),
                 beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
}

void HttpSession::close() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->handed_over_) return;
    beast::error_code ignored;
    self->stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    self->stream_.close();
  });
}

void HttpSession::do_read() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(state_->options.max_header_bytes));
  parser_->body_limit(state_->options.max_body_bytes);
  stream_.expires_after(requests_ == 0 ? state_->options.read_timeout
                                       : state_->options.idle_timeout);
  bhttp::async_read(stream_, buffer_, *parser_,
                    beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
      ec == asio::error::eof) {
    return do_close();
  }
  if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
    return send_error(431, "request header fields too large\n");
  }
  if (ec == bhttp::error::body_limit) return send_error(413, "request body too large\n");
  if (ec) {
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
      return send_error(400, "bad request\n");  // the request did not parse
    }
    spdlog::debug("HTTP {}: {}", remote_, ec.message());
    return do_close();
  }
  ++requests_;
  if (hand_over()) return;

  auto& req = parser_->get();
  HttpRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  auto q = request.target.find('?');
  request.path = request.target.substr(0, q);
  if (q != std::string::npos) request.query = request.target.substr(q + 1);
  for (const auto& field : req) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(req.body());
  request.remote = remote_;
  HttpResponse response = state_->router.handle(request);
  do_write(response, req.keep_alive() && !state_->stopping, req.method() == bhttp::verb::head,
           state_->router.route_label(request.path));
}

bool HttpSession::hand_over() {
  auto& req = parser_->get();
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  const UpgradeHandler* handler = state_->router.takeover_for(path);
  if (handler == nullptr) {
    handler = state_->router.upgrade_for(path);
    if (handler == nullptr) return false;
    bool upgrade = !req[bhttp::field::upgrade].empty();
    bool event_stream =
        req[bhttp::field::accept].find("text/event-stream") != std::string_view::npos;
    if (!upgrade && !event_stream) return false;
  }
  handed_over_ = true;
  stream_.expires_never();
  (*handler)(UpgradeRequest{std::move(stream_), parser_->release(), std::move(buffer_)});
  return true;
}

void HttpSession::do_write(const HttpResponse& response, bool keep_alive, bool head,
                           std::string_view route) {
  state_->requests(route, response.status).inc();
  response_ = {};
  response_.version(11);
  response_.result(response.status);
  response_.set(bhttp::field::server, "pgfanout/" PGFANOUT_VERSION);
  response_.set(bhttp::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) response_.set(name, value);
  response_.keep_alive(keep_alive);
  response_.body() = response.body;
  response_.prepare_payload();
  // HEAD: the GET response's headers, Content-Length included, and no body.
  if (head) response_.body().clear();
  stream_.expires_after(state_->options.read_timeout);
  bhttp::async_write(
      stream_, response_,
      beast::bind_front_handler(&HttpSession::on_write, shared_from_this(), keep_alive));
}

void HttpSession::send_error(unsigned status, std::string_view message) {
  do_write(HttpResponse::text(status, std::string(message)), false, false, "other");
}

void HttpSession::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  if (ec) return do_close();
  if (!keep_alive) return do_close();
  do_read();
}

void HttpSession::do_close() {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace pgfanout::http

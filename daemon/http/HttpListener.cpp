#include "http/HttpListener.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "http/HttpServerState.hpp"
#include "http/HttpSession.hpp"

namespace pgfanout::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

HttpListener::HttpListener(asio::io_context& io, std::shared_ptr<HttpServerState> state)
    : io_(io), acceptor_(io), retry_(io), state_(std::move(state)) {}

beast::error_code HttpListener::open(const tcp::endpoint& endpoint, std::string& step) {
  beast::error_code ec;
  step = "open";
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return ec;
  step = "set SO_REUSEADDR on";
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return ec;
  step = "bind";
  acceptor_.bind(endpoint, ec);
  if (ec) return ec;
  step = "listen on";
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

void HttpListener::run() {
  do_accept();
}

void HttpListener::stop() {
  beast::error_code ignored;
  retry_.cancel();
  acceptor_.close(ignored);
}

tcp::endpoint HttpListener::local_endpoint() const {
  beast::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void HttpListener::do_accept() {
  if (!acceptor_.is_open()) return;
  acceptor_.async_accept(asio::make_strand(io_),
                         beast::bind_front_handler(&HttpListener::on_accept, shared_from_this()));
}

void HttpListener::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // EMFILE and friends: accepting again at once would spin; the pending connection waits in
    // the backlog until a descriptor is free.
    spdlog::warn("HTTP accept failed: {}; retrying in 100 ms", ec.message());
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](beast::error_code e) {
      if (!e) self->do_accept();
    });
    return;
  }
  std::size_t open_sessions;
  {
    std::lock_guard lock(state_->mutex);
    open_sessions = state_->sessions.size();
  }
  if (open_sessions >= static_cast<std::size_t>(state_->options.max_connections)) {
    state_->rejected.inc();
    beast::error_code ignored;
    socket.close(ignored);
  } else {
    std::make_shared<HttpSession>(std::move(socket), state_)->run();
  }
  do_accept();
}

}  // namespace pgfanout::http

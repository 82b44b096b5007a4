#include "http/HttpServer.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/ip/address.hpp>

#include "http/HttpListener.hpp"
#include "http/HttpServerState.hpp"
#include "http/HttpSession.hpp"

namespace pgfanout::http {

namespace asio = boost::asio;

HttpServer::HttpServer(asio::io_context& io, const HttpRouter& router, Metrics& metrics)
    : io_(io), state_(std::make_shared<HttpServerState>(router, metrics, http::HttpConfig{})) {}

HttpServer::~HttpServer() {
  if (listener_) listener_->stop();
  close_connections();
  std::lock_guard lock(state_->mutex);
  state_->detached = true;
}

bool HttpServer::start(const http::HttpConfig& options, std::string& error) {
  state_ = std::make_shared<HttpServerState>(state_->router, state_->metrics, options);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.address.host, ec);
  if (ec) {
    error = "invalid listen address " + options.address.to_string() + ": " + ec.message();
    return false;
  }
  listener_ = std::make_shared<HttpListener>(io_, state_);
  std::string step;
  ec = listener_->open(asio::ip::tcp::endpoint(address, options.address.port), step);
  if (ec) {
    error =
        "cannot " + step + " " + options.address.to_string() + " (http.listen): " + ec.message();
    listener_->stop();
    listener_.reset();
    return false;
  }
  auto ep = listener_->local_endpoint();
  bound_ = ListenAddress{ep.address().to_string(), ep.port()};
  listener_->run();
  spdlog::info("HTTP listening on {}", bound_.to_string());
  return true;
}

void HttpServer::stop_accepting() {
  state_->stopping = true;
  if (listener_) listener_->stop();
}

void HttpServer::close_connections() {
  std::vector<std::shared_ptr<HttpSession>> open;
  {
    std::lock_guard lock(state_->mutex);
    for (auto& [_, weak] : state_->sessions) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) s->close();
}

std::size_t HttpServer::connection_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->sessions.size();
}

}  // namespace pgfanout::http

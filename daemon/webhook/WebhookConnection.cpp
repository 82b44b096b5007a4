#include <openssl/ssl.h>

#include "webhook/WebhookClientImpl.hpp"

namespace pgfanout::webhook {

namespace {

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

void Connection::start(Job job) {
  job_ = std::move(job);
  started_ = SteadyClock::now();
  timed_out_ = false;
  ++generation_;
  reused_ = connected_;
  if (connected_) {
    arm(job_.attempt.timeout);
    do_write();
  } else {
    phase_ = "connect";
    arm(std::min(client_->opts.connect_timeout, job_.attempt.timeout));
    do_resolve();
  }
}

bool Connection::fresh(SteadyClock::time_point now) const {
  return connected_ && now - idle_since_ < client_->opts.idle_timeout;
}

void Connection::close() {
  if (connected_) {
    connected_ = false;
    --client_->open;
  }
  resolver_.cancel();
  error_code ec;
  if (tls_) beast::get_lowest_layer(*tls_).socket().close(ec);
  if (plain_) plain_->socket().close(ec);
}

void Connection::abandon() {
  job_.done = nullptr;
  close();
}

void Connection::arm(std::chrono::milliseconds after) {
  deadline_.expires_after(after);
  deadline_.async_wait([self = shared_from_this(), g = generation_](error_code ec) {
    if (ec || g != self->generation_) return;
    self->timed_out_ = true;
    self->close();
  });
}

void Connection::do_resolve() {
  resolver_.async_resolve(
      job_.attempt.endpoint.host, job_.attempt.endpoint.port,
      [self = shared_from_this()](error_code ec, tcp::resolver::results_type results) {
        self->on_resolve(ec, std::move(results));
      });
}

void Connection::on_resolve(error_code ec, tcp::resolver::results_type results) {
  if (ec) return fail(ec, "resolve");
  const Endpoint& ep = job_.attempt.endpoint;
  plain_.reset();
  tls_.reset();
  if (ep.tls) {
    tls_.emplace(client_->io, *tls_context_);
    if (!is_ip_literal(ep.host)) {
      SSL_set_tlsext_host_name(tls_->native_handle(), ep.host.c_str());
    }
    tls_->set_verify_mode(ssl::verify_peer);
    tls_->set_verify_callback(ssl::host_name_verification(ep.host));
  } else {
    plain_.emplace(client_->io);
  }
  auto connect = [&](auto& stream) {
    beast::get_lowest_layer(stream).async_connect(
        results,
        [self = shared_from_this()](error_code e, const tcp::endpoint&) { self->on_connect(e); });
  };
  with_stream(connect);
}

void Connection::on_connect(error_code ec) {
  if (ec) return fail(ec, "connect");
  error_code ignored;
  auto& socket = tls_ ? beast::get_lowest_layer(*tls_).socket() : plain_->socket();
  socket.set_option(tcp::no_delay(true), ignored);
  if (!tls_) return on_connected();
  phase_ = "tls handshake";
  tls_->async_handshake(ssl::stream_base::client,
                        [self = shared_from_this()](error_code e) { self->on_handshake(e); });
}

void Connection::on_handshake(error_code ec) {
  if (ec) return fail(ec, "tls handshake");
  on_connected();
}

void Connection::on_connected() {
  connected_ = true;
  ++client_->open;
  auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started_);
  if (elapsed >= job_.attempt.timeout) {
    timed_out_ = true;
    return fail(asio::error::timed_out, "connect");
  }
  ++generation_;  // the connect deadline no longer applies
  arm(job_.attempt.timeout - elapsed);
  do_write();
}

void Connection::do_write() {
  phase_ = "send";
  const HttpAttempt& a = job_.attempt;
  req_ = {};
  req_.method(http::string_to_verb(a.method));
  req_.target(a.target);
  req_.version(11);
  const Endpoint& ep = a.endpoint;
  std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
  if (ep.port != (ep.tls ? "443" : "80")) host += ":" + ep.port;
  req_.set(http::field::host, host);
  req_.set(http::field::user_agent, "pgfanout/" PGFANOUT_VERSION);
  bool has_type = false;
  for (const auto& [name, value] : a.headers) {
    if (beast::iequals(name, "content-type")) has_type = true;
    req_.set(name, value);
  }
  if (!has_type) req_.set(http::field::content_type, "application/json");
  req_.body() = a.body;
  req_.keep_alive(true);
  req_.prepare_payload();
  with_stream([&](auto& stream) {
    http::async_write(stream, req_, [self = shared_from_this()](error_code ec, std::size_t) {
      self->on_write(ec);
    });
  });
}

void Connection::on_write(error_code ec) {
  if (ec) {
    if (retry_stale()) return;
    return fail(ec, "send");
  }
  do_read();
}

void Connection::do_read() {
  phase_ = "response";
  parser_.emplace();
  parser_->body_limit(client_->opts.max_response_body);
  buffer_.clear();
  with_stream([&](auto& stream) {
    http::async_read(
        stream, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
  });
}

void Connection::on_read(error_code ec) {
  if (ec == http::error::body_limit && parser_->is_header_done()) {
    // A complete status and headers with an oversized body: the status counts.
    AttemptResult r = result_of(parser_->get());
    return complete(false, std::move(r));
  }
  if (ec) {
    if (!parser_->got_some() && retry_stale()) return;
    if (parser_->got_some() && !timed_out_) {
      return fail(ec, "response (the connection closed mid-response)");
    }
    return fail(ec, "response");
  }
  auto& res = parser_->get();
  AttemptResult r = result_of(res);
  complete(res.keep_alive() && !timed_out_, std::move(r));
}

AttemptResult Connection::result_of(const http::response<http::string_body>& res) const {
  AttemptResult r;
  r.status = static_cast<int>(res.result_int());
  if (auto it = res.find(http::field::retry_after); it != res.end()) {
    r.retry_after = std::string(it->value());
  }
  r.body_excerpt = res.body().substr(0, client_->opts.excerpt_bytes);
  return r;
}

bool Connection::retry_stale() {
  if (!reused_ || job_.retried_stale || timed_out_) return false;
  close();
  Job job = std::move(job_);
  job.retried_stale = true;
  start(std::move(job));
  return true;
}

void Connection::fail(error_code ec, const char* phase) {
  AttemptResult r;
  if (timed_out_) {
    r.error = std::string("timeout during ") + phase_;
  } else {
    r.error = std::string(phase) + ": " + ec.message();
  }
  complete(false, std::move(r));
}

void Connection::complete(bool reusable, AttemptResult&& result) {
  ++generation_;
  deadline_.cancel();
  if (!reusable) close();
  idle_since_ = SteadyClock::now();
  Job job = std::move(job_);
  job_ = {};
  client_->finished(pool_, shared_from_this(), reusable, std::move(job), std::move(result));
}

}  // namespace pgfanout::webhook

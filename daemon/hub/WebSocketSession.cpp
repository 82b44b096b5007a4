#include "hub/WebSocketSession.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket.hpp>

#include "hub/ServerFrames.hpp"
#include "hub/Wire.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace bhttp = boost::beast::http;

namespace {
const auto kHippiePing =
    std::make_shared<const std::string>(websocket_text_frame(R"({"type":"ping"})"));
}

WebSocketSession::WebSocketSession(std::shared_ptr<HubState> hub, HubShard& shard,
                                   beast::tcp_stream&& stream, Mode mode, std::string hippie_topic)
    : ws_(std::move(stream)),
      hub_(std::move(hub)),
      shard_(&shard),
      mode_(mode),
      hippie_topic_(mode == Mode::Hippie
                        ? std::make_unique<const std::string>(std::move(hippie_topic))
                        : nullptr),
      commands_(hub_->config.commands_per_second, 2 * hub_->config.commands_per_second) {}

WebSocketSession::~WebSocketSession() {
  finish();
}

void WebSocketSession::run(bhttp::request<bhttp::string_body> request,
                           std::optional<Identity> identity, std::string subprotocol) {
  if (identity) identity_ = std::make_unique<Identity>(std::move(*identity));
  if (!hub_->admit(this, *shard_)) {
    // Beast answers the upgrade with an error when the stream is not accepted; simplest is to
    // refuse with a plain close right after the handshake is impossible: close the socket.
    ws_.next_layer().cut();
    return;
  }
  admitted_ = true;
  ws_.next_layer().set_owner(weak_from_this());
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeouts{std::chrono::seconds(10), hub_->config.idle_timeout,
                                           true};
  ws_.set_option(timeouts);
  ws_.read_message_max(hub_->config.max_message_bytes);
  if (!subprotocol.empty()) {
    ws_.set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& res) {
      res.set(bhttp::field::sec_websocket_protocol, subprotocol);
    }));
  }
  ws_.async_accept(request,
                   beast::bind_front_handler(&WebSocketSession::on_accept, shared_from_this()));
}

void WebSocketSession::on_accept(beast::error_code ec) {
  if (ec) {
    spdlog::debug("WebSocket handshake failed: {}", ec.message());
    return finish();
  }
  accepted_ = true;
  if (mode_ == Mode::Hippie) {
    send(R"({"type":"hippie.pipe.set_client_id","client_id":")" + random_client_id() + "\"}");
    hub_->subscribe(*shard_, *hippie_topic_, this);
    topics_.push_back(*hippie_topic_);
    start_ping();
  }
  do_read();
}

void WebSocketSession::do_read() {
  // A fragment at a time, at most kReadStep bytes per read (the header says why); read_message_max
  // still bounds the message as a whole.
  constexpr std::size_t kReadStep = 256;
  ws_.async_read_some(buffer_, kReadStep,
                      beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this()));
}

void WebSocketSession::start_message_deadline() {
  message_timer_ = std::make_unique<asio::steady_timer>(ws_.get_executor());
  message_timer_->expires_after(hub_->config.message_timeout);
  message_timer_->async_wait(
      [self = shared_from_this(), timer = message_timer_.get()](boost::system::error_code ec) {
        // `timer` gone or replaced: that message was completed meanwhile.
        if (ec || self->message_timer_.get() != timer || self->closing_ || self->finished_) return;
        self->hub_->dropped("message_timeout");
        self->close(websocket::close_code::policy_error, "message not completed in time");
      });
}

void WebSocketSession::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    if (ec == websocket::error::message_too_big) {
      hub_->dropped("too_big");
    } else if (ec == beast::error::timeout) {
      hub_->dropped("timeout");
    } else if (ec != websocket::error::closed &&
               ec.category() == beast::error_code(websocket::error::bad_frame_payload).category()) {
      // A protocol violation by the client (invalid UTF-8 in a text frame, a bad opcode...):
      // Beast has already closed with 1002 / 1007.
      hub_->dropped("protocol_error");
    }
    return finish();
  }
  if (!ws_.is_message_done()) {
    if (!message_timer_) start_message_deadline();
    return do_read();
  }
  message_timer_.reset();  // cancels the wait; an idle connection keeps no timer
  if (!closing_) {
    const auto data = buffer_.cdata();
    std::string_view text(static_cast<const char*>(data.data()), data.size());
    if (mode_ == Mode::Hippie) {
      handle_hippie(text);
    } else {
      handle(text);
    }
  }
  // An idle connection keeps no read buffer.
  buffer_.consume(buffer_.size());
  buffer_.shrink_to_fit();
  do_read();
}

void WebSocketSession::handle(std::string_view text) {
  auto parsed = parse_client_message(text);
  if (!parsed.message) {
    hub_->count_client_error(parsed.error_code);
    return send(error_frame(parsed.ref, parsed.error_code, parsed.error));
  }
  const ClientMessage& m = *parsed.message;
  auto self = shared_from_this();
  switch (m.type) {
    case ClientMessageType::Ping:
      return send(pong_frame(m.ref));
    case ClientMessageType::Subscribe:
      return subscribe(m);
    case ClientMessageType::Unsubscribe:
      return unsubscribe(m);
    case ClientMessageType::Auth: {
      if (identity_) return send(error_frame(m.ref, "already_authenticated", "already logged in"));
      std::string key_id;
      auto r = hub_->authenticate(m.token, &key_id);
      if (!r.ok) return send(error_frame(m.ref, "unauthorized", r.message));
      identity_ = std::make_unique<Identity>(Identity{std::move(r.claims), std::move(key_id)});
      return send(ack_frame(m.ref));
    }
    case ClientMessageType::Login: {
      if (identity_) return send(error_frame(m.ref, "already_authenticated", "already logged in"));
      if (!logins_) {
        const auto access = hub_->access();
        const auto& on = access->config.login;
        logins_ = std::make_unique<RateLimit>(on ? on->attempts_per_minute / 60.0 : 1.0,
                                              on ? on->attempts_per_minute : 1);
      }
      if (!logins_->take()) {
        return send(error_frame(m.ref, "rate_limited", "too many login attempts; wait a minute"));
      }
      return hub_->login(m, [self, ref = m.ref](HubResult r, std::optional<Identity> identity) {
        if (self->finished_) return;
        if (identity && !self->hub_->key_trusted(identity->key_id)) {
          // The access rules changed while the login statement ran: its token is of the old key.
          return self->send(
              error_frame(ref, "login_failed", "the access rules changed; log in again"));
        }
        if (identity && !self->identity_) {
          self->identity_ = std::make_unique<Identity>(std::move(*identity));
        }
        self->send(reply_frame(ref, r));
      });
    }
    case ClientMessageType::Call: {
      if (!commands_.take()) return send(error_frame(m.ref, "rate_limited", "too many commands"));
      return hub_->call(claims(), m, [self, ref = m.ref](HubResult r) {
        if (!self->finished_) self->send(reply_frame(ref, r));
      });
    }
    case ClientMessageType::Publish: {
      auto d = hub_->access()->config.acl.check(m.topic, auth::TopicAccess::Publish, claims());
      if (!d.allowed) return send(error_frame(m.ref, d.code, d.message));
      if (!commands_.take()) return send(error_frame(m.ref, "rate_limited", "too many messages"));
      return hub_->publish(claims(), m.topic, d.entry, m.data, [self, ref = m.ref](HubResult r) {
        if (!self->finished_) self->send(reply_frame(ref, r));
      });
    }
  }
}

void WebSocketSession::handle_hippie(std::string_view text) {
  // A Hippie client publishes by sending a JSON object on its pipe.
  ClientMessage m;
  m.topic = *hippie_topic_;
  auto d = hub_->access()->config.acl.check(m.topic, auth::TopicAccess::Publish, claims());
  if (!d.allowed) return send(error_frame({}, d.code, d.message));
  auto parsed =
      parse_client_message(R"({"type":"publish","topic":"x","data":)" + std::string(text) + "}");
  if (!parsed.message) return send(error_frame({}, "bad_message", "not valid JSON"));
  if (!commands_.take()) return send(error_frame({}, "rate_limited", "too many messages"));
  auto self = shared_from_this();
  hub_->publish(claims(), m.topic, d.entry, parsed.message->data, [self](HubResult r) {
    // Hippie clients get no acknowledgement; errors only.
    if (!self->finished_ && !r.ok()) self->send(reply_frame({}, r));
  });
}

bool WebSocketSession::subscribed(std::string_view topic) const {
  return std::find(topics_.begin(), topics_.end(), topic) != topics_.end();
}

void WebSocketSession::subscribe(const ClientMessage& m) {
  const auto access = hub_->access();  // one snapshot for the check and its entry
  auto d = access->config.acl.check(m.topic, auth::TopicAccess::Subscribe, claims());
  if (!d.allowed) return send(error_frame(m.ref, d.code, d.message));
  if (subscribed(m.topic)) return send(ack_frame(m.ref));
  if (static_cast<int>(topics_.size()) >= hub_->config.max_subscriptions) {
    return send(error_frame(m.ref, "too_many_subscriptions",
                            "at most " + std::to_string(hub_->config.max_subscriptions) +
                                " subscriptions per connection"));
  }
  hub_->subscribe(*shard_, m.topic, this);
  topics_.push_back(m.topic);
  // Taken now: the events that come while on_subscribe runs are held back, not in it.
  auto replayed = replay_after(m);
  if (!access->on_subscribe_at(d.entry)) {
    send(ack_frame(m.ref));
    for (const auto& json : replayed) send(json);
    return;
  }
  // Live events are kept back until the rows are sent, so the client sees them in order.
  held_.push_back({m.topic, {}});
  auto self = shared_from_this();
  hub_->on_subscribe(
      claims(), m.topic, d.entry,
      [self, replayed = std::move(replayed), topic = m.topic, ref = m.ref](
          std::vector<std::shared_ptr<const std::string>> frames, std::optional<HubError> error) {
        if (self->finished_) return;
        auto it = std::find_if(self->held_.begin(), self->held_.end(),
                               [&](const Held& h) { return h.topic == topic; });
        if (it == self->held_.end()) return;  // unsubscribed meanwhile
        Held held = std::move(*it);
        self->held_.erase(it);
        for (const auto& f : held.frames) self->held_bytes_ -= f->size();
        self->send(error ? error_frame(ref, error->code, error->message) : ack_frame(ref));
        for (const auto& f : frames) self->send(*f);
        for (const auto& json : replayed) self->send(json);
        for (auto& f : held.frames) self->send_frame(std::move(f));
      });
}

// A subscribe with `after`: the kept WAL events of the topic after it (or `resync`), to send.
std::vector<std::string> WebSocketSession::replay_after(const ClientMessage& m) {
  std::vector<std::string> out;
  if (!m.after) return out;
  auto replay = hub_->history.since(*m.after, {m.topic});
  for (const auto& e : replay.events) out.push_back(*e.frame);
  for (const auto& t : replay.lost) out.push_back(resync_frame(t));
  return out;
}

void WebSocketSession::unsubscribe(const ClientMessage& m) {
  if (!remove_topic(m.topic)) return send(error_frame(m.ref, "not_subscribed", "not subscribed"));
  send(ack_frame(m.ref));
}

bool WebSocketSession::remove_topic(std::string_view topic) {
  auto it = std::find(topics_.begin(), topics_.end(), topic);
  if (it == topics_.end()) return false;
  hub_->unsubscribe(*shard_, topic, this);
  topics_.erase(it);
  auto h =
      std::find_if(held_.begin(), held_.end(), [&](const Held& x) { return x.topic == topic; });
  if (h != held_.end()) {
    for (const auto& f : h->frames) held_bytes_ -= f->size();
    held_.erase(h);
  }
  return true;
}

void WebSocketSession::recheck() {
  if (closing_ || finished_ || !accepted_) return;
  if (identity_ && !hub_->key_trusted(identity_->key_id)) {
    hub_->closed_for_key();
    return close(websocket::close_code::policy_error, "token key no longer trusted");
  }
  for (std::size_t i = 0; i < topics_.size();) {
    auto d = hub_->access()->config.acl.check(topics_[i], auth::TopicAccess::Subscribe, claims());
    if (d.allowed) {
      ++i;
      continue;
    }
    hub_->unsubscribed_forbidden();
    if (mode_ == Mode::Hippie) {  // the pipe's one channel
      return close(websocket::close_code::policy_error, "channel no longer allowed");
    }
    std::string topic = topics_[i];
    remove_topic(topic);
    send(revoked_frame(topic, d.message));
  }
}

void WebSocketSession::deliver(const HubMessage& message) {
  if (closing_ || !accepted_) return;
  const auto& frame =
      wire_bytes(message, mode_ == Mode::Hippie ? Wire::WebSocketData : Wire::WebSocketEvent);
  for (auto& h : held_) {
    if (h.topic != message.topic) continue;
    if (over_limit(frame->size())) return;
    held_bytes_ += frame->size();
    h.frames.push_back(frame);
    return;
  }
  send_frame(frame);
}

void WebSocketSession::resync(std::string_view topic) {
  if (mode_ == Mode::Protocol) send(resync_frame(topic));
}

void WebSocketSession::shutdown() {
  auto self = shared_from_this();
  asio::post(ws_.get_executor(), [self] {
    if (!self->accepted_) {
      beast::get_lowest_layer(self->ws_).close();
      return;
    }
    self->close(websocket::close_code::going_away, "server shutting down");
  });
}

void WebSocketSession::send(std::string_view json) {
  if (closing_ || finished_ || !accepted_) return;
  send_frame(std::make_shared<const std::string>(websocket_text_frame(json)));
}

bool WebSocketSession::over_limit(std::size_t more) {
  if (ws_.next_layer().queued_bytes() + held_bytes_ + more <= hub_->config.send_queue_bytes) {
    return false;
  }
  hub_->dropped("slow");
  close(websocket::close_code::try_again_later, "too slow");
  return true;
}

void WebSocketSession::send_frame(std::shared_ptr<const std::string> frame) {
  if (closing_ || finished_ || !accepted_) return;
  if (over_limit(frame->size())) return;
  ws_.next_layer().write(std::move(frame));
}

void WebSocketSession::close(websocket::close_code code, std::string_view reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  held_.clear();
  held_bytes_ = 0;
  // What the client has not taken yet is dropped; the close frame goes behind a write in flight.
  ws_.next_layer().drop_unsent();
  websocket::close_reason why(code, reason);
  ws_.async_close(why, [self = shared_from_this()](beast::error_code) {
    beast::get_lowest_layer(self->ws_).close();
  });
  // A client that does not read at all never lets that write finish: close the socket under it.
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(ws_.get_executor());
  timer_->expires_after(std::chrono::seconds(2));
  timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->ws_.next_layer().cut();
  });
}

void WebSocketSession::start_ping() {
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(ws_.get_executor());
  timer_->expires_after(hub_->config.hippie_ping);
  timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closing_ || self->finished_) return;
    self->send_frame(kHippiePing);
    self->start_ping();
  });
}

void WebSocketSession::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  if (timer_) timer_->cancel();
  if (message_timer_) message_timer_->cancel();
  if (hub_->detached) return;
  for (const auto& t : topics_) hub_->unsubscribe(*shard_, t, this);
  topics_.clear();
  held_.clear();
  if (admitted_) hub_->release(this);
}

}  // namespace pgfanout::hub

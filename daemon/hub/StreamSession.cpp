#include "hub/StreamSession.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "hub/ServerFrames.hpp"
#include "hub/Wire.hpp"
#include "pg/ReplicationProtocol.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

const auto kSseHeartbeat = std::make_shared<const std::string>(": heartbeat\n\n");
const auto kMultipartPing = std::make_shared<const std::string>(
    "Content-Type: application/json\n\n{\"type\":\"ping\"}\n--|||\n");

}  // namespace

StreamSession::StreamSession(std::shared_ptr<HubState> hub, HubShard& shard,
                             beast::tcp_stream&& stream, Format format)
    : stream_(std::move(stream)), hub_(std::move(hub)), shard_(&shard), format_(format) {}

StreamSession::~StreamSession() {
  finish();
}

void StreamSession::run(std::vector<std::string> topics, std::vector<std::size_t> entries,
                        std::optional<Identity> identity, std::optional<std::int64_t> last_event_id,
                        bool resume_unknown, std::optional<std::uint64_t> last_lsn) {
  topics_ = std::move(topics);
  entries_ = std::move(entries);
  identity_ = std::move(identity);
  last_event_id_ = last_event_id;
  last_lsn_ = last_lsn;
  resume_unknown_ = resume_unknown;
  if (!hub_->admit(this, *shard_)) {
    stream_.next_layer().close();
    return;
  }
  admitted_ = true;
  stream_.set_owner(weak_from_this());
  stream_.next_layer().expires_never();
  std::string head = "HTTP/1.1 200 OK\r\nServer: pgfanout/" PGFANOUT_VERSION "\r\n";
  if (format_ == Format::Sse) {
    head +=
        "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 2000\n\n";
  } else {
    head +=
        "Content-Type: multipart/mixed; boundary=\"|||\"\r\nCache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n--|||\n";
    head +=
        "Content-Type: "
        "application/json\n\n{\"type\":\"hippie.pipe.set_client_id\",\"client_id\":\"" +
        random_client_id() + "\"}\n--|||\n";
  }
  send(std::make_shared<const std::string>(std::move(head)));
  timer_ = std::make_unique<asio::steady_timer>(stream_.get_executor());
  start_subscriptions();
  watch_close();
  if (!closing_) heartbeat();  // a resume sent in part has set the timer to end the stream
}

void StreamSession::start_subscriptions() {
  auto self = shared_from_this();
  for (const auto& t : topics_) hub_->subscribe(*shard_, t, this);
  if (resume_unknown_ && format_ == Format::Sse) {
    for (const auto& t : topics_) {
      send_event(resync_frame(t), {});
    }
  }
  if (last_lsn_ && format_ == Format::Sse) {
    // From the in-memory history of WAL events, before any live event can come.
    auto replay = hub_->history.since(*last_lsn_, topics_);
    for (const auto& e : replay.events) {
      if (!send_replayed(*e.frame, pg::format_lsn(e.lsn))) return;
    }
    for (const auto& t : replay.lost) send_event(resync_frame(t), {});
  }
  // The entries were found on the daemon's loop at admission, maybe under older rules.
  const auto access = hub_->access();
  for (std::size_t i = 0; i < topics_.size(); ++i) {
    if (!access->on_subscribe_at(entries_[i])) continue;
    ++pending_;
    hub_->on_subscribe(identity_ ? &identity_->claims : nullptr, topics_[i], entries_[i],
                       [self](std::vector<std::shared_ptr<const std::string>> frames,
                              std::optional<HubError> error) {
                         if (self->finished_) return;
                         if (error)
                           self->send_event(error_frame({}, error->code, error->message), {});
                         for (const auto& f : frames) self->send_event(*f, {});
                         if (--self->pending_ == 0) self->release_held();
                       });
  }
  if (last_event_id_ && format_ == Format::Sse) {
    ++pending_;
    hub_->replay(topics_, *last_event_id_,
                 [self](std::vector<ReplayedEvent> events, std::vector<std::string> lost,
                        std::optional<OutboxPosition> seen) {
                   if (self->finished_) return;
                   self->seen_ = seen;
                   for (const auto& e : events) {
                     if (!self->send_replayed(*e.frame, e.id)) return;
                   }
                   // What could not be replayed: the client must reload those topics.
                   for (const auto& t : lost) self->send_event(resync_frame(t), {});
                   if (--self->pending_ == 0) self->release_held();
                 });
  }
}

bool StreamSession::send_replayed(std::string_view body, std::string_view id) {
  if (closing_ || finished_) return false;
  auto bytes = std::make_shared<const std::string>(sse_event(body, id));
  // The first replayed event always goes: each resume then gets at least one event further.
  if (replayed_any_ && stream_.queued_bytes() + bytes->size() > hub_->config.send_queue_bytes) {
    hub_->dropped("resume");
    closing_ = true;  // no live event may follow a gap
    end_soon();
    return false;
  }
  replayed_any_ = true;
  active_ = true;
  stream_.write(std::move(bytes));
  return true;
}

void StreamSession::release_held() {
  auto held = std::move(held_);
  held_.clear();
  held_bytes_ = 0;
  for (auto& h : held) {
    if (!already_seen(h.position)) send(std::move(h.bytes));
  }
}

bool StreamSession::already_seen(const OutboxPosition& p) {
  if (!seen_ || p.txid == 0) return false;
  if (*seen_ < p) {
    seen_.reset();  // past it: the rest comes in order
    return false;
  }
  return true;
}

void StreamSession::deliver(const HubMessage& message) {
  if (closing_) return;
  const auto& bytes = wire_bytes(message, format_ == Format::Sse ? Wire::Sse : Wire::Multipart);
  if (pending_ > 0) {
    if (over_limit(bytes->size())) return;
    held_bytes_ += bytes->size();
    held_.push_back({{message.outbox_txid, message.outbox_id}, bytes});
    return;
  }
  if (already_seen({message.outbox_txid, message.outbox_id})) return;
  send(bytes);
}

void StreamSession::resync(std::string_view topic) {
  send_event(resync_frame(topic), {});
}

void StreamSession::shutdown() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] { self->drop(); });
}

void StreamSession::drop() {
  closing_ = true;
  stream_.cut();
}

void StreamSession::end_soon() {
  if (!timer_) return drop();
  timer_->expires_after(std::chrono::seconds(1));
  timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->drop();
  });
}

void StreamSession::recheck() {
  if (closing_ || finished_) return;
  if (identity_ && !hub_->key_trusted(identity_->key_id)) {
    hub_->closed_for_key();
    send_event(error_frame({}, "unauthorized",
                           "the key that verified this token is no longer trusted; reconnect "
                           "with a new token"),
               {});
    closing_ = true;  // nothing more is sent; what is queued goes out before the end
    return end_soon();
  }
  const auth::Claims* claims = identity_ ? &identity_->claims : nullptr;
  for (std::size_t i = 0; i < topics_.size();) {
    auto d = hub_->access()->config.acl.check(topics_[i], auth::TopicAccess::Subscribe, claims);
    if (d.allowed) {
      entries_[i++] = d.entry;
      continue;
    }
    hub_->unsubscribed_forbidden();
    hub_->unsubscribe(*shard_, topics_[i], this);
    send_event(revoked_frame(topics_[i], d.message), {});
    topics_.erase(topics_.begin() + static_cast<std::ptrdiff_t>(i));
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (topics_.empty()) end_soon();
}

void StreamSession::send_event(std::string_view body, std::string_view id) {
  send(std::make_shared<const std::string>(format_ == Format::Sse ? sse_event(body, id)
                                                                  : multipart_part(body)));
}

bool StreamSession::over_limit(std::size_t more) {
  if (stream_.queued_bytes() + held_bytes_ + more <= hub_->config.send_queue_bytes) return false;
  // Nothing more can go out in order: close (the client reconnects and resumes).
  hub_->dropped("slow");
  drop();
  return true;
}

void StreamSession::send(std::shared_ptr<const std::string> bytes) {
  if (closing_ || finished_) return;
  if (over_limit(bytes->size())) return;
  active_ = true;
  stream_.write(std::move(bytes));
}

void StreamSession::watch_close() {
  // The client sends nothing after its request; a read completes only when it goes away.
  stream_.next_layer().socket().async_read_some(
      asio::buffer(&read_byte_, 1), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (!ec) return self->watch_close();
        self->closing_ = true;
        self->stream_.next_layer().close();
        self->finish();
      });
}

void StreamSession::heartbeat() {
  auto interval = format_ == Format::Sse ? hub_->config.sse_heartbeat : hub_->config.hippie_ping;
  timer_->expires_after(interval);
  timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closing_ || self->finished_) return;
    if (self->format_ == Format::Multipart) {
      self->send(kMultipartPing);
    } else if (!self->active_) {
      self->send(kSseHeartbeat);
    }
    self->active_ = false;
    self->heartbeat();
  });
}

void StreamSession::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  if (timer_) timer_->cancel();
  if (hub_->detached) return;
  for (const auto& t : topics_) hub_->unsubscribe(*shard_, t, this);
  held_.clear();
  if (admitted_) hub_->release(this);
}

}  // namespace pgfanout::hub

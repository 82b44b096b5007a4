#include "hub/HippiePoll.hpp"

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include "hub/ServerFrames.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

void answer(beast::tcp_stream&& stream, unsigned status, std::string body) {
  struct Reply {
    beast::tcp_stream stream;
    std::string text;
  };
  auto r = std::make_shared<Reply>(Reply{std::move(stream), {}});
  r->text = "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") +
            "\r\nServer: pgfanout/" PGFANOUT_VERSION
            "\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  r->stream.expires_after(std::chrono::seconds(10));
  asio::async_write(r->stream, asio::buffer(r->text), [r](beast::error_code, std::size_t) {
    beast::error_code ignored;
    r->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    r->stream.close();
  });
}

// Whether `id` looks like one random_client_id() hands out: 32 lowercase hex digits.
bool well_formed_client_id(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

class HippiePoll::Pipe : public std::enable_shared_from_this<Pipe>,
                         public Subscriber,
                         public HubConnection {
 public:
  Pipe(std::shared_ptr<HubState> hub, std::string id, std::string topic,
       std::optional<Identity> identity)
      : hub_(std::move(hub)),
        id_(std::move(id)),
        topic_(std::move(topic)),
        identity_(std::move(identity)),
        timer_(hub_->io) {}
  ~Pipe() { close(); }

  bool open() {
    if (!hub_->admit(this, hub_->shard(0))) return false;
    admitted_ = true;
    hub_->subscribe(hub_->shard(0), topic_, this);
    return true;
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    if (waiting_) answer(std::move(*waiting_), 200, "[]");
    waiting_.reset();
    if (hub_->detached) return;
    if (admitted_) {
      hub_->unsubscribe(hub_->shard(0), topic_, this);
      hub_->release(this);
    }
  }

  bool same_client(const std::optional<Identity>& identity) const {
    auto sub = [](const std::optional<Identity>& i) -> std::string {
      if (!i) return "\x01anonymous";
      auto it = i->claims.find("sub");
      return it == i->claims.end() ? std::string("\x01no sub") : it->second;
    };
    return sub(identity) == sub(identity_);
  }

  // Whether the client has come back with this pipe's id at least once.
  bool claimed() const { return claimed_; }

  void poll(beast::tcp_stream&& stream) {
    claimed_ = true;
    last_poll_ = std::chrono::steady_clock::now();
    if (waiting_) answer(std::move(*waiting_), 200, "[]");  // a newer poll replaces it
    waiting_.reset();
    if (!buffer_.empty()) return answer(std::move(stream), 200, flush());
    waiting_.emplace(std::move(stream));
    timer_.expires_after(hub_->config.hippie_ping);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->waiting_) return;
      answer(std::move(*self->waiting_), 200, R"([{"type":"ping"}])");
      self->waiting_.reset();
      self->last_poll_ = std::chrono::steady_clock::now();
    });
  }

  void deliver(const HubMessage& message) override {
    if (closed_ || overflow_) return;
    if (bytes_ + message.data->size() > hub_->config.send_queue_bytes) {
      hub_->dropped("slow");
      overflow_ = true;  // swept soon; the client starts over with a new pipe
      return;
    }
    bytes_ += message.data->size();
    buffer_.push_back(message.data);
    if (waiting_) {
      timer_.cancel();
      answer(std::move(*waiting_), 200, flush());
      waiting_.reset();
    }
  }
  void resync(std::string_view) override {}
  void shutdown() override { close(); }
  // A pipe has one topic: it closes when its key or its topic is no longer allowed (the client's
  // next poll then gets a new pipe, or 401 / 403).
  void recheck() override {
    if (closed_) return;
    if (identity_ && !hub_->key_trusted(identity_->key_id)) {
      hub_->closed_for_key();
      return close();
    }
    auto d = hub_->access()->config.acl.check(topic_, auth::TopicAccess::Subscribe,
                                              identity_ ? &identity_->claims : nullptr);
    if (!d.allowed) {
      hub_->unsubscribed_forbidden();
      close();
    }
  }

  // A pipe whose id never came back lives one ping interval; one polled, three after its last poll.
  bool expired(std::chrono::steady_clock::time_point now) const {
    if (overflow_ || closed_) return true;
    if (!claimed_) return now - last_poll_ > hub_->config.hippie_ping;
    return !waiting_ && now - last_poll_ > 3 * hub_->config.hippie_ping + std::chrono::seconds(1);
  }

 private:
  std::string flush() {
    std::string out = "[";
    for (std::size_t i = 0; i < buffer_.size(); ++i) {
      if (i > 0) out += ',';
      out += *buffer_[i];
    }
    out += ']';
    buffer_.clear();
    bytes_ = 0;
    return out;
  }

  std::shared_ptr<HubState> hub_;
  std::string id_;
  std::string topic_;
  std::optional<Identity> identity_;
  asio::steady_timer timer_;
  std::optional<beast::tcp_stream> waiting_;
  std::vector<std::shared_ptr<const std::string>> buffer_;
  std::size_t bytes_ = 0;
  std::chrono::steady_clock::time_point last_poll_ = std::chrono::steady_clock::now();
  bool admitted_ = false;
  bool claimed_ = false;
  bool closed_ = false;
  bool overflow_ = false;
};

HippiePoll::HippiePoll(std::shared_ptr<HubState> hub) : hub_(std::move(hub)) {}

HippiePoll::~HippiePoll() {
  stop();
}

void HippiePoll::poll(beast::tcp_stream&& stream, const std::string& channel,
                      const std::string& client_id, std::optional<Identity> identity) {
  const auth::Claims* c = identity ? &identity->claims : nullptr;
  auto d = hub_->access()->config.acl.check(channel, auth::TopicAccess::Subscribe, c);
  if (!d.allowed) {
    hub_->rejected(d.code);
    return answer(std::move(stream), d.code == "unauthorized" ? 401 : 403,
                  error_frame({}, d.code, d.message));
  }
  if (!client_id.empty()) {
    // Only ids this server hands out are looked up: anything else (too long, not hex, control
    // characters) is a client error, not a reason to open another pipe.
    if (!well_formed_client_id(client_id)) {
      hub_->rejected("bad_request");
      return answer(std::move(stream), 400,
                    error_frame({}, "bad_request",
                                "client_id is not one this server hands out (32 hex digits); "
                                "poll without client_id for a new one"));
    }
    auto it = pipes_.find(client_id);
    if (it != pipes_.end() && !it->second->expired(std::chrono::steady_clock::now()) &&
        it->second->same_client(identity)) {
      if (!it->second->claimed()) --unclaimed_;
      it->second->poll(std::move(stream));
      return;
    }
  }
  // An unknown or expired id gets a new pipe, as a first poll does. Pipes whose id has not come
  // back yet are held to half of hub.max_connections, so a client opening pipes it never polls
  // (thousands of made-up ids) cannot take every hub connection.
  if (unclaimed_ >= max_unclaimed()) {
    hub_->rejected("limit");
    return answer(std::move(stream), 503,
                  error_frame({}, "unavailable",
                              "too many new long-poll pipes waiting for their first poll"));
  }
  std::string id = random_client_id();
  auto pipe = std::make_shared<Pipe>(hub_, id, channel, std::move(identity));
  if (!pipe->open()) {
    return answer(std::move(stream), 503, error_frame({}, "unavailable", "too many connections"));
  }
  ++unclaimed_;
  pipes_.emplace(id, pipe);
  answer(std::move(stream), 200,
         R"([{"type":"hippie.pipe.set_client_id","client_id":")" + id + "\"}]");
  if (!sweeping_) sweep();
}

std::size_t HippiePoll::max_unclaimed() const {
  return std::max<std::size_t>(1, static_cast<std::size_t>(hub_->config.max_connections) / 2);
}

void HippiePoll::sweep() {
  sweeping_ = true;
  if (!sweep_timer_) sweep_timer_ = std::make_unique<asio::steady_timer>(hub_->io);
  sweep_timer_->expires_after(hub_->config.hippie_ping);
  std::weak_ptr<HippiePoll> weak = weak_from_this();
  sweep_timer_->async_wait([weak](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    auto now = std::chrono::steady_clock::now();
    for (auto it = self->pipes_.begin(); it != self->pipes_.end();) {
      if (it->second->expired(now)) {
        if (!it->second->claimed()) --self->unclaimed_;
        it->second->close();
        it = self->pipes_.erase(it);
      } else {
        ++it;
      }
    }
    self->sweeping_ = false;
    if (!self->pipes_.empty()) self->sweep();
  });
}

void HippiePoll::stop() {
  if (sweep_timer_) sweep_timer_->cancel();
  for (auto& [_, p] : pipes_) p->close();
  pipes_.clear();
  unclaimed_ = 0;
}

}  // namespace pgfanout::hub

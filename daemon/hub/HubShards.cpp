// HubState's part that spans the hub's event loops: placing sessions, the index of listened
// topics, delivering a pushed event on every loop, and running a task on each loop's connections.
#include <boost/asio/post.hpp>
#include <future>

#include "hub/HubState.hpp"
#include "hub/Wire.hpp"

namespace pgfanout::hub {

namespace {

// A pushed event as one loop delivers it: its own copy of the message (the lazily encoded wire
// forms are per loop), pointing at its own copy of the topic. Never moved once made.
struct LoopMessage {
  explicit LoopMessage(const HubMessage& m) : topic(m.topic), message(m) { message.topic = topic; }
  std::string topic;
  HubMessage message;
};

}  // namespace

HubShard& HubState::place() {
  return *shards_[next_shard_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
}

bool HubState::subscribe(HubShard& shard, std::string_view topic, Subscriber* s) {
  if (!shard.topics.subscribe(topic, s)) return false;
  std::unique_lock lock(listened_mutex_);
  auto it = listened_.find(topic);
  if (it == listened_.end()) it = listened_.emplace(std::string(topic), 0).first;
  ++it->second;
  return true;
}

bool HubState::unsubscribe(HubShard& shard, std::string_view topic, Subscriber* s) {
  if (!shard.topics.unsubscribe(topic, s)) return false;
  std::unique_lock lock(listened_mutex_);
  auto it = listened_.find(topic);
  if (it != listened_.end() && --it->second == 0) listened_.erase(it);
  return true;
}

bool HubState::listened(std::string_view topic) const {
  std::shared_lock lock(listened_mutex_);
  return listened_.find(topic) != listened_.end();
}

void HubState::publish(const HubMessage& m) {
  if (shards_.size() > 1 && !gone_->load()) {
    // The `event` frame of /ws clients, the common kind, is encoded here once for every loop.
    wire_bytes(m, Wire::WebSocketEvent);
    for (std::size_t i = 1; i < shards_.size(); ++i) {
      auto copy = std::make_unique<LoopMessage>(m);
      boost::asio::post(shards_[i]->io, [self = shared_from_this(), i, copy = std::move(copy)] {
        self->delivered(self->shards_[i]->topics.publish(copy->message));
      });
    }
  }
  delivered(shards_[0]->topics.publish(m));
}

void HubState::resync_all() {
  for (std::size_t i = 1; i < shards_.size() && !gone_->load(); ++i) {
    boost::asio::post(shards_[i]->io,
                      [self = shared_from_this(), i] { self->shards_[i]->topics.resync_all(); });
  }
  shards_[0]->topics.resync_all();
}

void HubState::on_each_loop(const std::function<void(std::vector<HubConnection*>&)>& task) {
  auto of_shard = [this](const HubShard* shard) {
    std::vector<HubConnection*> open;
    std::lock_guard lock(connections_mutex_);
    for (const auto& [c, s] : connections_) {
      if (s == shard) open.push_back(c);
    }
    return open;
  };
  // A connection is destroyed on its own loop only, so while the task runs there, the ones it
  // was given stay (or are released through release(), which the task can check).
  std::vector<std::future<void>> done;
  for (std::size_t i = 1; i < shards_.size() && !gone_->load(); ++i) {
    auto ran = std::make_shared<std::promise<void>>();
    done.push_back(ran->get_future());
    boost::asio::post(shards_[i]->io, [&task, &of_shard, shard = shards_[i].get(), ran] {
      auto open = of_shard(shard);
      task(open);
      ran->set_value();
    });
  }
  auto open = of_shard(shards_[0].get());
  task(open);
  for (auto& f : done) {
    // A loop stopped meanwhile drops the handler: its promise breaks, and there is nothing left
    // on it to wait for.
    try {
      f.get();
    } catch (const std::future_error&) {
    }
  }
}

}  // namespace pgfanout::hub

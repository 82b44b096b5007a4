#include "hub/TopicHub.hpp"

#include <algorithm>

namespace pgfanout::hub {

bool TopicHub::subscribe(std::string_view topic, Subscriber* s) {
  auto it = topics_.find(topic);
  if (it == topics_.end())
    it = topics_.emplace(std::string(topic), std::vector<Subscriber*>{}).first;
  auto& subs = it->second;
  if (std::find(subs.begin(), subs.end(), s) != subs.end()) return false;
  subs.push_back(s);
  ++subscriptions_;
  return true;
}

bool TopicHub::unsubscribe(std::string_view topic, Subscriber* s) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return false;
  auto& subs = it->second;
  auto pos = std::find(subs.begin(), subs.end(), s);
  if (pos == subs.end()) return false;
  // Order among subscribers does not matter: swap with the last one.
  *pos = subs.back();
  subs.pop_back();
  --subscriptions_;
  if (subs.empty()) topics_.erase(it);
  return true;
}

bool TopicHub::has_subscribers(std::string_view topic) const {
  return topics_.find(topic) != topics_.end();
}

std::size_t TopicHub::publish(const HubMessage& message) const {
  auto it = topics_.find(message.topic);
  if (it == topics_.end()) return 0;
  for (Subscriber* s : it->second) s->deliver(message);
  return it->second.size();
}

void TopicHub::resync_all() const {
  for (const auto& [topic, subs] : topics_) {
    for (Subscriber* s : subs) s->resync(topic);
  }
}

}  // namespace pgfanout::hub

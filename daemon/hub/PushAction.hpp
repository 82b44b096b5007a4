// PushAction: the `push` action, which sends an event to the subscribers of a topic.
//
//   - push: {topic: "user:{to_user}", event: message, data: "{new}"}
//
// `topic` and `event` are templates; `data` is optional: a single `{path}` inserts that JSON value
// as it is, other text becomes a JSON string; without it the payload's `new` object is sent if
// there is one, else the payload JSON, else the payload text as a string. render_push() builds the
// frame once; the executor (in Hub) shares it between all subscribers of the topic. Immutable.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rules/Action.hpp"
#include "rules/Template.hpp"

namespace pgfanout::hub {

class PushAction final : public rules::Action {
 public:
  PushAction(rules::Template topic, rules::Template event, std::optional<rules::Template> data,
             std::vector<std::string> data_path)
      : topic_(std::move(topic)),
        event_(std::move(event)),
        data_(std::move(data)),
        data_path_(std::move(data_path)) {}
  static constexpr std::string_view kKind = "push";
  std::string_view kind() const override { return kKind; }
  const rules::Template& topic() const { return topic_; }

  // Renders the event name and the data JSON. False (with `why`) when a field is missing.
  bool render(const rules::Event& event, std::string& name, std::string& data_json,
              std::string& why) const;

 private:
  rules::Template topic_;
  rules::Template event_;
  std::optional<rules::Template> data_;
  std::vector<std::string> data_path_;  // set when `data` is a single {path}
};

void register_push_action(rules::ActionRegistry& registry);

}  // namespace pgfanout::hub

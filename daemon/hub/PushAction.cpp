#include "hub/PushAction.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "config/YamlReader.hpp"
#include "hub/ServerFrames.hpp"

namespace pgfanout::hub {

namespace json = boost::json;

namespace {

// "{new}" or "{loc.lat}": a template that is one field and nothing else.
std::vector<std::string> single_field_path(const std::string& text) {
  if (text.size() < 3 || text.front() != '{' || text.back() != '}') return {};
  std::string inner = text.substr(1, text.size() - 2);
  if (inner == "channel" || inner == "payload") return {};
  std::vector<std::string> path;
  std::size_t start = 0;
  while (true) {
    auto dot = inner.find('.', start);
    std::string seg = inner.substr(start, dot == std::string::npos ? dot : dot - start);
    if (seg.empty()) return {};
    for (char c : seg) {
      if (c == '{' || c == '}' || c == ' ') return {};
    }
    path.push_back(seg);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return path;
}

}  // namespace

bool PushAction::render(const rules::Event& event, std::string& name, std::string& data_json,
                        std::string& why) const {
  std::string missing;
  name.clear();
  if (!event_.render(event, name, rules::Side::New, rules::Template::Escape::None, &missing)) {
    why = "field {" + missing + "} is missing in event template \"" + event_.source() + "\"";
    return false;
  }
  data_json.clear();
  if (!data_path_.empty()) {
    const json::value* v = event.find(data_path_);
    if (v == nullptr || v->is_null()) {
      why = "field " + data_.value().source() + " is missing in the payload";
      return false;
    }
    data_json = json::serialize(*v);
    return true;
  }
  if (data_) {
    std::string text;
    if (!data_->render(event, text, rules::Side::New, rules::Template::Escape::None, &missing)) {
      why = "field {" + missing + "} is missing in data template \"" + data_->source() + "\"";
      return false;
    }
    data_json = json_quote(text);
    return true;
  }
  const json::value* root = event.payload() ? event.payload()->json() : nullptr;
  if (root == nullptr) {
    data_json = json_quote(event.raw());
    return true;
  }
  if (const json::value* row_new = event.find({"new"});
      row_new != nullptr && row_new->is_object()) {
    data_json = json::serialize(*row_new);
    return true;
  }
  data_json = json::serialize(*root);
  return true;
}

namespace {

std::span<const config::KeySpec> push_action_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"rules[].actions[].push", Map, "", kReload, kPlain, kOptional,
   "Push the event to the WebSocket / SSE subscribers of a topic."},
  {"rules[].actions[].push.topic", Template, "", kReload, kPlain, kRequired,
   "The topic, e.g. `user:{to_user}`; a rendering that is not a valid topic skips the action."},
  {"rules[].actions[].push.event", Template, "message", kReload, kPlain, kOptional,
   "The `event` name clients see."},
  {"rules[].actions[].push.data", Template, "", kReload, kPlain, kOptional,
   "The `data`: a single `{path}` inserts that JSON value; other text becomes a JSON string. "
   "Default: the payload's `new` object, else the payload JSON, else its text."},
  };
  // clang-format on
  return kRows;
}

}  // namespace

void register_push_action(rules::ActionRegistry& registry) {
  registry.add_keys(push_action_keys());
  registry.add(
      "push", [](config::MapReader& item, std::string_view kind) -> std::unique_ptr<rules::Action> {
        YAML::Node value = item.node(kind);
        if (!value.IsMap()) {
          item.error(kind, "expected {topic: TEMPLATE, event: NAME, data: TEMPLATE}");
          return nullptr;
        }
        config::MapReader m(value, item.schema_path() + "." + std::string(kind),
                            item.key_path(kind), item.ctx());
        std::string topic = m.string("topic");
        std::string event = m.string("event");
        std::string data = m.has("data") ? m.string("data") : std::string();
        std::string error;
        auto topic_tpl = rules::Template::parse(topic, error);
        if (!topic_tpl) {
          m.error("topic", "bad template: " + error);
          return nullptr;
        }
        auto event_tpl = rules::Template::parse(event, error);
        if (!event_tpl) {
          m.error("event", "bad template: " + error);
          return nullptr;
        }
        std::optional<rules::Template> data_tpl;
        std::vector<std::string> path;
        if (m.has("data")) {
          data_tpl = rules::Template::parse(data, error);
          if (!data_tpl) {
            m.error("data", "bad template: " + error);
            return nullptr;
          }
          path = single_field_path(data);
        }
        return std::make_unique<PushAction>(std::move(*topic_tpl), std::move(*event_tpl),
                                            std::move(data_tpl), std::move(path));
      });
}

}  // namespace pgfanout::hub

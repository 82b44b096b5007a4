#include "hub/ServerFrames.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace pgfanout::hub {

std::string json_quote(std::string_view text) {
  return boost::json::serialize(boost::json::string(text));
}

namespace {

void add_ref(std::string& out, std::string_view ref_json) {
  if (ref_json.empty()) return;
  out += ",\"ref\":";
  out += ref_json;
}

}  // namespace

std::string event_frame(std::string_view topic, std::string_view event, std::string_view data_json,
                        std::string_view id) {
  std::string out;
  out.reserve(48 + topic.size() + event.size() + data_json.size());
  out += R"({"type":"event","topic":)";
  out += json_quote(topic);
  out += ",\"event\":";
  out += json_quote(event);
  out += ",\"data\":";
  out += data_json.empty() ? std::string_view("null") : data_json;
  if (!id.empty()) {
    out += ",\"id\":";
    if (id.find('/') == std::string_view::npos) {
      out += id;
    } else {
      out += json_quote(id);
    }
  }
  out += '}';
  return out;
}

std::string ack_frame(std::string_view ref_json, std::string_view result_json) {
  std::string out = R"({"type":"ack")";
  add_ref(out, ref_json);
  if (!result_json.empty()) {
    out += ",\"result\":";
    out += result_json;
  }
  out += '}';
  return out;
}

std::string error_frame(std::string_view ref_json, std::string_view code,
                        std::string_view message) {
  std::string out = R"({"type":"error")";
  add_ref(out, ref_json);
  out += ",\"code\":";
  out += json_quote(code);
  out += ",\"message\":";
  out += json_quote(message);
  out += '}';
  return out;
}

std::string revoked_frame(std::string_view topic, std::string_view message) {
  std::string out = R"({"type":"error","code":"forbidden","topic":)";
  out += json_quote(topic);
  out += R"(,"message":)";
  out += json_quote(message);
  out += '}';
  return out;
}

std::string resync_frame(std::string_view topic) {
  return R"({"type":"resync","topic":)" + json_quote(topic) + "}";
}

std::string pong_frame(std::string_view ref_json) {
  std::string out = R"({"type":"pong")";
  add_ref(out, ref_json);
  out += '}';
  return out;
}

std::string reply_frame(std::string_view ref_json, const HubResult& result) {
  if (result.error) return error_frame(ref_json, result.error->code, result.error->message);
  return ack_frame(ref_json, result.result_json);
}

}  // namespace pgfanout::hub

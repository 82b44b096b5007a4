#include "hub/ClientMessage.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "pg/ReplicationProtocol.hpp"

namespace pgfanout::hub {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxRef = 128;
constexpr std::size_t kMaxName = 128;
constexpr std::size_t kMaxArgs = 64;

ParsedClientMessage bad(std::string ref, std::string why) {
  ParsedClientMessage p;
  p.ref = std::move(ref);
  p.error_code = "bad_message";
  p.error = std::move(why);
  return p;
}

// Reads a required string field; sets `error` when it is absent or not a string.
bool string_field(const json::object& o, std::string_view key, std::string& out, std::string& error,
                  std::size_t max = 1 << 20) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    error = "\"" + std::string(key) + "\" must be a string";
    return false;
  }
  if (v->as_string().size() > max) {
    error = "\"" + std::string(key) + "\" is too long";
    return false;
  }
  out.assign(v->as_string().data(), v->as_string().size());
  return true;
}

ArgValue to_arg(const json::value& v) {
  ArgValue a;
  switch (v.kind()) {
    case json::kind::null:
      a.kind = ArgValue::Kind::Null;
      break;
    case json::kind::string:
      a.kind = ArgValue::Kind::String;
      a.text.assign(v.as_string().data(), v.as_string().size());
      break;
    case json::kind::bool_:
      a.kind = ArgValue::Kind::Bool;
      a.text = v.as_bool() ? "true" : "false";
      break;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      a.kind = ArgValue::Kind::Number;
      a.text = json::serialize(v);
      break;
    case json::kind::object:
      a.kind = ArgValue::Kind::Object;
      a.text = json::serialize(v);
      break;
    case json::kind::array:
      a.kind = ArgValue::Kind::Array;
      a.text = json::serialize(v);
      break;
  }
  return a;
}

}  // namespace

const ArgValue* find_arg(const ClientMessage& m, std::string_view name) {
  for (const auto& [k, v] : m.args) {
    if (k == name) return &v;
  }
  return nullptr;
}

ParsedClientMessage parse_client_message(std::string_view text) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 32;
  json::value doc = json::parse(text, ec, {}, opts);
  if (ec) return bad({}, "not valid JSON");
  if (!doc.is_object()) return bad({}, "a message must be a JSON object");
  const json::object& o = doc.as_object();

  std::string ref;
  if (const json::value* r = o.if_contains("ref")) {
    if (r->is_string() && r->as_string().size() <= kMaxRef) {
      ref = json::serialize(*r);
    } else if (r->is_int64() || r->is_uint64()) {
      ref = json::serialize(*r);
    } else if (!r->is_null()) {
      return bad({}, "\"ref\" must be a string of at most 128 characters or an integer");
    }
  }
  const json::value* type = o.if_contains("type");
  if (type == nullptr || !type->is_string()) return bad(ref, "\"type\" must be a string");
  std::string_view t(type->as_string().data(), type->as_string().size());

  ClientMessage m;
  m.ref = ref;
  std::string error;
  if (t == "subscribe" || t == "unsubscribe") {
    m.type = t == "subscribe" ? ClientMessageType::Subscribe : ClientMessageType::Unsubscribe;
    if (!string_field(o, "topic", m.topic, error, 1024)) return bad(ref, error);
    if (const json::value* after = o.if_contains("after");
        after != nullptr && m.type == ClientMessageType::Subscribe) {
      if (after->is_string()) {
        m.after =
            pg::parse_lsn(std::string_view(after->as_string().data(), after->as_string().size()));
      }
      if (!m.after) {
        return bad(ref, "\"after\" must be the id of an event from the WAL, such as \"0/16B3748\"");
      }
    }
  } else if (t == "publish") {
    m.type = ClientMessageType::Publish;
    if (!string_field(o, "topic", m.topic, error, 1024)) return bad(ref, error);
    const json::value* data = o.if_contains("data");
    if (data == nullptr) return bad(ref, "\"data\" is required");
    m.data = json::serialize(*data);
  } else if (t == "call") {
    m.type = ClientMessageType::Call;
    if (!string_field(o, "command", m.command, error, kMaxName)) return bad(ref, error);
    if (const json::value* args = o.if_contains("args"); args != nullptr && !args->is_null()) {
      if (!args->is_object()) return bad(ref, "\"args\" must be an object");
      if (args->as_object().size() > kMaxArgs) return bad(ref, "too many args");
      for (const auto& [k, v] : args->as_object()) {
        m.args.emplace_back(std::string(k), to_arg(v));
      }
    }
  } else if (t == "login") {
    m.type = ClientMessageType::Login;
    if (!string_field(o, "username", m.username, error, 256)) return bad(ref, error);
    if (!string_field(o, "password", m.password, error, 1024)) return bad(ref, error);
  } else if (t == "auth") {
    m.type = ClientMessageType::Auth;
    if (!string_field(o, "token", m.token, error, 16 * 1024)) return bad(ref, error);
  } else if (t == "ping") {
    m.type = ClientMessageType::Ping;
  } else {
    return bad(ref, "unknown message type");
  }
  ParsedClientMessage p;
  p.ref = std::move(ref);
  p.message = std::move(m);
  return p;
}

}  // namespace pgfanout::hub

// ClientMessage: one JSON message a WebSocket client sends, parsed and validated.
//
// parse_client_message() accepts exactly the shapes docs/protocol.md lists (`type` plus that
// type's fields; unknown fields are ignored, wrong types are errors) and never throws: a bad
// message gives an error code and text, plus the message's `ref` when one could be read, so the
// reply can still carry it. Values that go on to PostgreSQL keep their JSON kind (ArgValue) so a
// command can refuse an object where it expects text. Pure functions; any thread. Fuzzed by
// fuzz/client_message_fuzz.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgfanout::hub {

enum class ClientMessageType { Subscribe, Unsubscribe, Publish, Call, Login, Auth, Ping };

// One value of a call's `args` object.
struct ArgValue {
  enum class Kind { Null, String, Number, Bool, Object, Array };
  Kind kind = Kind::Null;
  std::string text;  // strings as they are; other kinds as compact JSON; "" for null
};

struct ClientMessage {
  ClientMessageType type = ClientMessageType::Ping;
  std::string ref;    // the `ref` as JSON text (a string or an integer), "" when absent
  std::string topic;  // subscribe, unsubscribe, publish
  // subscribe: resume after this event (its id, a WAL position) from the hub's history.
  std::optional<std::uint64_t> after;
  std::string data;  // publish: the `data` value as compact JSON
  std::string command;
  std::vector<std::pair<std::string, ArgValue>> args;  // call, in the order sent
  std::string username, password;                      // login
  std::string token;                                   // auth
};

struct ParsedClientMessage {
  std::optional<ClientMessage> message;
  std::string ref;         // as in ClientMessage, also when the message is invalid
  std::string error_code;  // bad_message when !message
  std::string error;
};

[[nodiscard]] ParsedClientMessage parse_client_message(std::string_view text);

// The value of argument `name`, or nullptr.
const ArgValue* find_arg(const ClientMessage& m, std::string_view name);

}  // namespace pgfanout::hub

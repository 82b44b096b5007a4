// ServerFrames: the JSON messages the hub sends to clients (docs/protocol.md), as text.
//
// `ref` and `data` / `result` arguments are JSON text already (the client's ref as it was parsed,
// a payload or a row set); everything else is escaped here. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hub/HubResult.hpp"

namespace pgfanout::hub {

// `id`: the event's id as SSE carries it — an outbox id (digits, a JSON number in the frame) or a
// WAL position ("16/B374D848", a JSON string); empty for none.
std::string event_frame(std::string_view topic, std::string_view event, std::string_view data_json,
                        std::string_view id);
// {"type":"ack","ref":..,"result":..}; `result_json` empty: no result.
std::string ack_frame(std::string_view ref_json, std::string_view result_json = {});
std::string error_frame(std::string_view ref_json, std::string_view code, std::string_view message);
// The ack (with the result) or the error frame of an operation's outcome.
std::string reply_frame(std::string_view ref_json, const HubResult& result);
std::string resync_frame(std::string_view topic);
// A subscription the access rules no longer allow (after a reload): `error forbidden` naming it.
std::string revoked_frame(std::string_view topic, std::string_view message);
std::string pong_frame(std::string_view ref_json);

// A JSON string literal for `text` (quoted and escaped).
std::string json_quote(std::string_view text);

}  // namespace pgfanout::hub

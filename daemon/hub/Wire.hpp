// Wire: hub messages as the bytes a session writes — a WebSocket text frame, an SSE event, a part
// of Web::Hippie's multipart stream.
//
// A pushed event is encoded once per kind of subscriber and the buffer is shared by all of them
// (wire_bytes() keeps it in the HubMessage); a session's own replies are encoded per message.
// Server frames are never masked and never fragmented. Pure functions; wire_bytes() on the event
// loop's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "hub/TopicHub.hpp"

namespace pgfanout::hub {

enum class Wire : std::size_t {
  WebSocketEvent = 0,  // the `event` frame, for /ws clients
  WebSocketData = 1,   // the bare data, for Hippie WebSocket clients
  Sse = 2,             // `id:` (durable events) and `data:` lines
  Multipart = 3,       // a part of /_hippie/mxhr
};

std::string websocket_text_frame(std::string_view payload);
// `id` empty: no `id:` line.
std::string sse_event(std::string_view frame, std::string_view id);
std::string multipart_part(std::string_view data);

const std::shared_ptr<const std::string>& wire_bytes(const HubMessage& message, Wire wire);

}  // namespace pgfanout::hub

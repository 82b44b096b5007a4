#include "hub/Wire.hpp"

namespace pgfanout::hub {

std::string websocket_text_frame(std::string_view payload) {
  std::string out;
  const std::size_t n = payload.size();
  out.reserve(n + 10);
  out.push_back(static_cast<char>(0x81));  // FIN, text
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xff));
    }
  }
  out.append(payload);
  return out;
}

std::string sse_event(std::string_view frame, std::string_view id) {
  std::string out;
  out.reserve(frame.size() + 32);
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  out += "data: ";
  out += frame;  // JSON as the hub writes it: no raw newlines
  out += "\n\n";
  return out;
}

std::string multipart_part(std::string_view data) {
  std::string out = "Content-Type: application/json\n\n";
  out += data;
  out += "\n--|||\n";
  return out;
}

const std::shared_ptr<const std::string>& wire_bytes(const HubMessage& message, Wire wire) {
  auto& slot = message.wire[static_cast<std::size_t>(wire)];
  if (slot) return slot;
  switch (wire) {
    case Wire::WebSocketEvent:
      slot = std::make_shared<const std::string>(websocket_text_frame(*message.frame));
      break;
    case Wire::WebSocketData:
      slot = std::make_shared<const std::string>(websocket_text_frame(*message.data));
      break;
    case Wire::Sse:
      slot = std::make_shared<const std::string>(sse_event(*message.frame, message.id));
      break;
    case Wire::Multipart:
      slot = std::make_shared<const std::string>(multipart_part(*message.data));
      break;
  }
  return slot;
}

}  // namespace pgfanout::hub

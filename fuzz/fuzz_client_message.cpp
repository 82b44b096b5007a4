// libFuzzer target for the hub's client message parser: any input must be answered (a message or
// an error) without crashing, and whatever ref it yields must produce replies that are valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json/parse.hpp>

#include "hub/ClientMessage.hpp"
#include "hub/ServerFrames.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = pgfanout::hub::parse_client_message(text);
  if (!parsed.message && parsed.error_code.empty()) std::abort();
  std::string reply = parsed.message
                          ? pgfanout::hub::ack_frame(parsed.message->ref, "[]")
                          : pgfanout::hub::error_frame(parsed.ref, parsed.error_code, parsed.error);
  boost::system::error_code ec;
  boost::json::parse(reply, ec);
  if (ec) std::abort();
  if (parsed.message && parsed.message->type == pgfanout::hub::ClientMessageType::Publish) {
    boost::json::parse(parsed.message->data, ec);
    if (ec) std::abort();
  }
  return 0;
}

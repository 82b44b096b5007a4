// HubResult: the outcome of a hub operation (a command, a login, a publish, an on_subscribe
// query) as data. The operation says what happened; the session that asked turns it into its own
// wire format — an ack or error frame on a WebSocket or SSE stream, an HTTP status for a Hippie
// publish, nothing for a Hippie client's successful publish — with reply_frame() or by hand.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace pgfanout::hub {

struct HubError {
  std::string code;     // the protocol's error code (docs/protocol.md)
  std::string message;  // for the client
};

struct HubResult {
  std::optional<HubError> error;  // set when the operation failed
  std::string result_json;        // on success: what the ack carries (JSON text), or empty

  bool ok() const { return !error.has_value(); }
  static HubResult success(std::string result_json = {}) {
    return {std::nullopt, std::move(result_json)};
  }
  static HubResult failure(std::string code, std::string message) {
    return {HubError{std::move(code), std::move(message)}, {}};
  }
};

}  // namespace pgfanout::hub

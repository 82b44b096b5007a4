// WebhookSignature: signing per the Standard Webhooks specification (standardwebhooks.com).
//
// A request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`:
// `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, one entry per secret, separated
// by spaces, so a receiver can rotate keys by accepting either. A secret is written
// `whsec_<base64 key>` (the prefix is optional); the key is the decoded bytes. Pure functions and
// immutable values; safe on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgfanout::webhook {

// One signing key, decoded.
struct SigningKey {
  std::string bytes;
};

// Decodes "whsec_<base64>" (or bare base64). Returns nullopt and sets `error` when the text is
// not valid base64 or decodes to nothing.
std::optional<SigningKey> parse_signing_key(std::string_view text, std::string& error);

// Splits a space-separated list of secrets and decodes each.
std::optional<std::vector<SigningKey>> parse_signing_keys(std::string_view text,
                                                          std::string& error);

// The `webhook-signature` header value: "v1,<sig>" for each key, space-separated.
std::string sign(const std::vector<SigningKey>& keys, std::string_view id, std::int64_t timestamp,
                 std::string_view body);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pgfanout::webhook

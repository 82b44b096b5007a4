// JwtVerifier: checks JSON Web Tokens (JWS compact form) with OpenSSL.
//
// One verifier accepts exactly one algorithm, fixed by the config: HS256 (a shared secret), RS256
// or ES256 (a PEM public key). A token whose header names any other algorithm, `none` included,
// is refused before its signature is looked at, so a public key can never be used as an HMAC
// secret (algorithm confusion). After the signature, `exp` and `nbf` are checked with a small
// leeway, and `aud` / `iss` when the config names them. The claims of a valid token are returned
// as text (strings as they are, numbers and booleans as JSON), which is what topic patterns and
// command parameters bind to. Immutable after create(); verify() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pgfanout::auth {

// The top-level scalar claims of a verified token, as text.
using Claims = std::map<std::string, std::string, std::less<>>;

enum class JwtAlgorithm { HS256, RS256, ES256 };

std::optional<JwtAlgorithm> parse_jwt_algorithm(std::string_view name);
std::string_view jwt_algorithm_name(JwtAlgorithm alg);

struct JwtOptions {
  JwtAlgorithm algorithm = JwtAlgorithm::HS256;
  std::string secret;          // HS256
  std::string public_key_pem;  // RS256, ES256
  std::string audience;        // required `aud` (string or one of an array) when set
  std::string issuer;          // required `iss` when set
  std::chrono::seconds leeway{30};
};

struct JwtResult {
  bool ok = false;
  // When !ok: malformed, algorithm, signature, expired, not_yet_valid, audience, issuer.
  std::string reason;
  std::string message;
  Claims claims;
};

class JwtVerifier {
 public:
  // Loads the key; returns nullptr and sets `error` when it is unusable.
  static std::unique_ptr<JwtVerifier> create(JwtOptions options, std::string& error);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  [[nodiscard]] JwtResult verify(std::string_view token, std::int64_t now_unix) const;
  [[nodiscard]] JwtResult verify(std::string_view token) const;
  const JwtOptions& options() const { return options_; }

 private:
  explicit JwtVerifier(JwtOptions options);
  bool check_signature(std::string_view signed_part, const std::string& signature) const;

  JwtOptions options_;
  struct Key;
  std::unique_ptr<Key> key_;
};

// Signs `payload_json` (a JSON object's text) with `key`: the secret for HS256, a PEM private key
// for RS256 / ES256. Returns "" when the key is unusable. Used to mint login tokens (and by tests).
std::string jwt_sign(JwtAlgorithm alg, std::string_view payload_json, std::string_view key,
                     std::string_view header_json = {});

std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace pgfanout::auth

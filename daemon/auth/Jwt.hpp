// JwtVerifier: checks JSON Web Tokens (JWS compact form) with OpenSSL.
//
// Its keys are either one, fixed by the config — HS256 (a shared secret), RS256, ES256 or EdDSA (a
// PEM public key) — or a key set (auth/Jwks.hpp, from a JWKS file or URL) plus, optionally, the
// HS256 secret. The token header's `kid` selects the key of a set; the token's `alg` must be the
// one algorithm that key verifies (RSA: RS256, EC P-256: ES256, Ed25519: EdDSA, and the JWK's
// own `alg` when it names one); HS256 is only ever checked with the configured secret and `none`
// never. Anything else is refused before the signature is looked at, so a public key can never
// be used as an HMAC secret nor a key of one type for another algorithm (algorithm confusion).
// After the signature, `exp` and `nbf` are checked with a small leeway, and `aud` / `iss` when
// the config names them. The claims of a valid token are returned as text (strings as they are,
// numbers and booleans as JSON), which is what topic patterns and command parameters bind to.
//
// verify() may be called from any thread. The key set can be swapped at run time
// (replace_keys(), e.g. by a JWKS refresh): a verify() in progress finishes with the set it
// started with.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/Jwks.hpp"

namespace pgfanout::auth {

// The top-level scalar claims of a verified token, as text.
using Claims = std::map<std::string, std::string, std::less<>>;

std::optional<JwtAlgorithm> parse_jwt_algorithm(std::string_view name);
std::string_view jwt_algorithm_name(JwtAlgorithm alg);

struct JwtOptions {
  JwtAlgorithm algorithm = JwtAlgorithm::HS256;
  std::string secret;          // HS256
  std::string public_key_pem;  // RS256, ES256, EdDSA (without a key set)
  // Public keys come from a key set (auth.jwt.jwks_file / jwks_url): `algorithm` and
  // public_key_pem are not used, HS256 tokens are accepted only when `secret` is set.
  bool key_set = false;
  std::shared_ptr<const JwkSet> keys;  // the first set (jwks_file); null: none yet (jwks_url)
  std::string audience;                // required `aud` (string or one of an array) when set
  std::string issuer;                  // required `iss` when set
  std::chrono::seconds leeway{30};
};

struct JwtResult {
  bool ok = false;
  // When !ok: malformed, algorithm, unknown_key (no key with the token's kid, or no keys yet),
  // signature, expired, not_yet_valid, audience, issuer.
  std::string reason;
  std::string message;
  Claims claims;
  // The key id of the key that verified the token ("" for the HS256 secret or a key without
  // kid); with unknown_key, the kid the token named.
  std::string kid;
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

  // Swaps in `keys` (non-null) and returns the kids of the previous set that `keys` lacks, so
  // that sessions verified with them can be ended.
  std::vector<std::string> replace_keys(std::shared_ptr<const JwkSet> keys);
  bool has_key(std::string_view kid) const;
  std::shared_ptr<const JwkSet> keys() const;

 private:
  explicit JwtVerifier(JwtOptions options);

  JwtOptions options_;
  bool hs256_ = false;  // HS256 tokens are checked with options_.secret
  mutable std::mutex mutex_;
  std::shared_ptr<const JwkSet> keys_;  // never null; guarded by mutex_
};

// Signs `payload_json` (a JSON object's text) with `key`: the secret for HS256, a PEM private key
// for RS256 / ES256 / EdDSA. Returns "" when the key is unusable. Used to mint login tokens (and by
// tests).
std::string jwt_sign(JwtAlgorithm alg, std::string_view payload_json, std::string_view key,
                     std::string_view header_json = {});

std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace pgfanout::auth

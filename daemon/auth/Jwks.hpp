// JwkSet: the public keys of a JSON Web Key Set (RFC 7517), as OpenSSL keys.
//
// parse_jwks() reads `{"keys":[...]}`: RSA keys (`n`, `e`, at least 2048 bits), EC keys on P-256
// (`crv`, `x`, `y`) and OKP Ed25519 keys (`crv`, `x`). Each key verifies exactly one JWS
// algorithm, fixed by its type: RSA → RS256, EC P-256 → ES256, OKP Ed25519 → EdDSA. A key whose
// `alg` names another algorithm, whose `use` is not "sig", that carries private material (`d`),
// whose kid repeats an earlier one or whose numbers do not make a valid key is skipped with a
// reason; the set is unusable (an error) only when no key is left. Immutable once parsed and
// shared by shared_ptr between the verifier and whoever swaps it, so any thread may read it.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pgfanout::auth {

enum class JwtAlgorithm { HS256, RS256, ES256, EdDSA };

struct Jwk {
  std::string kid;         // "" when the JWK has none
  JwtAlgorithm algorithm;  // the one algorithm this key verifies
  std::shared_ptr<EVP_PKEY> key;
};

class JwkSet {
 public:
  JwkSet() = default;
  explicit JwkSet(std::vector<Jwk> keys, bool any_kid = false)
      : keys_(std::move(keys)), any_kid_(any_kid) {}

  // The key a token's header selects: the one with that kid; for a token without kid, the only
  // key of a one-key set. A set made from one PEM key (`any_kid`) answers with it whatever the
  // kid, as before key sets existed. nullptr when none fits.
  const Jwk* select(std::string_view kid, bool has_kid) const;
  bool has(std::string_view kid) const;
  const std::vector<Jwk>& keys() const { return keys_; }
  std::vector<std::string> kids() const;
  std::size_t size() const { return keys_.size(); }

 private:
  std::vector<Jwk> keys_;
  bool any_kid_ = false;
};

struct JwksParse {
  std::shared_ptr<const JwkSet> set;  // null when `error` is set
  std::vector<std::string> skipped;   // one line per key left out: "kid \"x\": reason"
  std::string error;
};

// Parses a JWKS document. An error when it is not a JSON object with a `keys` array or when none
// of its keys is usable.
JwksParse parse_jwks(std::string_view json_text);

// The algorithm a PEM / OpenSSL key can verify (RS256 for RSA of 2048 bits or more, ES256 for EC
// P-256, EdDSA for Ed25519); false with a reason otherwise.
bool key_algorithm(EVP_PKEY* key, JwtAlgorithm& out, std::string& reason);

}  // namespace pgfanout::auth

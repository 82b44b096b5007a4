#include "auth/Jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <set>

#include "auth/Jwt.hpp"

namespace pgfanout::auth {

namespace json = boost::json;

namespace {

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) {
  return k == nullptr ? nullptr : std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

// A base64url member of the JWK, decoded; "" (and `reason` set) when missing or not base64url.
std::string member(const json::object& jwk, const char* name, std::string& reason) {
  const json::value* v = jwk.if_contains(name);
  if (v == nullptr || !v->is_string()) {
    reason = std::string("no `") + name + "`";
    return {};
  }
  auto bytes = base64url_decode(v->as_string());
  if (!bytes || bytes->empty()) {
    reason = std::string("`") + name + "` is not base64url";
    return {};
  }
  return *bytes;
}

std::string text_member(const json::object& jwk, const char* name) {
  const json::value* v = jwk.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

EVP_PKEY* from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return key;
}

std::shared_ptr<EVP_PKEY> rsa_key(const json::object& jwk, std::string& reason) {
  std::string n = member(jwk, "n", reason);
  std::string e = member(jwk, "e", reason);
  if (n.empty() || e.empty()) return nullptr;
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  EVP_PKEY* key = nullptr;
  if (bn_n != nullptr && bn_e != nullptr && bld != nullptr &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
    key = from_params("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  if (key == nullptr) reason = "`n` and `e` do not make an RSA key";
  return own(key);
}

std::shared_ptr<EVP_PKEY> ec_key(const json::object& jwk, std::string& reason) {
  if (text_member(jwk, "crv") != "P-256") {
    reason = "EC curve \"" + text_member(jwk, "crv") + "\" is not supported (P-256)";
    return nullptr;
  }
  std::string x = member(jwk, "x", reason);
  std::string y = member(jwk, "y", reason);
  if (x.empty() || y.empty()) return nullptr;
  if (x.size() != 32 || y.size() != 32) {
    reason = "P-256 coordinates must be 32 bytes";
    return nullptr;
  }
  std::string point = "\x04" + x + y;  // uncompressed
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  EVP_PKEY* key = nullptr;
  if (bld != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ==
          1) {
    key = from_params("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  if (key != nullptr) {  // the point must lie on the curve
    EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
    bool valid = check != nullptr && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
    if (!valid) {
      EVP_PKEY_free(key);
      key = nullptr;
    }
  }
  if (key == nullptr) reason = "`x` and `y` are not a point on P-256";
  return own(key);
}

std::shared_ptr<EVP_PKEY> okp_key(const json::object& jwk, std::string& reason) {
  if (text_member(jwk, "crv") != "Ed25519") {
    reason = "OKP curve \"" + text_member(jwk, "crv") + "\" is not supported (Ed25519)";
    return nullptr;
  }
  std::string x = member(jwk, "x", reason);
  if (x.empty()) return nullptr;
  if (x.size() != 32) {
    reason = "an Ed25519 `x` must be 32 bytes";
    return nullptr;
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size());
  if (key == nullptr) reason = "`x` is not an Ed25519 public key";
  return own(key);
}

// One JWK as a key, or nullopt with the reason it is left out.
std::optional<Jwk> read_jwk(const json::object& jwk, std::string& reason) {
  const std::string kty = text_member(jwk, "kty");
  const std::string use = text_member(jwk, "use");
  if (jwk.contains("use") && use != "sig") {
    reason = "use \"" + use + "\" is not \"sig\"";
    return std::nullopt;
  }
  if (jwk.contains("d") || jwk.contains("p") || jwk.contains("k")) {
    reason = "holds private or symmetric key material; publish public keys only";
    return std::nullopt;
  }
  Jwk out;
  out.kid = text_member(jwk, "kid");
  if (kty == "RSA") {
    out.key = rsa_key(jwk, reason);
  } else if (kty == "EC") {
    out.key = ec_key(jwk, reason);
  } else if (kty == "OKP") {
    out.key = okp_key(jwk, reason);
  } else {
    reason = "kty \"" + kty + "\" is not supported (RSA, EC, OKP)";
    return std::nullopt;
  }
  if (!out.key || !key_algorithm(out.key.get(), out.algorithm, reason)) return std::nullopt;
  if (jwk.contains("alg")) {
    std::string alg = text_member(jwk, "alg");
    if (alg != jwt_algorithm_name(out.algorithm)) {
      reason = "alg \"" + alg + "\" is not supported for this key (" +
               std::string(jwt_algorithm_name(out.algorithm)) + ")";
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace

bool key_algorithm(EVP_PKEY* key, JwtAlgorithm& out, std::string& reason) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < 2048) {
      reason = "an RSA key must have at least 2048 bits";
      return false;
    }
    out = JwtAlgorithm::RS256;
    return true;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) != 1 ||
        std::string_view(group) != "prime256v1") {
      reason = "an EC key must be on curve P-256";
      return false;
    }
    out = JwtAlgorithm::ES256;
    return true;
  }
  if (EVP_PKEY_is_a(key, "ED25519")) {
    out = JwtAlgorithm::EdDSA;
    return true;
  }
  reason = "not an RSA, EC P-256 or Ed25519 key";
  return false;
}

const Jwk* JwkSet::select(std::string_view kid, bool has_kid) const {
  if (any_kid_ || !has_kid) return keys_.size() == 1 ? &keys_.front() : nullptr;
  for (const auto& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

bool JwkSet::has(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (k.kid == kid) return true;
  }
  return false;
}

std::vector<std::string> JwkSet::kids() const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& k : keys_) out.push_back(k.kid);
  return out;
}

JwksParse parse_jwks(std::string_view text) {
  JwksParse r;
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  const json::value* keys = ec || !doc.is_object() ? nullptr : doc.as_object().if_contains("keys");
  if (keys == nullptr || !keys->is_array()) {
    r.error = "not a JWKS (a JSON object with a \"keys\" array)";
    return r;
  }
  std::vector<Jwk> usable;
  std::set<std::string> seen;
  std::size_t index = 0;
  for (const auto& v : keys->as_array()) {
    std::string name = "key " + std::to_string(index++);
    std::string reason;
    std::optional<Jwk> jwk;
    if (!v.is_object()) {
      reason = "not a JSON object";
    } else {
      if (std::string kid = text_member(v.as_object(), "kid"); !kid.empty()) {
        name = "kid \"" + kid + "\"";
      }
      jwk = read_jwk(v.as_object(), reason);
      if (jwk && !seen.insert(jwk->kid).second) {
        reason = "the kid appears more than once (the first one is used)";
        jwk.reset();
      }
    }
    if (jwk) {
      usable.push_back(std::move(*jwk));
    } else {
      r.skipped.push_back(name + ": " + reason);
    }
  }
  if (usable.empty()) {
    r.error = keys->as_array().empty() ? "the JWKS has no keys" : "the JWKS has no usable key";
    return r;
  }
  r.set = std::make_shared<const JwkSet>(std::move(usable));
  return r;
}

}  // namespace pgfanout::auth

#include "auth/Jwt.hpp"

#include <cstdint>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace pgfanout::auth {

namespace json = boost::json;

namespace {

JwtResult refuse(std::string reason, std::string message) {
  JwtResult r;
  r.reason = std::move(reason);
  r.message = std::move(message);
  return r;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey read_pem(std::string_view pem, bool is_private) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return nullptr;
  EVP_PKEY* k = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                           : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  return Pkey(k);
}

// Whether `key` verifies (and signs) `alg`.
bool key_fits(JwtAlgorithm alg, EVP_PKEY* key, std::string& error) {
  JwtAlgorithm actual{};
  if (!key_algorithm(key, actual, error)) return false;
  if (actual != alg) {
    error = std::string(jwt_algorithm_name(alg)) + (alg == JwtAlgorithm::RS256 ? " needs an RSA key"
                                                    : alg == JwtAlgorithm::ES256
                                                        ? " needs an EC key on curve P-256"
                                                        : " needs an Ed25519 key");
    return false;
  }
  return true;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

// JWS ES256 signatures are r || s (32 bytes each); OpenSSL speaks DER.
std::string es256_raw_to_der(const std::string& raw) {
  if (raw.size() != 64) return {};
  ECDSA_SIG* sig = ECDSA_SIG_new();
  auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  std::string out;
  if (len > 0) out.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

std::string es256_der_to_raw(const std::string& der) {
  auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return {};
  std::string out(64, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), o, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), o + 32, 32);
  ECDSA_SIG_free(sig);
  return out;
}

// A NumericDate claim as seconds. A value outside int64 (or NaN) is not a date: nullopt, so the
// token is refused rather than the conversion being undefined.
std::optional<std::int64_t> numeric_date(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) {
    if (v.as_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(v.as_uint64());
  }
  if (v.is_double()) {
    double d = v.as_double();
    // 2^63 is exactly representable; anything at or beyond it (or NaN) does not fit.
    if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0)) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

// Whether `signature` is right for `signed_part` under `key` with `alg` (not HS256).
bool check_signature(JwtAlgorithm alg, EVP_PKEY* key, std::string_view signed_part,
                     const std::string& signature) {
  std::string der;
  const std::string* sig = &signature;
  if (alg == JwtAlgorithm::ES256) {
    der = es256_raw_to_der(signature);
    if (der.empty()) return false;
    sig = &der;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const EVP_MD* md = alg == JwtAlgorithm::EdDSA ? nullptr : EVP_sha256();
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                          sig->size(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                          signed_part.size()) == 1;
}

}  // namespace

std::optional<JwtAlgorithm> parse_jwt_algorithm(std::string_view name) {
  if (name == "HS256") return JwtAlgorithm::HS256;
  if (name == "RS256") return JwtAlgorithm::RS256;
  if (name == "ES256") return JwtAlgorithm::ES256;
  if (name == "EdDSA") return JwtAlgorithm::EdDSA;
  return std::nullopt;
}

std::string_view jwt_algorithm_name(JwtAlgorithm alg) {
  switch (alg) {
    case JwtAlgorithm::HS256:
      return "HS256";
    case JwtAlgorithm::RS256:
      return "RS256";
    case JwtAlgorithm::ES256:
      return "ES256";
    case JwtAlgorithm::EdDSA:
      return "EdDSA";
  }
  return "?";
}

std::unique_ptr<JwtVerifier> JwtVerifier::create(JwtOptions options, std::string& error) {
  std::unique_ptr<JwtVerifier> v(new JwtVerifier(std::move(options)));
  const JwtOptions& o = v->options_;
  v->hs256_ = o.key_set ? !o.secret.empty() : o.algorithm == JwtAlgorithm::HS256;
  if (v->hs256_ && o.secret.size() < 32) {
    error = "an HS256 secret must be at least 32 bytes";
    return nullptr;
  }
  if (o.key_set) {
    v->keys_ = o.keys ? o.keys : std::make_shared<const JwkSet>();
    return v;
  }
  v->keys_ = std::make_shared<const JwkSet>();
  if (o.algorithm == JwtAlgorithm::HS256) return v;
  Pkey pkey = read_pem(o.public_key_pem, false);
  if (!pkey) {
    error = "cannot read the public key (PEM \"BEGIN PUBLIC KEY\" expected)";
    return nullptr;
  }
  if (!key_fits(o.algorithm, pkey.get(), error)) return nullptr;
  Jwk key{"", o.algorithm, std::shared_ptr<EVP_PKEY>(pkey.release(), EVP_PKEY_free)};
  v->keys_ = std::make_shared<const JwkSet>(std::vector<Jwk>{std::move(key)}, true);
  return v;
}

JwtVerifier::JwtVerifier(JwtOptions options) : options_(std::move(options)) {}

JwtVerifier::~JwtVerifier() = default;

std::vector<std::string> JwtVerifier::replace_keys(std::shared_ptr<const JwkSet> keys) {
  if (!keys) keys = std::make_shared<const JwkSet>();
  std::shared_ptr<const JwkSet> old;
  {
    std::lock_guard lock(mutex_);
    old = std::exchange(keys_, keys);
  }
  std::vector<std::string> removed;
  for (const auto& k : old->keys()) {
    if (!keys->has(k.kid)) removed.push_back(k.kid);
  }
  return removed;
}

bool JwtVerifier::has_key(std::string_view kid) const {
  return keys()->has(kid);
}

std::shared_ptr<const JwkSet> JwtVerifier::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

JwtResult JwtVerifier::verify(std::string_view token) const {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return verify(token, now.count());
}

JwtResult JwtVerifier::verify(std::string_view token, std::int64_t now) const {
  if (token.size() > 16 * 1024) return refuse("malformed", "token too long");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return refuse("malformed", "not a JWS compact token");
  }
  auto header_text = base64url_decode(token.substr(0, dot1));
  auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!header_text || !payload_text || !signature) return refuse("malformed", "bad base64url");

  boost::system::error_code ec;
  json::value header = json::parse(*header_text, ec);
  if (ec || !header.is_object()) return refuse("malformed", "header is not a JSON object");
  const json::value* alg_value = header.as_object().if_contains("alg");
  const json::value* kid_value = header.as_object().if_contains("kid");
  std::optional<JwtAlgorithm> alg;
  if (alg_value != nullptr && alg_value->is_string()) {
    alg = parse_jwt_algorithm(alg_value->as_string());
  }
  if (!alg || (*alg == JwtAlgorithm::HS256 && !hs256_) ||
      (!options_.key_set && *alg != options_.algorithm)) {
    return refuse("algorithm", options_.key_set
                                   ? "token algorithm is not accepted (HS256 with the secret, "
                                     "RS256, ES256 or EdDSA with a key of the key set)"
                                   : "token algorithm is not the configured " +
                                         std::string(jwt_algorithm_name(options_.algorithm)));
  }
  if (kid_value != nullptr && !kid_value->is_string()) {
    return refuse("malformed", "kid is not a string");
  }
  if (const json::value* crit = header.as_object().if_contains("crit"); crit != nullptr) {
    return refuse("malformed", "critical header extensions are not supported");
  }
  std::string kid = kid_value != nullptr ? std::string(kid_value->as_string()) : std::string();
  bool good = false;
  if (*alg == JwtAlgorithm::HS256) {
    kid.clear();
    std::string expected = hmac_sha256(options_.secret, token.substr(0, dot2));
    good = expected.size() == signature->size() &&
           CRYPTO_memcmp(expected.data(), signature->data(), expected.size()) == 0;
  } else {
    auto keys = this->keys();  // this token is checked with the set as it is now
    const Jwk* key = keys->select(kid, kid_value != nullptr);
    if (key == nullptr) {
      JwtResult r = refuse("unknown_key", keys->size() == 0 ? "no keys yet"
                                          : kid_value != nullptr
                                              ? "no key with kid \"" + kid + "\""
                                              : "the token has no kid and there are several keys");
      r.kid = std::move(kid);
      return r;
    }
    if (key->algorithm != *alg) {
      return refuse("algorithm", "token algorithm " + std::string(jwt_algorithm_name(*alg)) +
                                     " does not fit its key (" +
                                     std::string(jwt_algorithm_name(key->algorithm)) + ")");
    }
    kid = key->kid;
    good = check_signature(*alg, key->key.get(), token.substr(0, dot2), *signature);
  }
  if (!good) return refuse("signature", "bad signature");

  json::value payload = json::parse(*payload_text, ec);
  if (ec || !payload.is_object()) return refuse("malformed", "payload is not a JSON object");
  const json::object& claims = payload.as_object();
  const std::int64_t leeway = options_.leeway.count();
  if (const json::value* exp = claims.if_contains("exp")) {
    auto t = numeric_date(*exp);
    if (!t) return refuse("malformed", "exp is not a number");
    if (now - leeway >= *t) return refuse("expired", "token expired");
  }
  if (const json::value* nbf = claims.if_contains("nbf")) {
    auto t = numeric_date(*nbf);
    if (!t) return refuse("malformed", "nbf is not a number");
    if (now + leeway < *t) return refuse("not_yet_valid", "token not valid yet");
  }
  if (!options_.issuer.empty()) {
    const json::value* iss = claims.if_contains("iss");
    if (iss == nullptr || !iss->is_string() || iss->as_string() != options_.issuer) {
      return refuse("issuer", "wrong issuer");
    }
  }
  if (!options_.audience.empty()) {
    const json::value* aud = claims.if_contains("aud");
    bool found = false;
    if (aud != nullptr && aud->is_string()) {
      found = aud->as_string() == options_.audience;
    } else if (aud != nullptr && aud->is_array()) {
      for (const auto& a : aud->as_array()) {
        if (a.is_string() && a.as_string() == options_.audience) found = true;
      }
    }
    if (!found) return refuse("audience", "wrong audience");
  }

  JwtResult result;
  result.ok = true;
  result.kid = std::move(kid);
  for (const auto& [key, value] : claims) {
    if (value.is_string()) {
      result.claims.emplace(std::string(key), std::string(value.as_string()));
    } else if (value.is_int64() || value.is_uint64() || value.is_double() || value.is_bool()) {
      result.claims.emplace(std::string(key), json::serialize(value));
    }
  }
  return result;
}

std::string jwt_sign(JwtAlgorithm alg, std::string_view payload_json, std::string_view key,
                     std::string_view header_json) {
  std::string header = header_json.empty() ? R"({"alg":")" + std::string(jwt_algorithm_name(alg)) +
                                                 R"(","typ":"JWT"})"
                                           : std::string(header_json);
  std::string signing_input = base64url_encode(header) + "." + base64url_encode(payload_json);
  std::string signature;
  if (alg == JwtAlgorithm::HS256) {
    signature = hmac_sha256(key, signing_input);
  } else {
    Pkey pkey = read_pem(key, true);
    std::string error;
    if (!pkey || !key_fits(alg, pkey.get(), error)) return {};
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::size_t len = 0;
    const EVP_MD* md = alg == JwtAlgorithm::EdDSA ? nullptr : EVP_sha256();
    if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, pkey.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      return {};
    }
    signature.resize(len);
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      return {};
    }
    signature.resize(len);
    if (alg == JwtAlgorithm::ES256) signature = es256_der_to_raw(signature);
    if (signature.empty()) return {};
  }
  return signing_input + "." + base64url_encode(signature);
}

}  // namespace pgfanout::auth

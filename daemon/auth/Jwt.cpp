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

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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

bool key_fits(JwtAlgorithm alg, EVP_PKEY* key, std::string& error) {
  if (alg == JwtAlgorithm::RS256) {
    if (!EVP_PKEY_is_a(key, "RSA")) {
      error = "RS256 needs an RSA key";
      return false;
    }
    if (EVP_PKEY_get_bits(key) < 2048) {
      error = "RS256 needs an RSA key of at least 2048 bits";
      return false;
    }
  } else if (alg == JwtAlgorithm::ES256) {
    if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256) {
      error = "ES256 needs an EC key on curve P-256";
      return false;
    }
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

}  // namespace

struct JwtVerifier::Key {
  Pkey pkey;
};

std::optional<JwtAlgorithm> parse_jwt_algorithm(std::string_view name) {
  if (name == "HS256") return JwtAlgorithm::HS256;
  if (name == "RS256") return JwtAlgorithm::RS256;
  if (name == "ES256") return JwtAlgorithm::ES256;
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
  }
  return "?";
}

std::string base64url_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(data[k]); };
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == data.size()) {
    unsigned v = byte(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == data.size()) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos) return std::nullopt;  // padding and '+/' are not base64url
    acc = (acc << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero (a canonical encoding), so one token has one spelling.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::unique_ptr<JwtVerifier> JwtVerifier::create(JwtOptions options, std::string& error) {
  std::unique_ptr<JwtVerifier> v(new JwtVerifier(std::move(options)));
  v->key_ = std::make_unique<Key>();
  if (v->options_.algorithm == JwtAlgorithm::HS256) {
    if (v->options_.secret.size() < 32) {
      error = "an HS256 secret must be at least 32 bytes";
      return nullptr;
    }
    return v;
  }
  v->key_->pkey = read_pem(v->options_.public_key_pem, false);
  if (!v->key_->pkey) {
    error = "cannot read the public key (PEM \"BEGIN PUBLIC KEY\" expected)";
    return nullptr;
  }
  if (!key_fits(v->options_.algorithm, v->key_->pkey.get(), error)) return nullptr;
  return v;
}

JwtVerifier::JwtVerifier(JwtOptions options) : options_(std::move(options)) {}

JwtVerifier::~JwtVerifier() = default;

bool JwtVerifier::check_signature(std::string_view signed_part,
                                  const std::string& signature) const {
  if (options_.algorithm == JwtAlgorithm::HS256) {
    std::string expected = hmac_sha256(options_.secret, signed_part);
    return expected.size() == signature.size() &&
           CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) == 0;
  }
  std::string der;
  const std::string* sig = &signature;
  if (options_.algorithm == JwtAlgorithm::ES256) {
    der = es256_raw_to_der(signature);
    if (der.empty()) return false;
    sig = &der;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                          sig->size(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                          signed_part.size()) == 1;
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
  const json::value* alg = header.as_object().if_contains("alg");
  if (alg == nullptr || !alg->is_string() ||
      alg->as_string() != jwt_algorithm_name(options_.algorithm)) {
    return refuse("algorithm", "token algorithm is not the configured " +
                                   std::string(jwt_algorithm_name(options_.algorithm)));
  }
  if (const json::value* crit = header.as_object().if_contains("crit"); crit != nullptr) {
    return refuse("malformed", "critical header extensions are not supported");
  }
  if (!check_signature(token.substr(0, dot2), *signature)) {
    return refuse("signature", "bad signature");
  }

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
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
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

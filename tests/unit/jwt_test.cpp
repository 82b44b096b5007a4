// JwtVerifier: table-driven vectors for HS256, RS256 and ES256 (keys made here with OpenSSL),
// the time checks with leeway, audience and issuer, and the refusals that matter for security:
// `alg: none`, an algorithm other than the configured one, and algorithm confusion (an HS256
// token signed with the RS256 public key as secret).
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include "auth/Jwt.hpp"

namespace pgfanout::auth {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-secret";

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

KeyPair make_keys(EVP_PKEY* key) {
  KeyPair k;
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, key);
  char* data = nullptr;
  long n = BIO_get_mem_data(priv, &data);
  k.private_pem.assign(data, static_cast<std::size_t>(n));
  n = BIO_get_mem_data(pub, &data);
  k.public_pem.assign(data, static_cast<std::size_t>(n));
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return k;
}

const KeyPair& rsa() {
  static const KeyPair k = make_keys(EVP_RSA_gen(2048));
  return k;
}
const KeyPair& ec() {
  static const KeyPair k = make_keys(EVP_EC_gen("P-256"));
  return k;
}

std::unique_ptr<JwtVerifier> verifier(JwtAlgorithm alg, std::string audience = {},
                                      std::string issuer = {}) {
  JwtOptions o;
  o.algorithm = alg;
  o.secret = kSecret;
  if (alg == JwtAlgorithm::RS256) o.public_key_pem = rsa().public_pem;
  if (alg == JwtAlgorithm::ES256) o.public_key_pem = ec().public_pem;
  o.audience = std::move(audience);
  o.issuer = std::move(issuer);
  std::string error;
  auto v = JwtVerifier::create(o, error);
  EXPECT_TRUE(v) << error;
  return v;
}

std::string sign(JwtAlgorithm alg, const std::string& payload, const std::string& header = {}) {
  std::string key = alg == JwtAlgorithm::HS256   ? kSecret
                    : alg == JwtAlgorithm::RS256 ? rsa().private_pem
                                                 : ec().private_pem;
  return jwt_sign(alg, payload, key, header);
}

struct Vector {
  const char* name;
  JwtAlgorithm verifier_alg;
  std::string token;
  const char* reason;  // "" when valid
  std::string audience = {};
  std::string issuer = {};
};

std::string claims(const std::string& extra = {}) {
  return R"({"sub":"7","name":"ann")" + extra + "}";
}

TEST(Jwt, Vectors) {
  using enum JwtAlgorithm;
  const std::string exp_ok = ",\"exp\":" + std::to_string(kNow + 60);
  const std::vector<Vector> vectors = {
      {"hs256 valid", HS256, sign(HS256, claims(exp_ok)), ""},
      {"rs256 valid", RS256, sign(RS256, claims(exp_ok)), ""},
      {"es256 valid", ES256, sign(ES256, claims(exp_ok)), ""},
      {"hs256 wrong secret", HS256,
       jwt_sign(HS256, claims(), "another-secret-of-at-least-32-bytes!!"), "signature"},
      {"rs256 tampered payload", RS256,
       [] {
         auto t = sign(RS256, claims());
         auto a = t.find('.'), b = t.rfind('.');
         return t.substr(0, a + 1) + base64url_encode(R"({"sub":"8"})") + t.substr(b);
       }(),
       "signature"},
      {"es256 signature of another key", ES256,
       jwt_sign(ES256, claims(), make_keys(EVP_EC_gen("P-256")).private_pem), "signature"},
      {"expired beyond leeway", HS256, sign(HS256, claims(",\"exp\":" + std::to_string(kNow - 31))),
       "expired"},
      {"expired within leeway", HS256, sign(HS256, claims(",\"exp\":" + std::to_string(kNow - 10))),
       ""},
      {"exp not a number", HS256, sign(HS256, claims(R"(,"exp":"soon")")), "malformed"},
      // Found by fuzz_jwt: a NumericDate beyond int64 was converted with undefined behaviour.
      {"exp beyond int64 (double)", HS256, sign(HS256, claims(R"(,"exp":1800000000555555555501)")),
       "malformed"},
      {"exp beyond int64 (uint64)", HS256, sign(HS256, claims(R"(,"exp":18446744073709551615)")),
       "malformed"},
      {"nbf beyond int64", HS256, sign(HS256, claims(R"(,"nbf":-1e300)")), "malformed"},
      {"nbf in the future", HS256, sign(HS256, claims(",\"nbf\":" + std::to_string(kNow + 120))),
       "not_yet_valid"},
      {"nbf within leeway", HS256, sign(HS256, claims(",\"nbf\":" + std::to_string(kNow + 20))),
       ""},
      {"audience matches", HS256, sign(HS256, claims(R"(,"aud":"chat")")), "", "chat"},
      {"audience in array", HS256, sign(HS256, claims(R"(,"aud":["x","chat"])")), "", "chat"},
      {"wrong audience", HS256, sign(HS256, claims(R"(,"aud":"billing")")), "audience", "chat"},
      {"missing audience", HS256, sign(HS256, claims()), "audience", "chat"},
      {"issuer matches", HS256, sign(HS256, claims(R"(,"iss":"auth.example")")), "", "",
       "auth.example"},
      {"wrong issuer", HS256, sign(HS256, claims(R"(,"iss":"evil")")), "issuer", "",
       "auth.example"},
      {"alg none", HS256,
       base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + base64url_encode(claims()) + ".",
       "algorithm"},
      {"alg None spelled otherwise", HS256,
       base64url_encode(R"({"alg":"None"})") + "." + base64url_encode(claims()) + ".", "algorithm"},
      {"alg missing", HS256, sign(HS256, claims(), R"({"typ":"JWT"})"), "algorithm"},
      {"hs512 not configured", HS256, sign(HS256, claims(), R"({"alg":"HS512"})"), "algorithm"},
      // Algorithm confusion: the attacker signs HS256 with the server's public key as secret.
      {"hs256 with the rsa public key", RS256, jwt_sign(HS256, claims(), rsa().public_pem),
       "algorithm"},
      {"es256 token to an rs256 verifier", RS256, sign(ES256, claims()), "algorithm"},
      {"rs256 token to an hs256 verifier", HS256, sign(RS256, claims()), "algorithm"},
      {"two parts", HS256, "abc.def", "malformed"},
      {"four parts", HS256, sign(HS256, claims()) + ".x", "malformed"},
      {"standard base64 characters", HS256, "a+b.c/d.e=", "malformed"},
      {"header not json", HS256, base64url_encode("nope") + "." + base64url_encode("{}") + ".",
       "malformed"},
      {"crit header", HS256, sign(HS256, claims(), R"({"alg":"HS256","crit":["x"]})"), "malformed"},
      {"payload not an object", HS256, sign(HS256, "[1,2]"), "malformed"},
  };
  for (const auto& v : vectors) {
    SCOPED_TRACE(v.name);
    auto verifier_ = verifier(v.verifier_alg, v.audience, v.issuer);
    auto r = verifier_->verify(v.token, kNow);
    if (std::string(v.reason).empty()) {
      EXPECT_TRUE(r.ok) << r.reason << ": " << r.message;
      EXPECT_EQ(r.claims["sub"], "7");
    } else {
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(r.reason, v.reason) << r.message;
      EXPECT_TRUE(r.claims.empty());
    }
  }
}

TEST(Jwt, ClaimsAreText) {
  auto v = verifier(JwtAlgorithm::HS256);
  auto r = v->verify(sign(JwtAlgorithm::HS256, R"({"sub":"7","uid":42,"admin":true,"o":{"x":1}})"),
                     kNow);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.claims["uid"], "42");
  EXPECT_EQ(r.claims["admin"], "true");
  EXPECT_FALSE(r.claims.contains("o"));  // nested values bind to nothing
}

TEST(Jwt, KeysAreChecked) {
  std::string error;
  JwtOptions o;
  o.secret = "short";
  EXPECT_FALSE(JwtVerifier::create(o, error));
  o.algorithm = JwtAlgorithm::RS256;
  o.public_key_pem = ec().public_pem;  // an EC key for RS256
  EXPECT_FALSE(JwtVerifier::create(o, error));
  EXPECT_NE(error.find("RSA"), std::string::npos);
  o.algorithm = JwtAlgorithm::ES256;
  o.public_key_pem = rsa().public_pem;
  EXPECT_FALSE(JwtVerifier::create(o, error));
  o.public_key_pem = "not a key";
  EXPECT_FALSE(JwtVerifier::create(o, error));
}

TEST(Jwt, Base64Url) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("Zm9v="));  // padding is not base64url
  EXPECT_FALSE(base64url_decode("Zh"));     // non-zero leftover bits: not canonical
  EXPECT_FALSE(base64url_decode("A"));
}

}  // namespace
}  // namespace pgfanout::auth

// Key sets (auth/Jwks.hpp) and the verifier with them: JWKS parsing (RSA, EC P-256, Ed25519; the
// keys left out and why), kid selection, the algorithm-confusion refusals (an RS256 token sent as
// the EC key's, HS256 signed with the RSA public key, EdDSA sent as the RSA key's, a JWK whose
// `alg` disagrees with its type, `none`), keys replaced at run time with the removed kids reported,
// EdDSA with one PEM key, and the config checks of auth.jwt.jwks_*. Keys are made here with
// OpenSSL; tests/integration/jwks_pgtest.cpp does the same with keys and tokens from npm's jose.
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include "app/Config.hpp"
#include "auth/Jwks.hpp"
#include "auth/Jwt.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::auth {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-secret";

struct Key {
  EVP_PKEY* pkey;
  std::string private_pem, public_pem;
};

std::string pem(EVP_PKEY* k, bool priv) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (priv) {
    PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PUBKEY(bio, k);
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

Key make(EVP_PKEY* k) {
  return {k, pem(k, true), pem(k, false)};
}
const Key& rsa() {
  static const Key k = make(EVP_RSA_gen(2048));
  return k;
}
const Key& ec() {
  static const Key k = make(EVP_EC_gen("P-256"));
  return k;
}
const Key& ed() {
  static const Key k = make(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  return k;
}

std::string b64_bn(EVP_PKEY* k, const char* name) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(k, name, &bn);
  std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(bn);
  return base64url_encode(bytes);
}

// The public JWK of `k` with `extra` members (e.g. `"kid":"a"`).
std::string jwk(const Key& k, const std::string& extra) {
  if (EVP_PKEY_is_a(k.pkey, "RSA")) {
    return R"({"kty":"RSA","n":")" + b64_bn(k.pkey, OSSL_PKEY_PARAM_RSA_N) + R"(","e":")" +
           b64_bn(k.pkey, OSSL_PKEY_PARAM_RSA_E) + "\"," + extra + "}";
  }
  unsigned char buf[128];
  std::size_t len = 0;
  if (EVP_PKEY_is_a(k.pkey, "EC")) {
    EVP_PKEY_get_octet_string_param(k.pkey, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof buf, &len);
    std::string point(reinterpret_cast<char*>(buf), len);  // 04 || x || y
    return R"({"kty":"EC","crv":"P-256","x":")" + base64url_encode(point.substr(1, 32)) +
           R"(","y":")" + base64url_encode(point.substr(33, 32)) + "\"," + extra + "}";
  }
  len = sizeof buf;
  EVP_PKEY_get_raw_public_key(k.pkey, buf, &len);
  return R"({"kty":"OKP","crv":"Ed25519","x":")" +
         base64url_encode(std::string(reinterpret_cast<char*>(buf), len)) + "\"," + extra + "}";
}

std::string jwks(const std::vector<std::string>& keys) {
  std::string out = R"({"keys":[)";
  for (std::size_t i = 0; i < keys.size(); ++i) out += (i ? "," : "") + keys[i];
  return out + "]}";
}

// The usual three keys: "rsa", "ec" (with alg) and "ed" (with use: sig).
std::shared_ptr<const JwkSet> three_keys() {
  auto p = parse_jwks(jwks({jwk(rsa(), R"("kid":"rsa")"), jwk(ec(), R"("kid":"ec","alg":"ES256")"),
                            jwk(ed(), R"("kid":"ed","use":"sig")")}));
  EXPECT_TRUE(p.set) << p.error;
  EXPECT_TRUE(p.skipped.empty()) << p.skipped.front();
  return p.set;
}

std::unique_ptr<JwtVerifier> with_keys(std::shared_ptr<const JwkSet> keys,
                                       const std::string& secret = {}) {
  JwtOptions o;
  o.key_set = true;
  o.keys = std::move(keys);
  o.secret = secret;
  std::string error;
  auto v = JwtVerifier::create(o, error);
  EXPECT_TRUE(v) << error;
  return v;
}

std::string token(JwtAlgorithm alg, const std::string& key, const std::string& kid) {
  std::string header = R"({"alg":")" + std::string(jwt_algorithm_name(alg)) + "\"" +
                       (kid.empty() ? "" : R"(,"kid":")" + kid + "\"") + "}";
  return jwt_sign(alg, R"({"sub":"u1","exp":)" + std::to_string(kNow + 60) + "}", key, header);
}

TEST(Jwks, ParsesTheThreeKeyTypes) {
  auto set = three_keys();
  ASSERT_EQ(set->size(), 3u);
  EXPECT_EQ(set->kids(), (std::vector<std::string>{"rsa", "ec", "ed"}));
  EXPECT_EQ(set->select("rsa", true)->algorithm, JwtAlgorithm::RS256);
  EXPECT_EQ(set->select("ec", true)->algorithm, JwtAlgorithm::ES256);
  EXPECT_EQ(set->select("ed", true)->algorithm, JwtAlgorithm::EdDSA);
  EXPECT_EQ(set->select("nope", true), nullptr);
  EXPECT_EQ(set->select("", false), nullptr);  // no kid, several keys
}

TEST(Jwks, BadKeysAreSkippedWithAReason) {
  Key small = make(EVP_RSA_gen(1024));
  Key p384 = make(EVP_EC_gen("P-384"));
  auto p = parse_jwks(jwks({
      jwk(rsa(), R"("kid":"good")"),
      jwk(rsa(), R"("kid":"enc","use":"enc")"),
      jwk(ec(), R"("kid":"ec-as-rs","alg":"RS256")"),
      jwk(rsa(), R"("kid":"ps","alg":"PS256")"),
      jwk(small, R"("kid":"small")"),
      R"({"kid":"p384","kty":"EC","crv":"P-384","x":"AA","y":"AA"})",
      R"({"kid":"oct","kty":"oct","k":"c2VjcmV0"})",
      jwk(rsa(), R"("kid":"private","d":"AQAB")"),
      R"({"kid":"bad-b64","kty":"RSA","n":"a+b/","e":"AQAB"})",
      R"({"kid":"off-curve","kty":"EC","crv":"P-256","x":")" +
          base64url_encode(std::string(32, 1)) + R"(","y":")" +
          base64url_encode(std::string(32, 2)) + "\"}",
      jwk(ec(), R"("kid":"good")"),
      R"("not an object")",
  }));
  EVP_PKEY_free(small.pkey);
  EVP_PKEY_free(p384.pkey);
  ASSERT_TRUE(p.set) << p.error;
  EXPECT_EQ(p.set->kids(), std::vector<std::string>{"good"});
  std::string all;
  for (const auto& s : p.skipped) all += s + "\n";
  EXPECT_EQ(p.skipped.size(), 11u) << all;
  for (const char* expected :
       {"kid \"enc\": use \"enc\" is not \"sig\"",
        "kid \"ec-as-rs\": alg \"RS256\" is not supported for this key (ES256)",
        "kid \"ps\": alg \"PS256\"", "kid \"small\": an RSA key must have at least 2048 bits",
        "kid \"p384\": EC curve \"P-384\" is not supported",
        "kid \"oct\": ", "kid \"private\": holds private", "kid \"bad-b64\": `n` is not base64url",
        "kid \"off-curve\": `x` and `y` are not a point on P-256",
        "kid \"good\": the kid appears more than once", "key 11: not a JSON object"}) {
    EXPECT_NE(all.find(expected), std::string::npos) << expected << "\n" << all;
  }
}

TEST(Jwks, UnusableDocumentsAreErrors) {
  EXPECT_EQ(parse_jwks("not json").error, "not a JWKS (a JSON object with a \"keys\" array)");
  EXPECT_EQ(parse_jwks(R"({"keys":{}})").error, "not a JWKS (a JSON object with a \"keys\" array)");
  EXPECT_EQ(parse_jwks(R"({"keys":[]})").error, "the JWKS has no keys");
  auto none = parse_jwks(R"({"keys":[{"kty":"oct","k":"AA"}]})");
  EXPECT_EQ(none.error, "the JWKS has no usable key");
  EXPECT_FALSE(none.set);
}

TEST(Jwks, TheKidSelectsTheKeyAndTheAlgorithmMustFitIt) {
  auto v = with_keys(three_keys());
  struct Case {
    const char* what;
    std::string token;
    const char* reason;  // "" when valid
    const char* kid;     // JwtResult::kid
  };
  std::string none = base64url_encode(R"({"alg":"none","kid":"rsa"})") + "." +
                     base64url_encode(R"({"sub":"u1"})") + ".";
  const std::vector<Case> cases = {
      {"RS256", token(JwtAlgorithm::RS256, rsa().private_pem, "rsa"), "", "rsa"},
      {"ES256", token(JwtAlgorithm::ES256, ec().private_pem, "ec"), "", "ec"},
      {"EdDSA", token(JwtAlgorithm::EdDSA, ed().private_pem, "ed"), "", "ed"},
      {"unknown kid", token(JwtAlgorithm::RS256, rsa().private_pem, "other"), "unknown_key",
       "other"},
      {"no kid, several keys", token(JwtAlgorithm::RS256, rsa().private_pem, ""), "unknown_key",
       ""},
      {"ES256 token sent as the Ed25519 key's", token(JwtAlgorithm::ES256, ec().private_pem, "ed"),
       "algorithm", ""},
      {"RS256 token sent as the EC key's", token(JwtAlgorithm::RS256, rsa().private_pem, "ec"),
       "algorithm", ""},
      {"EdDSA token sent as the RSA key's", token(JwtAlgorithm::EdDSA, ed().private_pem, "rsa"),
       "algorithm", ""},
      {"HS256 with the RSA public key as secret",
       token(JwtAlgorithm::HS256, rsa().public_pem, "rsa"), "algorithm", ""},
      {"HS256 without a secret", token(JwtAlgorithm::HS256, kSecret, ""), "algorithm", ""},
      {"alg none", none, "algorithm", ""},
      {"kid not a string",
       jwt_sign(JwtAlgorithm::RS256, R"({"sub":"u1"})", rsa().private_pem,
                R"({"alg":"RS256","kid":7})"),
       "malformed", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_FALSE(c.token.empty());
    auto r = v->verify(c.token, kNow);
    EXPECT_EQ(r.ok, std::string(c.reason).empty()) << r.reason << ": " << r.message;
    EXPECT_EQ(r.reason, c.reason) << r.message;
    EXPECT_EQ(r.kid, c.kid);
    if (r.ok) {
      EXPECT_EQ(r.claims.at("sub"), "u1");
    }
  }
  // A signature by a key that is not the kid's: the right type, the wrong key.
  Key stranger = make(EVP_RSA_gen(2048));
  EXPECT_EQ(v->verify(token(JwtAlgorithm::RS256, stranger.private_pem, "rsa"), kNow).reason,
            "signature");
  EVP_PKEY_free(stranger.pkey);
}

TEST(Jwks, TheSecretAddsHs256AndOneKeyNeedsNoKid) {
  auto v = with_keys(parse_jwks(jwks({jwk(ed(), R"("kid":"only")")})).set, kSecret);
  auto hs = v->verify(token(JwtAlgorithm::HS256, kSecret, "whatever"), kNow);
  EXPECT_TRUE(hs.ok) << hs.message;
  EXPECT_EQ(hs.kid, "");
  EXPECT_EQ(v->verify(token(JwtAlgorithm::HS256, rsa().public_pem, ""), kNow).reason, "signature");
  auto only = v->verify(token(JwtAlgorithm::EdDSA, ed().private_pem, ""), kNow);
  EXPECT_TRUE(only.ok) << only.message;
  EXPECT_EQ(only.kid, "only");
  std::string error;
  JwtOptions short_secret;
  short_secret.key_set = true;
  short_secret.secret = "short";
  EXPECT_FALSE(JwtVerifier::create(short_secret, error));
}

TEST(Jwks, KeysAreReplacedAndRemovedKidsReported) {
  auto v = with_keys(nullptr);  // jwks_url before its first fetch
  auto early = v->verify(token(JwtAlgorithm::RS256, rsa().private_pem, "rsa"), kNow);
  EXPECT_EQ(early.reason, "unknown_key");
  EXPECT_EQ(early.message, "no keys yet");
  EXPECT_TRUE(v->replace_keys(three_keys()).empty());
  EXPECT_TRUE(v->has_key("ec"));
  EXPECT_TRUE(v->verify(token(JwtAlgorithm::ES256, ec().private_pem, "ec"), kNow).ok);
  auto next = parse_jwks(jwks({jwk(rsa(), R"("kid":"rsa")"), jwk(ed(), R"("kid":"ed-2")")}));
  EXPECT_EQ(v->replace_keys(next.set), (std::vector<std::string>{"ec", "ed"}));
  EXPECT_FALSE(v->has_key("ec"));
  EXPECT_TRUE(v->has_key("ed-2"));
  EXPECT_EQ(v->verify(token(JwtAlgorithm::ES256, ec().private_pem, "ec"), kNow).reason,
            "unknown_key");
  EXPECT_EQ(v->verify(token(JwtAlgorithm::EdDSA, ed().private_pem, "ed-2"), kNow).kid, "ed-2");
}

TEST(Jwks, OnePemKeyStillIgnoresTheKid) {
  for (auto [alg, key] : {std::pair{JwtAlgorithm::RS256, &rsa()},
                          {JwtAlgorithm::ES256, &ec()},
                          {JwtAlgorithm::EdDSA, &ed()}}) {
    SCOPED_TRACE(std::string(jwt_algorithm_name(alg)));
    JwtOptions o;
    o.algorithm = alg;
    o.public_key_pem = key->public_pem;
    std::string error;
    auto v = JwtVerifier::create(o, error);
    ASSERT_TRUE(v) << error;
    EXPECT_TRUE(v->verify(token(alg, key->private_pem, ""), kNow).ok);
    EXPECT_TRUE(v->verify(token(alg, key->private_pem, "any"), kNow).ok);
    EXPECT_EQ(v->verify(token(JwtAlgorithm::HS256, key->public_pem, ""), kNow).reason, "algorithm");
  }
  JwtOptions wrong;
  wrong.algorithm = JwtAlgorithm::EdDSA;
  wrong.public_key_pem = ec().public_pem;
  std::string error;
  EXPECT_FALSE(JwtVerifier::create(wrong, error));
  EXPECT_EQ(error, "EdDSA needs an Ed25519 key");
}

// ---- auth.jwt.jwks_* in the config
std::string config_errors(const std::string& jwt) {
  auto r = app::load_config_text(
      "postgres: {dsn: host=x}\nrules: [{name: a, channel: c, actions: [{log: x}]}]\n"
      "auth:\n  jwt: {" +
          jwt + "}\n",
      "test.yaml", [](std::string_view) { return std::nullopt; });
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  if (r.config) out += "(loaded)";
  return out;
}

TEST(JwksConfig, SourcesAreChecked) {
  auto file = test::write_temp_file("keys.json", jwks({jwk(rsa(), R"("kid":"rsa")")}));
  auto empty = test::write_temp_file("empty.json", R"({"keys":[]})");
  EXPECT_EQ(config_errors("jwks_file: " + file), "(loaded)");
  EXPECT_EQ(config_errors("jwks_file: " + file + ", secret: " + kSecret +
                          "}\n  login: {sql: \"SELECT $1 AS user_id WHERE $2 = ''\""),
            "(loaded)");
  EXPECT_EQ(config_errors("jwks_url: \"https://login.example.com/.well-known/jwks.json\", "
                          "jwks_refresh: 5m, jwks_min_refresh: 10s"),
            "(loaded)");
  struct Bad {
    std::string jwt, error;
  };
  for (const auto& b : std::vector<Bad>{
           {"jwks_url: \"http://idp.example/jwks\"", "jwks_url: must be an https:// URL"},
           {"jwks_url: \"https://u:p@idp.example/\"", "jwks_url: must not hold user info"},
           {"jwks_url: \"https://idp.example:99999/\"", "jwks_url: has a bad port"},
           {"jwks_file: " + file + ", jwks_url: \"https://idp.example/\"", "not both"},
           {"jwks_file: /nonexistent.json", "cannot read /nonexistent.json"},
           {"jwks_file: " + empty, "the JWKS has no keys"},
           {"jwks_file: " + file + ", algorithm: RS256", "only HS256 (with `secret`)"},
           {"jwks_file: " + file + ", public_key_file: " + file, "public_key_file or a JWKS"},
           {"jwks_file: " + file + ", secret: short", "secret must be at least 32 bytes"},
           {"jwks_file: " + file + ", jwks_ca_file: " + file, "only used with jwks_url"},
           {"jwks_url: \"https://idp.example/\", jwks_ca_file: /nonexistent.pem",
            "cannot read /nonexistent.pem"},
           {"jwks_url: \"https://idp.example/\", jwks_min_refresh: 10ms", "at least 1s"},
           {"jwks_file: " + file + "}\n  login: {sql: \"SELECT 1 AS user_id\"",
            "auth.login signs HS256 tokens with auth.jwt.secret, which is not set"},
       }) {
    SCOPED_TRACE(b.jwt);
    auto errors = config_errors(b.jwt);
    EXPECT_NE(errors.find(b.error), std::string::npos) << errors;
    EXPECT_EQ(errors.find("(loaded)"), std::string::npos);
  }
}

}  // namespace
}  // namespace pgfanout::auth

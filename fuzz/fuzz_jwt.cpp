// Fuzzes the JWT verifier: any token text is refused with a reason or, only when it carries a
// valid HS256 signature for the test secret, accepted. Signed tokens with fuzzed claims exercise
// the claim checks (exp, nbf, aud, iss) past the signature.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "auth/Jwt.hpp"

using namespace pgfanout::auth;

namespace {
const char* kSecret = "fuzzing-secret-that-is-at-least-32-bytes-long";

const JwtVerifier& verifier() {
  static std::unique_ptr<JwtVerifier> v = [] {
    JwtOptions o;
    o.algorithm = JwtAlgorithm::HS256;
    o.secret = kSecret;
    o.audience = "chat";
    o.issuer = "pgfanout";
    std::string error;
    auto made = JwtVerifier::create(o, error);
    if (!made) std::abort();
    return made;
  }();
  return *v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  // As a token.
  auto r = verifier().verify(input, 1'700'000'000);
  if (!r.ok && r.reason.empty()) std::abort();
  // As the claims of a correctly signed token.
  std::string token = jwt_sign(JwtAlgorithm::HS256, input, kSecret);
  auto s = verifier().verify(token, 1'700'000'000);
  if (!s.ok && s.reason.empty()) std::abort();
  if (s.ok && s.reason == "signature") std::abort();
  return 0;
}

// Fuzzes the JWKS parser: any document is either refused with an error or gives a set of usable
// keys (each with the one algorithm its type allows), and every key left out has a reason. The
// set is then put behind a verifier, which must refuse (with a reason) a token naming each kid
// with a signature that cannot be right.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "auth/Jwks.hpp"
#include "auth/Jwt.hpp"

using namespace pgfanout::auth;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_jwks(input);
  if (parsed.set == nullptr) {
    if (parsed.error.empty()) std::abort();
    return 0;
  }
  if (!parsed.error.empty() || parsed.set->size() == 0) std::abort();
  for (const auto& s : parsed.skipped) {
    if (s.empty()) std::abort();
  }
  JwtOptions o;
  o.key_set = true;
  o.keys = parsed.set;
  std::string error;
  auto v = JwtVerifier::create(o, error);
  if (!v) std::abort();
  for (const auto& k : parsed.set->keys()) {
    if (!k.key) std::abort();
    // Serialized, so that a kid with quotes or backslashes still makes a valid header.
    std::string header = boost::json::serialize(
        boost::json::object{{"alg", jwt_algorithm_name(k.algorithm)}, {"kid", k.kid}});
    std::string token = base64url_encode(header) + "." + base64url_encode("{}") + ".AAAA";
    auto r = v->verify(token, 1'700'000'000);
    if (r.ok || r.reason.empty()) std::abort();
  }
  return 0;
}

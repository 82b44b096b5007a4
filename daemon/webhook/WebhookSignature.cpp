#include "webhook/WebhookSignature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace pgfanout::webhook {

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t pad = 0;
  if (text.ends_with("==")) {
    pad = 2;
  } else if (text.ends_with('=')) {
    pad = 1;
  }
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::optional<SigningKey> parse_signing_key(std::string_view text, std::string& error) {
  if (text.starts_with("whsec_")) text.remove_prefix(6);
  auto bytes = base64_decode(text);
  if (!bytes || bytes->empty()) {
    error = "a webhook secret must be whsec_ followed by base64 (e.g. `openssl rand -base64 32`)";
    return std::nullopt;
  }
  return SigningKey{std::move(*bytes)};
}

std::optional<std::vector<SigningKey>> parse_signing_keys(std::string_view text,
                                                          std::string& error) {
  std::vector<SigningKey> keys;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    auto end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    auto key = parse_signing_key(text.substr(i, end - i), error);
    if (!key) return std::nullopt;
    keys.push_back(std::move(*key));
    i = end;
  }
  return keys;
}

std::string sign(const std::vector<SigningKey>& keys, std::string_view id, std::int64_t timestamp,
                 std::string_view body) {
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id);
  content += '.';
  content += std::to_string(timestamp);
  content += '.';
  content.append(body);
  std::string out;
  for (const auto& key : keys) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()),
         reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
    if (!out.empty()) out += ' ';
    out += "v1,";
    out += base64_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
  }
  return out;
}

}  // namespace pgfanout::webhook

// WebhookAction: the parsed `webhook` action of a rule.
//
//   - webhook: "https://hooks.example.com/orders"
//   - webhook:
//       url: "https://hooks.example.com/orders/{id}"   # placeholders only in the path and query
//       method: POST
//       headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
//       body: "{payload}"                               # a template; default: the payload
//       secret: ${HOOK_SECRET}                          # whsec_..., several space-separated
//       timeout: 10s
//       ca_file: /etc/pgfanout/hooks-ca.pem
//       retry: {schedule: [0s, 5s, 5m], permanent: [400, 401, 403, 404, 422]}
//
// The scheme, host and port come from the config only: the URL is split when the config loads,
// a placeholder before the path is an error, and values substituted into the path or query are
// percent-encoded (`/` too), so no payload can send a webhook to another host or path segment.
// Immutable after parsing; shared by the executor and the durable delivery worker.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rules/Action.hpp"
#include "rules/Template.hpp"
#include "webhook/RetryPolicy.hpp"
#include "webhook/WebhookSignature.hpp"

namespace pgfanout::webhook {

// Where requests go: one connection pool per distinct endpoint.
struct Endpoint {
  bool tls = false;
  std::string host;  // without IPv6 brackets
  std::string port;
  std::string ca_file;  // empty: the system store

  std::string key() const { return (tls ? "https://" : "http://") + host + ":" + port + ca_file; }
  std::string origin() const;  // "https://host:port" (brackets restored for IPv6)
  bool operator==(const Endpoint&) const = default;
};

struct SplitUrl {
  Endpoint endpoint;
  std::string target;  // path and query, starting with '/'
};

// Splits "http(s)://host[:port][/path]". The authority must be literal (no '{'). Returns nullopt
// and sets `error` otherwise.
std::optional<SplitUrl> split_url(std::string_view url, std::string& error);

class WebhookAction final : public rules::Action {
 public:
  struct Settings {
    Endpoint endpoint;
    rules::Template target;  // path and query
    std::string method = "POST";
    std::vector<std::pair<std::string, std::string>> headers;  // literal, ${ENV} expanded
    std::optional<rules::Template> body;                       // nullopt: the raw payload
    std::vector<SigningKey> keys;                              // empty: unsigned
    std::chrono::milliseconds timeout{10'000};
    RetryPolicy retry;
    std::string url_source;  // as written, for logs
  };

  explicit WebhookAction(Settings s) : s_(std::move(s)) {}
  static constexpr std::string_view kKind = "webhook";
  std::string_view kind() const override { return kKind; }
  const Settings& settings() const { return s_; }

  // Renders the request target and body for `event`. On a missing field returns false and names
  // it in `missing`.
  bool render(const rules::Event& event, std::string& target, std::string& body,
              std::string& missing) const;

 private:
  Settings s_;
};

void register_webhook_action(rules::ActionRegistry& registry);

}  // namespace pgfanout::webhook

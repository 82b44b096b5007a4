#include "webhook/WebhookAction.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "config/YamlReader.hpp"

namespace pgfanout::webhook {

namespace {

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Headers pgfanout writes itself; a config may not set them.
constexpr std::string_view kReservedHeaders[] = {
    "host",       "content-length",    "transfer-encoding", "connection",
    "webhook-id", "webhook-timestamp", "webhook-signature"};

}  // namespace

std::string Endpoint::origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (tls ? "https://" : "http://") + h + ":" + port;
}

std::optional<SplitUrl> split_url(std::string_view url, std::string& error) {
  SplitUrl out;
  std::string_view rest;
  if (url.starts_with("https://")) {
    out.endpoint.tls = true;
    out.endpoint.port = "443";
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    out.endpoint.port = "80";
    rest = url.substr(7);
  } else {
    error = "a webhook URL must start with http:// or https://";
    return std::nullopt;
  }
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (authority.find_first_of("{}") != std::string_view::npos) {
    error =
        "placeholders are not allowed in the URL's scheme, host or port (only in the path and "
        "query): the payload must never choose where a webhook goes";
    return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) {
    error = "credentials in the URL are not supported; send them in `headers`";
    return std::nullopt;
  }
  if (target.starts_with('?')) {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  if (out.target.find('#') != std::string::npos) {
    error = "a webhook URL must not have a #fragment";
    return std::nullopt;
  }
  std::string_view host = authority;
  std::string_view port;
  if (host.starts_with('[')) {
    auto close = host.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated IPv6 address in the URL";
      return std::nullopt;
    }
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') {
        error = "unexpected text after the IPv6 address";
        return std::nullopt;
      }
      port = host.substr(close + 2);
    }
    host = host.substr(1, close - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) {
    error = "the webhook URL has no host";
    return std::nullopt;
  }
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
      error = "invalid port \"" + std::string(port) + "\"";
      return std::nullopt;
    }
    out.endpoint.port = std::string(port);
  }
  out.endpoint.host = std::string(host);
  return out;
}

bool WebhookAction::render(const rules::Event& event, std::string& target, std::string& body,
                           std::string& missing) const {
  target.clear();
  if (!s_.target.render(event, target, rules::Side::New, rules::Template::Escape::Url, &missing)) {
    return false;
  }
  body.clear();
  if (!s_.body) {
    body = event.raw();
    return true;
  }
  return s_.body->render(event, body, rules::Side::New, rules::Template::Escape::None, &missing);
}

namespace {

std::unique_ptr<rules::Action> parse_webhook(config::MapReader& item, std::string_view kind) {
  YAML::Node value = item.node(kind);
  WebhookAction::Settings s;
  std::string url;
  std::string secret;
  std::string body_source;
  std::string ca_file;
  std::vector<std::string> schedule_text;
  std::vector<std::string> permanent_text;
  config::MapReader m(value.IsMap() ? value : YAML::Node(YAML::NodeType::Map),
                      item.schema_path() + "." + std::string(kind), item.key_path(kind),
                      item.ctx());
  const std::size_t errors_before = item.ctx().diags.errors().size();
  if (value.IsScalar()) {
    if (auto v = item.scalar(value, item.key_path(kind))) url = *v;
  } else if (!value.IsMap()) {
    item.error(kind, "expected a URL or a mapping {url, method, headers, body, secret, ...}");
    return nullptr;
  }
  if (value.IsMap()) {
    if (!m.has("url")) {
      m.error_here("a webhook needs a url");
      return nullptr;
    }
    url = m.string("url");
  }
  s.method = m.string("method");
  std::transform(s.method.begin(), s.method.end(), s.method.begin(), ::toupper);
  if (s.method != "POST" && s.method != "PUT" && s.method != "PATCH") {
    m.error("method", "method must be POST, PUT or PATCH");
  }
  if (auto h = m.map("headers")) {
    for (const auto& name : h->keys()) {
      auto v = h->scalar(h->node(name), h->key_path(name));
      if (!v) continue;
      if (name.empty() || !std::all_of(name.begin(), name.end(), token_char)) {
        h->error(name, "invalid header name \"" + name + "\"");
        continue;
      }
      auto lname = lower(name);
      if (std::find(std::begin(kReservedHeaders), std::end(kReservedHeaders), lname) !=
          std::end(kReservedHeaders)) {
        h->error(name, "header \"" + name + "\" is set by pgfanout and cannot be configured");
        continue;
      }
      if (v->find_first_of("\r\n") != std::string::npos || v->find('\0') != std::string::npos) {
        h->error(name, "a header value must not contain line breaks");
        continue;
      }
      s.headers.emplace_back(name, std::move(*v));
    }
  }
  if (m.has("body")) body_source = m.string("body");
  secret = m.string("secret");
  s.timeout = m.duration("timeout");
  ca_file = m.string("ca_file");
  if (auto r = m.map("retry")) {
    schedule_text = r->string_list("schedule");
    permanent_text = r->string_list("permanent");
  } else {
    config::MapReader defaults(YAML::Node(YAML::NodeType::Map), m.schema_path() + ".retry",
                               m.key_path("retry"), m.ctx());
    schedule_text = defaults.string_list("schedule");
    permanent_text = defaults.string_list("permanent");
  }
  if (item.ctx().diags.errors().size() != errors_before) return nullptr;

  std::string error;
  auto split = split_url(url, error);
  const std::string url_key = value.IsMap() ? "url" : std::string();
  auto url_error = [&](const std::string& msg) {
    if (value.IsMap()) {
      m.error("url", msg);
    } else {
      item.error(kind, msg);
    }
  };
  if (!split) {
    url_error(error);
    return nullptr;
  }
  auto target = rules::Template::parse(split->target, error);
  if (!target) {
    url_error("bad template in the URL: " + error);
    return nullptr;
  }
  s.endpoint = split->endpoint;
  s.target = std::move(*target);
  s.url_source = url;
  if (!body_source.empty()) {
    auto body = rules::Template::parse(body_source, error);
    if (!body) {
      m.error("body", "bad template: " + error);
      return nullptr;
    }
    s.body = std::move(*body);
  }
  if (!secret.empty()) {
    auto keys = parse_signing_keys(secret, error);
    if (!keys) {
      m.error(m.has("secret_file") ? "secret_file" : "secret", error);
      return nullptr;
    }
    s.keys = std::move(*keys);
  }
  if (s.timeout.count() < 100) m.error("timeout", "must be at least 100ms");
  if (!ca_file.empty()) {
    if (!s.endpoint.tls) m.error("ca_file", "ca_file applies only to https:// URLs");
    const auto& base = m.ctx().base_dir;
    if (ca_file[0] != '/' && !base.empty()) ca_file = base + "/" + ca_file;
    if (access(ca_file.c_str(), R_OK) != 0) m.error("ca_file", "cannot read \"" + ca_file + "\"");
    s.endpoint.ca_file = ca_file;
  }
  std::vector<std::chrono::milliseconds> schedule;
  for (const auto& t : schedule_text) {
    auto d = config::parse_duration(t);
    if (!d) {
      m.error("retry", "retry.schedule: \"" + t + "\" is not a duration (0s, 5s, 5m, 2h)");
      return nullptr;
    }
    schedule.push_back(*d);
  }
  if (schedule.empty()) {
    m.error("retry", "retry.schedule needs at least one entry (the first attempt)");
    return nullptr;
  }
  std::vector<int> permanent;
  for (const auto& t : permanent_text) {
    int code = 0;
    try {
      code = std::stoi(t);
    } catch (const std::exception&) {
    }
    if (code < 300 || code > 599 || code == 410 || code == 429) {
      m.error("retry", "retry.permanent: \"" + t +
                           "\" must be an HTTP status from 300 to 599 (410 and 429 have their "
                           "own handling)");
      return nullptr;
    }
    permanent.push_back(code);
  }
  s.retry = RetryPolicy(std::move(schedule), std::move(permanent));
  return std::make_unique<WebhookAction>(std::move(s));
}

}  // namespace

namespace {

std::span<const config::KeySpec> webhook_action_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"rules[].actions[].webhook", Any, "", kReload, kPlain, kOptional,
   "Call a webhook: a URL, or the mapping below. Signed per Standard Webhooks when a secret is "
   "given, retried with backoff; on a durable rule delivered once across instances (see "
   "docs/webhooks.md)."},
  {"rules[].actions[].webhook.url", Template, "", kReload, kPlain, kRequired,
   "http:// or https:// URL. Placeholders only in the path and query, where values are "
   "percent-encoded (`/` too); scheme, host and port are fixed by the config."},
  {"rules[].actions[].webhook.method", String, "POST", kReload, kPlain, kOptional,
   "POST, PUT or PATCH."},
  {"rules[].actions[].webhook.headers", Map, "", kReload, kPlain, kOptional,
   "Extra request headers `{Name: value}` (${ENV} expands; no templates). Content-Type "
   "defaults to application/json."},
  {"rules[].actions[].webhook.headers.*", String, "", kReload, kPlain, kOptional,
   "A header value."},
  {"rules[].actions[].webhook.body", Template, "{payload}", kReload, kPlain, kOptional,
   "The request body."},
  {"rules[].actions[].webhook.secret", String, "", kReload, kSecret, kOptional,
   "Signing secret `whsec_<base64>`; several space-separated secrets sign with each (key "
   "rotation). Without one, requests are unsigned (but still carry webhook-id and "
   "webhook-timestamp)."},
  {"rules[].actions[].webhook.timeout", Duration, "10s", kReload, kPlain, kOptional,
   "Total time for one attempt, connecting included."},
  {"rules[].actions[].webhook.ca_file", String, "", kReload, kPlain, kOptional,
   "PEM file of the CA(s) that sign the endpoint's certificate, instead of the system store. "
   "The host name is always verified."},
  {"rules[].actions[].webhook.retry", Map, "", kReload, kPlain, kOptional, "Retries."},
  {"rules[].actions[].webhook.retry.schedule", StringList, "[0s, 5s, 5m, 30m, 2h, 5h, 10h, 10h]",
   kReload, kPlain, kOptional,
   "Delay before each attempt (the first entry is the first attempt): each retry waits a random "
   "time up to its entry (full jitter). 429 and 503 with Retry-After wait what it says instead. "
   "After the last attempt the delivery becomes a dead letter."},
  {"rules[].actions[].webhook.retry.permanent", StringList, "[400, 401, 403, 404, 422]", kReload,
   kPlain, kOptional,
   "Statuses that are not retried: the delivery becomes a dead letter at once. 410 Gone always "
   "disables the endpoint until the next reload."},
  };
  // clang-format on
  return kRows;
}

}  // namespace

void register_webhook_action(rules::ActionRegistry& registry) {
  registry.add_keys(webhook_action_keys());
  registry.add("webhook", parse_webhook);
}

}  // namespace pgfanout::webhook

// Webhooks without a network: Standard Webhooks signatures (the specification's example vector
// and key rotation), the retry schedule and Retry-After on a ManualClock, URL splitting (a payload
// can never choose the host), and the `webhook` action's config keys.
#include <gtest/gtest.h>

#include "app/Config.hpp"
#include "rules/RuleSet.hpp"
#include "webhook/Clock.hpp"
#include "webhook/RetryPolicy.hpp"
#include "webhook/WebhookAction.hpp"
#include "webhook/WebhookSignature.hpp"

namespace pgfanout::webhook {
namespace {

using namespace std::chrono_literals;

// ---- signatures

TEST(WebhookSignature, MatchesTheSpecificationExample) {
  std::string error;
  auto key = parse_signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", error);
  ASSERT_TRUE(key) << error;
  EXPECT_EQ(sign({*key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, SeveralSecretsSignWithEachForRotation) {
  std::string error;
  auto keys = parse_signing_keys(
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw  whsec_" + base64_encode("another key"), error);
  ASSERT_TRUE(keys) << error;
  ASSERT_EQ(keys->size(), 2u);
  auto header = sign(*keys, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})");
  auto space = header.find(' ');
  ASSERT_NE(space, std::string::npos) << header;
  EXPECT_EQ(header.substr(0, space), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_EQ(header.substr(space + 1), sign({(*keys)[1]}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                           R"({"test": 2432232314})"));
  EXPECT_NE(header.substr(space + 1), header.substr(0, space));
}

TEST(WebhookSignature, BadSecretsAreRejected) {
  std::string error;
  EXPECT_FALSE(parse_signing_key("whsec_not base64!", error));
  EXPECT_FALSE(parse_signing_key("whsec_", error));
  EXPECT_TRUE(parse_signing_key(base64_encode("bare base64 works too"), error));
}

TEST(WebhookSignature, Base64RoundTrips) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto enc = base64_encode(s);
    if (s.empty()) {
      EXPECT_EQ(enc, "");
      continue;
    }
    EXPECT_EQ(base64_decode(enc), s);
  }
}

// ---- retry policy on a manual clock

AttemptResult status(int s, std::string retry_after = {}) {
  AttemptResult r;
  r.status = s;
  r.retry_after = std::move(retry_after);
  if (s == 0) r.error = "connect: Connection refused";
  return r;
}

TEST(RetryPolicy, DefaultScheduleWithFullJitterThenDeadLetter) {
  RetryPolicy policy;
  ManualClock clock;
  std::mt19937_64 rng(42);
  ASSERT_EQ(policy.max_attempts(), 8);
  const auto schedule = RetryPolicy::default_schedule();
  // Each retry waits between 0 and its step; over many draws the full range is used.
  for (int attempt = 1; attempt < 8; ++attempt) {
    auto step = schedule[static_cast<std::size_t>(attempt)];
    std::chrono::milliseconds lo = step, hi{0};
    for (int i = 0; i < 200; ++i) {
      auto d = policy.decide(attempt, status(500), clock, rng);
      ASSERT_EQ(d.verdict, Verdict::Retry);
      auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(d.next_attempt - clock.now());
      ASSERT_GE(wait.count(), 0);
      ASSERT_LE(wait, step);
      lo = std::min(lo, wait);
      hi = std::max(hi, wait);
    }
    EXPECT_LT(lo, step / 4) << "attempt " << attempt;
    EXPECT_GT(hi, step * 3 / 4) << "attempt " << attempt;
  }
  auto last = policy.decide(8, status(500), clock, rng);
  EXPECT_EQ(last.verdict, Verdict::Dead);
  EXPECT_NE(last.reason.find("after 8 attempts"), std::string::npos) << last.reason;
}

TEST(RetryPolicy, WalkingTheScheduleOnTheClockNeverSleeps) {
  RetryPolicy policy({0ms, 5s, 5min, 30min, 2h, 5h, 10h, 10h}, RetryPolicy::default_permanent());
  ManualClock clock;
  std::mt19937_64 rng(7);
  auto start = clock.now();
  int attempt = 1;
  while (true) {
    auto d = policy.decide(attempt, status(0), clock, rng);
    if (d.verdict != Verdict::Retry) {
      EXPECT_EQ(d.verdict, Verdict::Dead);
      break;
    }
    clock.set(d.next_attempt);
    ++attempt;
  }
  EXPECT_EQ(attempt, 8);
  EXPECT_LE(clock.now() - start, std::chrono::hours(33));  // the sum of the steps
}

TEST(RetryPolicy, StatusClasses) {
  RetryPolicy policy;
  ManualClock clock;
  std::mt19937_64 rng(1);
  EXPECT_EQ(policy.decide(1, status(200), clock, rng).verdict, Verdict::Delivered);
  EXPECT_EQ(policy.decide(1, status(204), clock, rng).verdict, Verdict::Delivered);
  EXPECT_EQ(policy.decide(1, status(410), clock, rng).verdict, Verdict::EndpointGone);
  for (int s : {400, 401, 403, 404, 422}) {
    auto d = policy.decide(1, status(s), clock, rng);
    EXPECT_EQ(d.verdict, Verdict::Dead) << s;
    EXPECT_NE(d.reason.find("permanent"), std::string::npos);
  }
  for (int s : {0, 301, 408, 409, 429, 500, 502, 503}) {
    EXPECT_EQ(policy.decide(1, status(s), clock, rng).verdict, Verdict::Retry) << s;
  }
  RetryPolicy custom({0ms, 1s}, {500});
  EXPECT_EQ(custom.decide(1, status(500), clock, rng).verdict, Verdict::Dead);
  EXPECT_EQ(custom.decide(1, status(404), clock, rng).verdict, Verdict::Retry);
}

TEST(RetryPolicy, RetryAfterSecondsAndDateOn429And503) {
  RetryPolicy policy;
  ManualClock clock(std::chrono::system_clock::from_time_t(1445412400));  // 2015-10-21 07:26:40
  std::mt19937_64 rng(1);
  auto d = policy.decide(1, status(429, "120"), clock, rng);
  ASSERT_EQ(d.verdict, Verdict::Retry);
  EXPECT_EQ(d.next_attempt - clock.now(), std::chrono::seconds(120));
  d = policy.decide(2, status(503, "Wed, 21 Oct 2015 07:28:00 GMT"), clock, rng);
  ASSERT_EQ(d.verdict, Verdict::Retry);
  EXPECT_EQ(d.next_attempt - clock.now(), std::chrono::seconds(80));
  // A date in the past: at once. Garbage: the schedule applies.
  d = policy.decide(2, status(503, "Wed, 21 Oct 2015 07:00:00 GMT"), clock, rng);
  EXPECT_EQ(d.next_attempt, clock.now());
  d = policy.decide(1, status(429, "soon"), clock, rng);
  EXPECT_LE(d.next_attempt - clock.now(), std::chrono::seconds(5));
  // Not honoured on other statuses; capped at the longest step.
  d = policy.decide(1, status(500, "3600"), clock, rng);
  EXPECT_LE(d.next_attempt - clock.now(), std::chrono::seconds(5));
  d = policy.decide(1, status(429, "999999"), clock, rng);
  EXPECT_EQ(d.next_attempt - clock.now(), std::chrono::hours(10));
  // The last attempt is the last, whatever Retry-After says.
  EXPECT_EQ(policy.decide(8, status(429, "1"), clock, rng).verdict, Verdict::Dead);
}

TEST(RetryPolicy, ParseRetryAfter) {
  auto now = std::chrono::system_clock::from_time_t(1445412400);
  EXPECT_EQ(parse_retry_after(" 5 ", now), std::chrono::seconds(5));
  EXPECT_EQ(parse_retry_after("0", now), std::chrono::seconds(0));
  EXPECT_FALSE(parse_retry_after("", now));
  EXPECT_FALSE(parse_retry_after("-1", now));
  EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 CET", now));
  EXPECT_FALSE(parse_retry_after("Wed, 21 Foo 2015 07:28:00 GMT", now));
}

// ---- URLs

TEST(WebhookUrl, SplitsSchemeHostPortAndTarget) {
  std::string error;
  auto u = split_url("https://hooks.example.com/a/{id}?x={op}", error);
  ASSERT_TRUE(u) << error;
  EXPECT_TRUE(u->endpoint.tls);
  EXPECT_EQ(u->endpoint.host, "hooks.example.com");
  EXPECT_EQ(u->endpoint.port, "443");
  EXPECT_EQ(u->target, "/a/{id}?x={op}");
  u = split_url("http://127.0.0.1:9000", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->endpoint.port, "9000");
  EXPECT_EQ(u->target, "/");
  u = split_url("http://[::1]:8080/h", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->endpoint.host, "::1");
  EXPECT_EQ(u->endpoint.origin(), "http://[::1]:8080");
}

TEST(WebhookUrl, PlaceholdersBeforeThePathAreRefused) {
  for (const char* url :
       {"https://{host}/x", "https://hooks.example.com:{port}/x", "http://{tenant}.example.com/",
        "https://example.com{path}", "http://user:pw@example.com/", "ftp://example.com/",
        "example.com/x", "http://example.com:99999/", "http:///x"}) {
    std::string error;
    EXPECT_FALSE(split_url(url, error)) << url;
    EXPECT_FALSE(error.empty());
  }
}

TEST(WebhookUrl, PayloadValuesArePercentEncodedAndCannotChangeTheHost) {
  std::string error;
  auto cfg = app::load_config_text(
      "postgres: {dsn: 'postgresql:///x'}\n"
      "rules:\n  - name: r\n    channel: c\n    actions:\n"
      "      - webhook: 'http://127.0.0.1:9000/users/{id}?q={q}'\n",
      "t.yaml");
  ASSERT_TRUE(cfg.config) << (cfg.errors.empty() ? "" : cfg.errors[0].to_string());
  const auto& hook = static_cast<const WebhookAction&>(*cfg.config->rules->rules()[0]->actions[0]);
  auto ev = rules::Event(
      rules::ParsedPayload::parse("c", R"({"id":"../../admin/x@evil.com:80/","q":"a b&c=d#"})"),
      nullptr, std::chrono::steady_clock::now());
  std::string target, body, missing;
  ASSERT_TRUE(hook.render(ev, target, body, missing));
  EXPECT_EQ(target, "/users/..%2F..%2Fadmin%2Fx%40evil.com%3A80%2F?q=a%20b%26c%3Dd%23");
  EXPECT_EQ(hook.settings().endpoint.host, "127.0.0.1");
  EXPECT_EQ(body, ev.raw());  // the default body is the payload
}

// ---- config

app::LoadResult load(const std::string& action, const std::string& extra = {}) {
  return app::load_config_text("postgres: {dsn: 'postgresql:///x'}\n" + extra +
                                   "rules:\n  - name: r\n    channel: c\n    actions:\n"
                                   "      - webhook:\n" +
                                   action,
                               "t.yaml", [](std::string_view name) -> std::optional<std::string> {
                                 if (name == "HOOK_TOKEN") return "s3cret";
                                 return std::nullopt;
                               });
}

std::string errors_of(const app::LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

TEST(WebhookConfig, FullAction) {
  auto r = load(
      "          url: 'https://hooks.example.com/orders/{id}'\n"
      "          method: put\n"
      "          headers: {Authorization: 'Bearer ${HOOK_TOKEN}', X-Tenant: acme}\n"
      "          body: '{{\"order\": {id}}}'\n"
      "          secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
      "          timeout: 3s\n"
      "          retry: {schedule: [0s, 1s, 1m], permanent: [400, 409]}\n",
      "webhook: {queue_limit: 5, max_connections_per_endpoint: 2}\n");
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->webhook.queue_limit, 5);
  EXPECT_EQ(r.config->webhook.max_connections_per_endpoint, 2);
  const auto& s =
      static_cast<const WebhookAction&>(*r.config->rules->rules()[0]->actions[0]).settings();
  EXPECT_EQ(s.method, "PUT");
  ASSERT_EQ(s.headers.size(), 2u);
  EXPECT_EQ(s.headers[0].second, "Bearer s3cret");
  EXPECT_EQ(s.keys.size(), 1u);
  EXPECT_EQ(s.timeout, 3s);
  EXPECT_EQ(s.retry.max_attempts(), 3);
  EXPECT_EQ(s.retry.permanent(), (std::vector<int>{400, 409}));
  ASSERT_TRUE(s.body);
}

TEST(WebhookConfig, Defaults) {
  auto r = load("          url: 'http://127.0.0.1:9000/hook'\n");
  ASSERT_TRUE(r.config) << errors_of(r);
  const auto& s =
      static_cast<const WebhookAction&>(*r.config->rules->rules()[0]->actions[0]).settings();
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(s.timeout, 10s);
  EXPECT_EQ(s.retry.schedule(), RetryPolicy::default_schedule());
  EXPECT_EQ(s.retry.permanent(), RetryPolicy::default_permanent());
  EXPECT_TRUE(s.keys.empty());
  EXPECT_FALSE(s.body);
}

TEST(WebhookConfig, ErrorsNameTheKey) {
  struct Case {
    const char* action;
    const char* expect;
  };
  const Case cases[] = {
      {"          url: 'https://{tenant}.example.com/'\n", "only in the path and query"},
      {"          url: 'http://x/'\n          method: GET\n", "POST, PUT or PATCH"},
      {"          url: 'http://x/'\n          secret: 'nope!'\n", "whsec_"},
      {"          url: 'http://x/'\n          headers: {webhook-id: x}\n", "set by pgfanout"},
      {"          url: 'http://x/'\n          headers: {'bad name': x}\n", "invalid header name"},
      {"          url: 'http://x/'\n          retry: {schedule: [soon]}\n", "not a duration"},
      {"          url: 'http://x/'\n          retry: {permanent: [410]}\n", "own handling"},
      {"          url: 'http://x/'\n          ca_file: /nonexistent/ca.pem\n", "ca_file"},
      {"          url: 'http://x/'\n          timeot: 1s\n", "did you mean \"timeout\""},
      {"          method: POST\n", "needs a url"},
  };
  for (const auto& c : cases) {
    auto r = load(c.action);
    EXPECT_FALSE(r.config) << c.action;
    EXPECT_NE(errors_of(r).find(c.expect), std::string::npos) << c.action << errors_of(r);
    EXPECT_NE(errors_of(r).find("t.yaml:"), std::string::npos);
  }
}

TEST(WebhookConfig, SecretFromFile) {
  auto path = ::testing::TempDir() + "/hook-secret";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", f);
    std::fclose(f);
  }
  auto r = load("          url: 'http://x/'\n          secret_file: " + path + "\n");
  ASSERT_TRUE(r.config) << errors_of(r);
  const auto& s =
      static_cast<const WebhookAction&>(*r.config->rules->rules()[0]->actions[0]).settings();
  EXPECT_EQ(s.keys.size(), 1u);
}

}  // namespace
}  // namespace pgfanout::webhook

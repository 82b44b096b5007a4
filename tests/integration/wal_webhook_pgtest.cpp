// Durable webhooks of events from the WAL source: two instances, a slot each, both stream every
// change of a `via: wal` table whose durable rule calls a webhook; each delivery is recorded in
// pgfanout.deliveries once (under an id derived from the change's WAL position) and sent once.
#include <set>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"
#include "support/WebhookSink.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

TEST(WalWebhook, TwoInstancesDeliverEachDurableWebhookOnce) {
  ScratchDatabase db("walhook");
  BlockingPg(db.dsn()).exec("CREATE TABLE items (id int PRIMARY KEY, v text)");
  WebhookSink sink;
  auto config = [&](const std::string& slot) {
    return write_temp_file(
        slot + ".yaml",
        "postgres: {dsn: \"" + db.dsn() +
            "\"}\nhttp: {listen: 127.0.0.1:0}\n"
            "wal: {slot: " +
            slot +
            ", status_interval: 200ms}\n"
            "webhook: {poll_interval: 200ms}\n"
            "watch:\n  - table: public.items\n    via: wal\n"
            "rules:\n  - name: hook\n    channel: items_changed\n    durable: true\n"
            "    actions:\n      - webhook: {url: \"http://127.0.0.1:" +
            std::to_string(sink.port()) + "/items/{id}\"}\n");
  };
  const std::string a_config = config("wh_a_" + db.name()), b_config = config("wh_b_" + db.name());
  for (const auto& c : {a_config, b_config}) {
    auto [code, out] = run_pgfanout({"install", "--config", c});
    ASSERT_EQ(code, 0) << out;
  }
  DaemonProcess a({"run", "--config", a_config}), b({"run", "--config", b_config});
  ASSERT_TRUE(a.wait_for_output("WAL source: streaming")) << a.output();
  ASSERT_TRUE(b.wait_for_output("WAL source: streaming")) << b.output();

  for (int i = 1; i <= 20; ++i) {
    BlockingPg(db.dsn()).exec("INSERT INTO items VALUES (" + std::to_string(i) + ", 'x')");
  }
  ASSERT_TRUE(wait_until([&] { return sink.request_count() >= 20; }, 20s))
      << sink.request_count() << "\n"
      << a.output() << b.output();
  std::this_thread::sleep_for(1500ms);  // a second copy would come within a poll interval
  auto requests = sink.requests();
  EXPECT_EQ(requests.size(), 20u) << "each delivery sent once across the two instances";
  std::set<std::string> ids, targets;
  for (const auto& r : requests) {
    ids.insert(r.header("webhook-id"));
    targets.insert(r.target);
    EXPECT_EQ(r.header("webhook-id").rfind("msg_wal_", 0), 0u) << r.header("webhook-id");
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(targets.size(), 20u);
  EXPECT_EQ(BlockingPg(db.dsn())
                .value("SELECT count(*) FROM pgfanout.deliveries WHERE rule = 'hook'")
                .value_or(""),
            "20")
      << "one row per delivery, though both instances recorded each";
}

}  // namespace
}  // namespace pgfanout::test

// HubState::replay: SSE resume from the outbox for the durable pushes of the running rules.
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "hub/HubSql.hpp"
#include "hub/HubState.hpp"
#include "hub/PushAction.hpp"
#include "hub/ServerFrames.hpp"
#include "pg/ConnInfo.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::hub {

void HubState::replay(std::vector<std::string> wanted, std::int64_t after,
                      std::function<void(std::vector<ReplayedEvent>, std::vector<std::string>,
                                         std::optional<OutboxPosition>)>
                          done) {
  if (hop(done, [self = shared_from_this(), wanted, after](auto d) {
        self->replay(wanted, after, std::move(d));
      })) {
    return;
  }
  auto set = rules ? rules() : nullptr;
  std::vector<std::string> channels;
  // A topic is resumable when some durable push could render it: a template with fields might,
  // a literal one only when it is that topic.
  std::unordered_set<std::string> resumable;
  bool any_template = false;
  if (set) {
    for (const auto& channel : set->durable_channels()) {
      bool pushes = false;
      for (const rules::Rule* rule : set->for_channel(channel)) {
        if (!rule->durable) continue;
        for (const auto& a : rule->actions) {
          const auto* push = a->as<PushAction>();
          if (push == nullptr) continue;
          pushes = true;
          if (push->topic().has_fields()) {
            any_template = true;
          } else {
            resumable.insert(push->topic().source());
          }
        }
      }
      if (pushes) channels.push_back(channel);
    }
  }
  std::vector<std::string> lost;
  for (const auto& t : wanted) {
    if (!any_template && !resumable.contains(t)) lost.push_back(t);
  }
  if (channels.empty() || lost.size() == wanted.size()) {
    return done({}, std::move(lost), std::nullopt);
  }
  const int limit = config.resume_limit;
  // Resume in the order the outbox reader delivered live events: the safe (txid, id) order after
  // the event the client last saw, never by id alone (ids are not commit order). The first row
  // says whether that event is still in the outbox; when it was trimmed the gap cannot be
  // replayed and the topics get `resync`.
  sql.run(
      "WITH last AS (SELECT txid, id FROM pgfanout.outbox WHERE id = $1), "
      "page AS (SELECT o.txid, o.id, o.channel, o.payload::text AS payload "
      "FROM pgfanout.outbox o, last WHERE (o.txid, o.id) > (last.txid, last.id) "
      "AND o.txid < pg_snapshot_xmin(pg_current_snapshot()) AND o.channel = ANY($2::text[]) "
      "ORDER BY o.txid, o.id LIMIT $3) "
      "SELECT NULL::bigint, NULL::text, (SELECT count(*) FROM last)::text, 0 AS k, "
      "(SELECT txid FROM last) AS t, 0::bigint AS i "
      "UNION ALL SELECT id, channel, payload, 1, txid, id FROM page ORDER BY 4, 5, 6",
      {std::to_string(after), pg::text_array(channels), std::to_string(limit + 1)},
      std::chrono::seconds(10),
      [set, after, wanted = std::move(wanted), lost = std::move(lost), limit,
       done = std::move(done)](pg::PgResult&& r) mutable {
        if (!r.ok) {
          spdlog::warn("SSE resume: reading the outbox failed: {}", r.error);
          return done({}, std::move(wanted), std::nullopt);
        }
        std::unordered_set<std::string> wanted_set(wanted.begin(), wanted.end());
        std::vector<ReplayedEvent> out;
        if (r.rows.empty() || r.rows[0][2] != "1" || !r.rows[0][4]) {
          return done({}, std::move(wanted), std::nullopt);
        }
        OutboxPosition seen{std::stoull(*r.rows[0][4]), after};
        if (static_cast<int>(r.rows.size()) - 1 > limit) lost = wanted;
        std::string topic, name, data, why;
        for (std::size_t i = 1; i < r.rows.size() && static_cast<int>(i) <= limit; ++i) {
          if (!r.rows[i][0] || !r.rows[i][1] || !r.rows[i][2]) continue;
          std::int64_t id = std::stoll(*r.rows[i][0]);
          if (r.rows[i][4]) seen = {std::stoull(*r.rows[i][4]), id};
          const std::string& channel = *r.rows[i][1];
          auto payload = rules::ParsedPayload::parse(channel, *r.rows[i][2]);
          set->for_each_match(
              payload, std::chrono::steady_clock::now(), id,
              [&](const rules::Rule& rule, const rules::Event& ev, int) {
                for (const auto& a : rule.actions) {
                  const auto* push = a->as<PushAction>();
                  if (push == nullptr) continue;
                  topic.clear();
                  if (!push->topic().render(ev, topic) || !wanted_set.contains(topic)) continue;
                  if (!push->render(ev, name, data, why)) continue;
                  out.push_back({topic, std::to_string(id),
                                 std::make_shared<const std::string>(
                                     event_frame(topic, name, data, std::to_string(id)))});
                }
              },
              rules::RuleScope::DurableOnly);
        }
        done(std::move(out), std::move(lost), seen);
      });
}

}  // namespace pgfanout::hub

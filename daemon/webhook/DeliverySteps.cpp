#include "webhook/DeliveryWorkerImpl.hpp"

namespace pgfanout::webhook {

namespace {

template <typename T>
std::string int_array(const std::vector<T>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(items[i]);
  }
  return out + "}";
}

std::string optional_int_array(const std::vector<int>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += items[i] == 0 ? std::string("NULL") : std::to_string(items[i]);
  }
  return out + "}";
}

std::string interval(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " milliseconds";
}
}  // namespace

void DeliveryWorker::Impl::write_reports() {
  std::vector<std::int64_t> ids;
  std::vector<int> attempts, statuses;
  std::vector<std::string> states, errs;
  std::vector<std::int64_t> delays;
  for (auto& r : reports) {
    ids.push_back(r.id);
    attempts.push_back(r.attempt);
    states.push_back(r.state);
    statuses.push_back(r.status);
    errs.push_back(r.error);
    delays.push_back(r.delay_ms);
  }
  auto count = reports.size();
  run("SELECT pgfanout.delivery_report($1::bigint[], $2::int[], $3::text[], $4::int[], "
      "$5::text[], $6::bigint[])",
      {int_array(ids), int_array(attempts), pg::text_array(states), optional_int_array(statuses),
       pg::text_array(errs), int_array(delays)},
      [this, count](pg::PgResult&& r) {
        if (!r.ok) {
          // Not retried: the rows' leases run out and they are sent again (at-least-once).
          missing_sql(r, "report");
        }
        reports.erase(reports.begin(), reports.begin() + static_cast<std::ptrdiff_t>(count));
      });
}

void DeliveryWorker::Impl::write_dead_letter() {
  DeadLetter d = std::move(dead_letters.front());
  dead_letters.erase(dead_letters.begin());
  run("SELECT pgfanout.delivery_dead_letter($1, $2::int, $3, $4, $5, $6, $7::int, "
      "NULLIF($8::int, 0), $9)",
      {d.rule, std::to_string(d.action), d.webhook_id, d.url, d.target, d.body,
       std::to_string(d.attempts), std::to_string(d.last_status), d.last_error},
      [this](pg::PgResult&& r) {
        if (!r.ok) missing_sql(r, "dead letter");
      });
}

void DeliveryWorker::Impl::write_rows() {
  const auto n = std::min(to_record.size(), static_cast<std::size_t>(opts.claim_batch));
  recording.assign(std::make_move_iterator(to_record.begin()),
                   std::make_move_iterator(to_record.begin() + static_cast<std::ptrdiff_t>(n)));
  to_record.erase(to_record.begin(), to_record.begin() + static_cast<std::ptrdiff_t>(n));
  std::vector<std::string> rule_names, ids, urls, targets, bodies;
  std::vector<std::int64_t> positions;
  std::string events = "{";
  for (const auto& p : recording) {
    events += events.size() > 1 ? ",NULL" : "NULL";  // not outbox events
    rule_names.push_back(p.row.rule);
    positions.push_back(p.row.action);
    ids.push_back(p.row.webhook_id);
    urls.push_back(p.row.url);
    targets.push_back(p.row.target);
    bodies.push_back(p.row.body);
  }
  events += "}";
  run("SELECT pgfanout.delivery_record($1::bigint[], $2::text[], $3::int[], $4::text[], "
      "$5::text[], $6::text[], $7::text[])",
      {events, pg::text_array(rule_names), int_array(positions), pg::text_array(ids),
       pg::text_array(urls), pg::text_array(targets), pg::text_array(bodies)},
      [this](pg::PgResult&& r) {
        auto done = std::move(recording);
        recording.clear();
        if (!r.ok) missing_sql(r, "record");
        if (r.ok) {
          recorded.inc(done.size());
          want_take = true;
        }
        for (auto& p : done) p.done(r.ok ? std::string() : r.error);
      });
}

void DeliveryWorker::Impl::claim() {
  want_claim = false;
  busy = true;
  conn.query("BEGIN", {}, [](pg::PgResult&&) {});
  conn.query_current(
      "SELECT id, channel, payload::text FROM pgfanout.outbox_claim($1, $2::text[], $3)",
      {opts.group, pg::text_array(channels), std::to_string(opts.claim_batch)},
      [this](pg::PgResult&& r) {
        if (!r.ok) {
          missing_sql(r, "claim");
          finish_transaction("ROLLBACK", 0, false);
          return;
        }
        record(std::move(r));
      });
}

void DeliveryWorker::Impl::record(pg::PgResult&& r) {
  const bool full = static_cast<int>(r.rows.size()) >= opts.claim_batch;
  std::vector<ClaimedEvent> claimed;
  claimed.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    claimed.push_back({std::stoll(row[0].value_or("0")), row[1].value_or(""), row[2].value_or("")});
  }
  auto d = delivery_records(*rules, claimed,
                            [this](const std::string& rule, const std::string& message) {
                              log.warn("skipped:" + rule, message);
                            });
  const auto& events = d.events;
  if (events.empty()) {
    finish_transaction("COMMIT", 0, full);
    return;
  }
  auto n = events.size();
  conn.query_current(
      "SELECT pgfanout.delivery_record($1::bigint[], $2::text[], $3::int[], $4::text[], "
      "$5::text[], $6::text[], $7::text[])",
      {int_array(d.events), pg::text_array(d.rule_names), int_array(d.positions),
       pg::text_array(d.ids), pg::text_array(d.urls), pg::text_array(d.targets),
       pg::text_array(d.bodies)},
      [this, n, full](pg::PgResult&& res) {
        if (!res.ok) {
          missing_sql(res, "record");
          finish_transaction("ROLLBACK", 0, false);
          return;
        }
        finish_transaction("COMMIT", n, full);
      });
}

void DeliveryWorker::Impl::finish_transaction(const char* sql, std::size_t recorded_rows,
                                              bool more) {
  bool commit = std::string_view(sql) == "COMMIT";
  conn.query_current(sql, {}, [this, recorded_rows, more, commit](pg::PgResult&& r) {
    busy = false;
    if (!r.ok) {
      missing_sql(r, "commit");
    } else if (commit) {
      if (recorded_rows > 0) {
        recorded.inc(recorded_rows);
        want_take = true;
      }
      if (more) want_claim = true;
    }
    cycle();
  });
}

void DeliveryWorker::Impl::take() {
  want_take = false;
  auto free = static_cast<std::size_t>(opts.max_in_flight) - in_flight;
  auto n = std::min<std::size_t>(free, static_cast<std::size_t>(opts.claim_batch));
  run("SELECT id, rule, action, webhook_id, target, body, attempts, "
      "(extract(epoch FROM now() - created_at) * 1000)::bigint "
      "FROM pgfanout.delivery_take($1, $2::interval, $3)",
      {instance, interval(opts.lease), std::to_string(n)}, [this, n](pg::PgResult&& r) {
        if (!r.ok) {
          missing_sql(r, "take");
          return;
        }
        if (r.rows.size() >= n) want_take = true;
        for (auto& row : r.rows) send(row);
      });
}

void DeliveryWorker::Impl::send(std::vector<std::optional<std::string>>& row) {
  std::int64_t id = std::stoll(row[0].value_or("0"));
  std::string rule_name = row[1].value_or("");
  int position = std::stoi(row[2].value_or("0"));
  std::string webhook_id = row[3].value_or("");
  int attempt = std::stoi(row[6].value_or("1"));
  auto age = std::chrono::milliseconds(std::stoll(row[7].value_or("0")));
  const rules::Rule* rule = rules ? rules->find(rule_name) : nullptr;
  const WebhookAction* hook = nullptr;
  if (rule != nullptr && position >= 0 &&
      static_cast<std::size_t>(position) < rule->actions.size()) {
    hook = rule->actions[static_cast<std::size_t>(position)]->as<WebhookAction>();
  }
  auto endpoint = WebhookSender::endpoint_name(rule_name, position);
  if (hook == nullptr) {
    reports.push_back(
        {id, attempt, "dead", 0, "rule " + endpoint + " is no longer a webhook in the config", 0});
    return;
  }
  if (sender.disabled(endpoint)) {
    reports.push_back(
        {id, attempt, "dead", 0, "endpoint disabled by 410 Gone until the config is reloaded", 0});
    return;
  }
  ++in_flight;
  sender.durable_in_flight().set(static_cast<double>(in_flight));
  auto started = SteadyClock::now();
  std::string target = row[4].value_or("/");
  std::string body = row[5].value_or("");
  std::string url = hook->settings().endpoint.origin();
  sender.attempt(*hook, endpoint, webhook_id, attempt, target, body,
                 [this, id, attempt, age, started, rule_name, position, webhook_id, url, target,
                  body](Outcome&& o) {
                   --in_flight;
                   sender.durable_in_flight().set(static_cast<double>(in_flight));
                   std::string error = o.decision.reason;
                   if (!o.result.body_excerpt.empty() && o.decision.verdict != Verdict::Delivered) {
                     error += ": " + o.result.body_excerpt;
                   }
                   switch (o.decision.verdict) {
                     case Verdict::Delivered:
                       sender.count_delivered(age + (SteadyClock::now() - started));
                       reports.push_back({id, attempt, "done", o.result.status, "", 0});
                       break;
                     case Verdict::Retry: {
                       auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
                           o.decision.next_attempt - sender.clock().now());
                       reports.push_back({id, attempt, "pending", o.result.status, error,
                                          std::max<std::int64_t>(0, delay.count())});
                       break;
                     }
                     case Verdict::Dead:
                     case Verdict::EndpointGone:
                       sender.count_dead(DeadLetter{rule_name, position, webhook_id, url, target,
                                                    body, attempt, o.result.status, error});
                       reports.push_back({id, attempt, "dead", o.result.status, error, 0});
                       break;
                   }
                   want_take = true;
                   cycle();
                 });
}

void DeliveryWorker::Impl::trim() {
  want_trim = false;
  next_trim = SteadyClock::now() + std::chrono::minutes(1);
  run("SELECT pgfanout.deliveries_trim($1::interval, 10000)", {interval(opts.keep_done)},
      [this](pg::PgResult&& r) {
        if (!r.ok) missing_sql(r, "trim");
      });
}

}  // namespace pgfanout::webhook

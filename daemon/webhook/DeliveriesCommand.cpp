#include "webhook/DeliveriesCommand.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>

#include "pg/ConnInfo.hpp"

namespace pgfanout::webhook {

namespace {

using ConnPtr = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string trimmed_error(PGconn* c, PGresult* r) {
  std::string e = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c);
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

std::string one_line(std::string s, std::size_t max) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

}  // namespace

int run_deliveries_command(const pg::PostgresConfig& postgres, const DeliveriesArgs& args,
                           std::FILE* out, std::FILE* err) {
  if (args.action != "list" && args.action != "retry") {
    std::fprintf(err, "pgfanout deliveries: expected list or retry\n");
    return 64;
  }
  if (args.action == "list" && !args.ids.empty()) {
    std::fprintf(err, "pgfanout deliveries list: unexpected argument \"%s\"\n",
                 args.ids[0].c_str());
    return 64;
  }
  if (args.action == "retry" && args.dead == !args.ids.empty()) {
    std::fprintf(err, "pgfanout deliveries retry: give delivery ids or --dead\n");
    return 64;
  }
  std::string id_array = "{";
  for (const auto& id : args.ids) {
    if (id.empty() ||
        !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      std::fprintf(err, "pgfanout deliveries retry: \"%s\" is not a delivery id\n", id.c_str());
      return 64;
    }
    id_array += (id_array.size() > 1 ? "," : "") + id;
  }
  id_array += "}";

  pg::ConnParams params(postgres.dsn, postgres.password, postgres.connect_timeout);
  ConnPtr conn(PQconnectdbParams(params.keywords(), params.values(), 1), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::fprintf(err, "pgfanout deliveries: cannot connect to %s: %s\n",
                 pg::describe(postgres.dsn).c_str(), trimmed_error(conn.get(), nullptr).c_str());
    return 1;
  }

  if (args.action == "retry") {
    const char* values[1] = {args.dead ? nullptr : id_array.c_str()};
    ResultPtr r(PQexecParams(conn.get(), "SELECT pgfanout.deliveries_retry($1::bigint[])", 1,
                             nullptr, values, nullptr, nullptr, 0),
                &PQclear);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      std::fprintf(err, "pgfanout deliveries retry: %s\n",
                   trimmed_error(conn.get(), r.get()).c_str());
      return 1;
    }
    int n = std::atoi(PQgetvalue(r.get(), 0, 0));
    std::fprintf(out, "%d dead letter(s) queued for delivery again\n", n);
    if (!args.dead && n < static_cast<int>(args.ids.size())) {
      std::fprintf(err, "%zu id(s) were not dead letters\n",
                   args.ids.size() - static_cast<std::size_t>(n));
      return 1;
    }
    return 0;
  }

  const char* values[1] = {args.dead ? "t" : "f"};
  ResultPtr r(
      PQexecParams(conn.get(),
                   "SELECT id, state, attempts, coalesce(last_status::text, '-'), "
                   "to_char(next_attempt_at, 'YYYY-MM-DD HH24:MI:SS'), rule, webhook_id, "
                   "url || target, coalesce(last_error, '') "
                   "FROM pgfanout.deliveries "
                   "WHERE CASE WHEN $1::boolean THEN state = 'dead' ELSE state <> 'done' END "
                   "ORDER BY id LIMIT 1000",
                   1, nullptr, values, nullptr, nullptr, 0),
      &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    std::fprintf(err, "pgfanout deliveries list: %s\n", trimmed_error(conn.get(), r.get()).c_str());
    return 1;
  }
  std::fprintf(out, "%-8s %-8s %-8s %-6s %-19s %-20s %-40s %s\n", "ID", "STATE", "ATTEMPTS",
               "STATUS", "NEXT ATTEMPT", "RULE", "URL", "LAST ERROR");
  int rows = PQntuples(r.get());
  for (int i = 0; i < rows; ++i) {
    auto v = [&](int c) { return std::string(PQgetvalue(r.get(), i, c)); };
    std::fprintf(out, "%-8s %-8s %-8s %-6s %-19s %-20s %-40s %s\n", v(0).c_str(), v(1).c_str(),
                 v(2).c_str(), v(3).c_str(), v(4).c_str(), one_line(v(5), 20).c_str(),
                 one_line(v(7), 40).c_str(), one_line(v(8), 100).c_str());
  }
  std::fprintf(out, "%d row(s)%s\n", rows, rows == 1000 ? " (the first 1000)" : "");
  return 0;
}

}  // namespace pgfanout::webhook

#include "pg/Installer.hpp"

#include <libpq-fe.h>

#include <memory>

#include "pg/ConnInfo.hpp"
#include "pg/SqlBundle.hpp"

namespace pgfanout::pg {

namespace {

using ConnPtr = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string error_of(PGconn* c, PGresult* r) {
  std::string e = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c);
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

}  // namespace

InstallResult install(const PostgresConfig& postgres, const std::vector<WatchSpec>& watch) {
  InstallResult result;
  ConnParams params(postgres.dsn, postgres.password, postgres.connect_timeout);
  ConnPtr conn(PQconnectdbParams(params.keywords(), params.values(), 1), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    result.error =
        "cannot connect to " + describe(postgres.dsn) + ": " + error_of(conn.get(), nullptr);
    return result;
  }
  auto exec = [&](const std::string& sql) {
    ResultPtr r(PQexec(conn.get(), sql.c_str()), &PQclear);
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      result.error = error_of(conn.get(), r.get());
      return false;
    }
    return true;
  };
  if (!exec("BEGIN")) return result;
  std::string sql(trigger_sql());
  if (!sql.empty() && !exec(sql)) {
    result.error = "applying the trigger-generator SQL failed: " + result.error;
    return result;
  }
  for (const auto& w : watch) {
    std::vector<std::string> values = {w.table,
                                       w.channel,
                                       w.columns.empty() ? std::string() : text_array(w.columns),
                                       text_array(w.ops),
                                       w.changed.empty() ? std::string() : text_array(w.changed),
                                       w.per_statement ? "true" : "false",
                                       w.durable ? "true" : "false"};
    const char* ptrs[7];
    for (int i = 0; i < 7; ++i) ptrs[i] = values[i].c_str();
    if (w.channel.empty()) ptrs[1] = nullptr;
    if (w.columns.empty()) ptrs[2] = nullptr;
    if (w.changed.empty()) ptrs[4] = nullptr;
    ResultPtr r(PQexecParams(conn.get(),
                             "SELECT pgfanout.watch($1::regclass, $2::text, $3::text[], "
                             "$4::text[], $5::text[], $6::boolean, $7::boolean)",
                             7, nullptr, ptrs, nullptr, nullptr, 0),
                &PQclear);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      result.error = "watch " + w.table + ": " + error_of(conn.get(), r.get());
      return result;
    }
    ++result.watched;
  }
  if (!exec("COMMIT")) return result;
  result.ok = true;
  return result;
}

}  // namespace pgfanout::pg

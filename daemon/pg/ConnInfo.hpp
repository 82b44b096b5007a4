// Connection parameters for libpq, and a loggable description of them.
//
// The DSN can hold a password, so it is never logged: describe() names host, port, database and
// user only. ConnParams owns the keyword/value arrays PQconnectStartParams wants, with pgfanout's
// defaults (TCP keepalives, application name) placed before the DSN so the DSN can override them,
// and an explicit password after it so it wins.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace pgfanout::pg {

class ConnParams {
 public:
  // `replication`: a logical replication connection (replication=database), after the DSN so
  // the DSN cannot turn it off.
  ConnParams(const std::string& dsn, const std::string& password,
             std::chrono::milliseconds connect_timeout, bool replication = false);
  const char* const* keywords() const { return keyword_ptrs_.data(); }
  const char* const* values() const { return value_ptrs_.data(); }

 private:
  std::vector<std::string> keywords_, values_;
  std::vector<const char*> keyword_ptrs_, value_ptrs_;
};

// "host=db1 port=5432 dbname=app user=pgfanout" — without password or other secrets.
std::string describe(const std::string& dsn);

// Whether the DSN parses; `error` gets libpq's message when it does not.
bool valid_dsn(const std::string& dsn, std::string& error);

// Quotes an identifier for SQL (double quotes, doubled inner quotes).
std::string quote_ident(const std::string& name);
// Quotes a string literal for SQL (single quotes, doubled inner quotes), for the few statements
// that take no bound parameters (a replication connection's START_REPLICATION).
std::string quote_literal(const std::string& text);

// A text[] literal for a bound parameter: {"a","b \"c\""}.
std::string text_array(const std::vector<std::string>& items);

}  // namespace pgfanout::pg

#include "pg/ConnInfo.hpp"

#include <libpq-fe.h>

namespace pgfanout::pg {

ConnParams::ConnParams(const std::string& dsn, const std::string& password,
                       std::chrono::milliseconds connect_timeout, bool replication) {
  auto add = [&](const char* k, std::string v) {
    keywords_.emplace_back(k);
    values_.push_back(std::move(v));
  };
  add("fallback_application_name", "pgfanout");
  add("keepalives", "1");
  add("keepalives_idle", "30");
  add("keepalives_interval", "10");
  add("keepalives_count", "3");
  add("connect_timeout", std::to_string(std::max<long long>(
                             2, std::chrono::ceil<std::chrono::seconds>(connect_timeout).count())));
  add("dbname", dsn);
  if (!password.empty()) add("password", password);
  if (replication) add("replication", "database");
  for (std::size_t i = 0; i < keywords_.size(); ++i) {
    keyword_ptrs_.push_back(keywords_[i].c_str());
    value_ptrs_.push_back(values_[i].c_str());
  }
  keyword_ptrs_.push_back(nullptr);
  value_ptrs_.push_back(nullptr);
}

std::string describe(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    if (err != nullptr) PQfreemem(err);
    return "(unparsable connection string)";
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    std::string k = o->keyword;
    if (o->val == nullptr ||
        (k != "host" && k != "hostaddr" && k != "port" && k != "dbname" && k != "user")) {
      continue;
    }
    if (!out.empty()) out += ' ';
    out += k + "=" + o->val;
  }
  PQconninfoFree(opts);
  return out.empty() ? "(libpq defaults)" : out;
}

bool valid_dsn(const std::string& dsn, std::string& error) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    error = err != nullptr ? err : "invalid connection string";
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
    if (err != nullptr) PQfreemem(err);
    return false;
  }
  PQconninfoFree(opts);
  return true;
}

std::string quote_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace pgfanout::pg

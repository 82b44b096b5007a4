#include "hub/HubSql.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "hub/HubState.hpp"
#include "pg/WalTypes.hpp"

namespace pgfanout::hub {

namespace json = boost::json;

namespace {

json::value column_value(const std::optional<std::string>& text, unsigned oid) {
  if (!text) return nullptr;
  boost::system::error_code ec;
  switch (pg::builtin_json_kind(oid)) {
    case pg::JsonKind::Bool:
      return *text == "t";
    case pg::JsonKind::Number: {
      json::value v = json::parse(*text, ec);
      if (!ec && v.is_number()) return v;
      return json::string(*text);  // NaN, Infinity
    }
    case pg::JsonKind::Json:
    case pg::JsonKind::Jsonb: {
      json::value v = json::parse(*text, ec);
      if (!ec) return v;
      return json::string(*text);
    }
    default:
      return json::string(*text);
  }
}

}  // namespace

json::object row_object(const pg::PgResult& r, std::size_t row) {
  json::object o;
  for (std::size_t c = 0; c < r.columns.size(); ++c) {
    unsigned oid = c < r.column_types.size() ? r.column_types[c] : 25;
    o[r.columns[c]] = column_value(r.rows[row][c], oid);
  }
  return o;
}

void client_error(const pg::PgResult& r, std::string& code, std::string& message) {
  std::string_view cls = std::string_view(r.sqlstate).substr(0, 2);
  if (r.sqlstate == "57014") {
    code = "timeout";
    message = "the command took too long";
  } else if (cls == "08" || r.sqlstate.empty()) {
    code = "unavailable";
    message = "the database is not available; try again";
  } else if (cls == "P0" || cls == "22" || cls == "23") {
    code = "command_failed";
    message = r.message.empty() ? "command failed" : r.message;
  } else {
    code = "command_failed";
    message = "command failed";
  }
}

const std::string* claim(const auth::Claims* claims, std::string_view name) {
  if (claims == nullptr) return nullptr;
  auto it = claims->find(name);
  return it == claims->end() ? nullptr : &it->second;
}

std::string rows_json(const pg::PgResult& r) {
  json::array a;
  a.reserve(r.rows.size());
  for (std::size_t i = 0; i < r.rows.size(); ++i) a.emplace_back(row_object(r, i));
  return json::serialize(a);
}

}  // namespace pgfanout::hub

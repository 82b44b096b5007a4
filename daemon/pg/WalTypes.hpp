// The type catalog of the WAL source: how a column's text output (what pgoutput sends) becomes
// the JSON text `to_jsonb(value)::text` gives for it, which is what the trigger generators put in
// the envelope (sql/triggers/020_watch.sql, json_text_sql). A domain counts as its base type.
//
//   integers, oid, float4/8, numeric   a JSON number, printed as jsonb prints numeric: float text
//                                      is re-read as numeric (1e+20 -> 100000000000000000000,
//                                      1.5e-05 -> 0.000015); NaN and infinities are strings
//   bool                               true / false
//   json                               normalized as jsonb does: keys shortest first then
//                                      bytewise, the last of duplicate keys, `{"a": 1, "b": [1,
//                                      2]}`
//   jsonb                              as it is (its text output is already jsonb's)
//   arrays                             JSON arrays (nested for several dimensions; bounds dropped),
//                                      elements typed by the element type, NULL elements null
//   date, timestamp, timestamptz       to_jsonb's ISO strings: "2026-11-30",
//   "2026-11-30T14:42:03.123",
//                                      "2026-11-30T14:42:03.123+00:00"; infinity as "infinity"
//   anything else (text, uuid, enum,   a JSON string of the text output, escaped as jsonb escapes
//   bytea "\x..", interval, ranges)    ("\\x0102" for bytea in hex output)
//
// Two kinds of type need the server to give to_jsonb's JSON and the daemon cannot run it:
// user-defined types with a cast to json (to_jsonb calls the cast: PostGIS geometry gives
// GeoJSON) and composite types (to_jsonb gives an object). For them the WAL envelope carries the
// type's text output as a JSON string and names the column in "as_text" (convert() answers
// Conversion::AsText), so a consumer can tell that value from to_jsonb's.
//
// The text forms assumed are those of a replication session with DateStyle = ISO,
// bytea_output = hex and the default extra_float_digits; timestamptz is printed in that
// session's TimeZone. A writer whose session has another TimeZone gets, from its trigger, the
// same instant with its own offset ("...T15:42:03+01:00" where the WAL gives "...T14:42:03+00:00").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgfanout::pg {

using TypeOid = std::uint32_t;

enum class JsonKind {
  Number,
  Bool,
  Json,
  Jsonb,
  Date,
  Timestamp,
  TimestampTz,
  Array,
  String,
  AsText,  // a json cast or a composite: text output as a string, marked (see above)
};

// The kind of a built-in scalar type (numbers, bool, json, jsonb, date and timestamps); String for
// any other type oid (an array, a domain or an extension's type needs the catalog: TypeCatalog).
JsonKind builtin_json_kind(TypeOid oid);

struct TypeInfo {
  TypeOid oid = 0;
  TypeOid base = 0;     // oid itself unless a domain
  TypeOid element = 0;  // for an array: the element type (in the catalog too)
  char delimiter = ',';
  JsonKind kind = JsonKind::String;
  std::string name;  // the base type's name, for messages
};

// The query that loads the catalog rows for the type oids in $1 (an oid[] given as text such as
// "{23,16401}") and for the element types of the arrays among them. Columns: oid, base, name,
// element, delimiter, composite ("t"/"f"), json_cast ("t"/"f"). Feed each row to
// TypeCatalog::add_row.
extern const char* const kTypeCatalogSql;

enum class Conversion { Exact, AsText };

class TypeCatalog {
 public:
  TypeCatalog();  // knows the built-in types that need no query (bool, integers, text, ...)

  void add(TypeInfo info);
  // One row of kTypeCatalogSql, columns in order; false when the row is malformed.
  bool add_row(const std::vector<std::string>& row);
  const TypeInfo* find(TypeOid oid) const;
  // Types among `oids` (and the elements of known arrays among them) not in the catalog.
  std::vector<TypeOid> missing(const std::vector<TypeOid>& oids) const;

  // Appends to `out` the JSON text for the text output `text` of a value of type `type`.
  // An unknown type is treated as a string (AsText).
  Conversion append_json(TypeOid type, std::string_view text, std::string& out) const;

 private:
  std::unordered_map<TypeOid, TypeInfo> types_;
};

// The pieces, for tests and other users.
void append_json_string(std::string_view text, std::string& out);
// A JSON number's text as jsonb prints it (through numeric); nullopt if `text` is no JSON number.
std::optional<std::string> normalize_json_number(std::string_view text);
// json text as jsonb prints it; nullopt for invalid JSON (or \u0000, which jsonb rejects).
std::optional<std::string> normalize_json(std::string_view text);
// DateStyle=ISO timestamp[tz] output in to_jsonb's form (a bare string, not quoted).
std::string iso_timestamp_to_json(std::string_view text, bool with_zone);

}  // namespace pgfanout::pg

#include "pg/WalTypes.hpp"

#include <algorithm>
#include <cstdlib>

namespace pgfanout::pg {

// For each type asked for and each element type of the arrays among them: the type, its base
// through any chain of domains, the base's name, the base's element type when it is an array,
// the element's delimiter, whether the base is composite, and whether to_jsonb would call a cast
// to json for it (only for user-defined types, as jsonb_categorize_type does).
const char* const kTypeCatalogSql = R"sql(
WITH RECURSIVE
asked(start, cur) AS (
  SELECT o, o FROM pg_catalog.unnest($1::pg_catalog.oid[]) AS o
  UNION ALL
  SELECT a.start, t.typbasetype FROM asked a JOIN pg_catalog.pg_type t ON t.oid = a.cur AND t.typtype = 'd'),
wanted(o) AS (
  SELECT o FROM pg_catalog.unnest($1::pg_catalog.oid[]) AS o
  UNION
  SELECT t.typelem FROM asked a JOIN pg_catalog.pg_type t ON t.oid = a.cur
   WHERE t.typtype <> 'd' AND t.typelem <> 0
     AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc),
chain(start, cur) AS (
  SELECT o, o FROM wanted
  UNION ALL
  SELECT c.start, t.typbasetype FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.cur AND t.typtype = 'd')
SELECT c.start::pg_catalog.text, t.oid::pg_catalog.text, t.typname::pg_catalog.text,
       (CASE WHEN t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
             THEN t.typelem ELSE 0 END)::pg_catalog.text,
       coalesce(e.typdelim, ',')::pg_catalog.text,
       (t.typtype = 'c')::pg_catalog.text,
       (t.oid >= 16384 AND EXISTS (
          SELECT 1 FROM pg_catalog.pg_cast k
           WHERE k.castsource = t.oid AND k.casttarget = 'pg_catalog.json'::pg_catalog.regtype
             AND k.castmethod = 'f'))::pg_catalog.text
  FROM chain c
  JOIN pg_catalog.pg_type t ON t.oid = c.cur AND t.typtype <> 'd'
  LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
)sql";

JsonKind builtin_json_kind(TypeOid oid) {
  switch (oid) {
    case 20:    // int8
    case 21:    // int2
    case 23:    // int4
    case 700:   // float4
    case 701:   // float8
    case 1700:  // numeric
      return JsonKind::Number;
    case 16:
      return JsonKind::Bool;
    case 114:
      return JsonKind::Json;
    case 3802:
      return JsonKind::Jsonb;
    case 1082:
      return JsonKind::Date;
    case 1114:
      return JsonKind::Timestamp;
    case 1184:
      return JsonKind::TimestampTz;
    default:
      return JsonKind::String;
  }
}

namespace {

JsonKind kind_of_base(TypeOid base, TypeOid element, bool composite, bool json_cast) {
  if (auto k = builtin_json_kind(base); k != JsonKind::String) return k;
  if (element != 0) return JsonKind::Array;
  if (composite || json_cast) return JsonKind::AsText;
  return JsonKind::String;
}

std::optional<TypeOid> parse_oid(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (*end != '\0' || v > 0xffffffffUL) return std::nullopt;
  return static_cast<TypeOid>(v);
}

// Parses a PostgreSQL array literal (array_out's form) and appends the JSON array.
class ArrayLiteral {
 public:
  ArrayLiteral(const TypeCatalog& catalog, const TypeInfo& element, std::string_view s)
      : catalog_(catalog), element_(element), s_(s) {}

  bool convert(std::string& out, Conversion& conv) {
    if (!s_.empty() && s_[0] == '[') {  // explicit bounds: "[0:1]={a,b}"
      auto eq = s_.find('=');
      if (eq == std::string_view::npos) return false;
      i_ = eq + 1;
    }
    if (!level(out, conv, 0)) return false;
    return i_ == s_.size();
  }

 private:
  bool level(std::string& out, Conversion& conv, int depth) {
    if (depth > 6 || i_ >= s_.size() || s_[i_] != '{') return false;  // MAXDIM is 6
    ++i_;
    out.push_back('[');
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      out.push_back(']');
      return true;
    }
    for (bool first = true;; first = false) {
      if (!first) out += ", ";
      if (i_ >= s_.size()) return false;
      if (s_[i_] == '{') {
        if (!level(out, conv, depth + 1)) return false;
      } else if (!item(out, conv)) {
        return false;
      }
      if (i_ >= s_.size()) return false;
      if (s_[i_] == '}') {
        ++i_;
        out.push_back(']');
        return true;
      }
      if (s_[i_] != element_.delimiter) return false;
      ++i_;
    }
  }

  bool item(std::string& out, Conversion& conv) {
    std::string value;
    bool quoted = false;
    if (s_[i_] == '"') {
      quoted = true;
      ++i_;
      for (;;) {
        if (i_ >= s_.size()) return false;
        char c = s_[i_++];
        if (c == '"') break;
        if (c == '\\') {
          if (i_ >= s_.size()) return false;
          c = s_[i_++];
        }
        value.push_back(c);
      }
    } else {
      while (i_ < s_.size() && s_[i_] != element_.delimiter && s_[i_] != '}') {
        char c = s_[i_++];
        if (c == '\\') {
          if (i_ >= s_.size()) return false;
          c = s_[i_++];
        }
        value.push_back(c);
      }
      if (value.empty()) return false;
    }
    if (!quoted && value.size() == 4 && (value[0] | 0x20) == 'n' && (value[1] | 0x20) == 'u' &&
        (value[2] | 0x20) == 'l' && (value[3] | 0x20) == 'l') {
      out += "null";
      return true;
    }
    if (catalog_.append_json(element_.oid, value, out) == Conversion::AsText)
      conv = Conversion::AsText;
    return true;
  }

  const TypeCatalog& catalog_;
  const TypeInfo& element_;
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::string iso_timestamp_to_json(std::string_view text, bool with_zone) {
  std::string s(text);
  auto space = s.find(' ');
  if (space == std::string::npos) return s;  // infinity, -infinity
  s[space] = 'T';
  std::string bc;
  if (s.size() > 3 && s.compare(s.size() - 3, 3, " BC") == 0) {
    bc = " BC";
    s.resize(s.size() - 3);
  }
  if (with_zone) {
    // ISO prints the offset as +HH, +HH:MM or +HH:MM:SS; to_jsonb as +HH:MM at least.
    auto sign = s.find_first_of("+-", space);
    if (sign != std::string::npos && s.size() - sign == 3) s += ":00";
  }
  return s + bc;
}

TypeCatalog::TypeCatalog() {
  struct Builtin {
    TypeOid oid;
    const char* name;
    TypeOid element;
  };
  static const Builtin kBuiltins[] = {
      {16, "bool", 0},
      {17, "bytea", 0},
      {18, "char", 0},
      {19, "name", 0},
      {20, "int8", 0},
      {21, "int2", 0},
      {23, "int4", 0},
      {25, "text", 0},
      {26, "oid", 0},
      {114, "json", 0},
      {700, "float4", 0},
      {701, "float8", 0},
      {1042, "bpchar", 0},
      {1043, "varchar", 0},
      {1082, "date", 0},
      {1083, "time", 0},
      {1114, "timestamp", 0},
      {1184, "timestamptz", 0},
      {1186, "interval", 0},
      {1266, "timetz", 0},
      {1700, "numeric", 0},
      {2950, "uuid", 0},
      {3802, "jsonb", 0},
      {869, "inet", 0},
      {1000, "_bool", 16},
      {1001, "_bytea", 17},
      {1005, "_int2", 21},
      {1007, "_int4", 23},
      {1009, "_text", 25},
      {1016, "_int8", 20},
      {1015, "_varchar", 1043},
      {1021, "_float4", 700},
      {1022, "_float8", 701},
      {1231, "_numeric", 1700},
      {2951, "_uuid", 2950},
      {199, "_json", 114},
      {3807, "_jsonb", 3802},
      {1182, "_date", 1082},
      {1115, "_timestamp", 1114},
      {1185, "_timestamptz", 1184},
  };
  for (const auto& b : kBuiltins) {
    TypeInfo t;
    t.oid = t.base = b.oid;
    t.element = b.element;
    t.name = b.name;
    t.kind = kind_of_base(b.oid, b.element, false, false);
    add(std::move(t));
  }
}

void TypeCatalog::add(TypeInfo info) {
  auto oid = info.oid;
  types_[oid] = std::move(info);
}

bool TypeCatalog::add_row(const std::vector<std::string>& row) {
  if (row.size() != 7) return false;
  auto oid = parse_oid(row[0]);
  auto base = parse_oid(row[1]);
  auto element = parse_oid(row[3]);
  if (!oid || !base || !element || row[4].size() != 1) return false;
  TypeInfo t;
  t.oid = *oid;
  t.base = *base;
  t.name = row[2];
  t.element = *element;
  t.delimiter = row[4][0];
  t.kind = kind_of_base(*base, *element, row[5] == "t" || row[5] == "true",
                        row[6] == "t" || row[6] == "true");
  add(std::move(t));
  return true;
}

const TypeInfo* TypeCatalog::find(TypeOid oid) const {
  auto it = types_.find(oid);
  return it == types_.end() ? nullptr : &it->second;
}

std::vector<TypeOid> TypeCatalog::missing(const std::vector<TypeOid>& oids) const {
  std::vector<TypeOid> out;
  auto want = [&](TypeOid o) {
    if (!find(o) && std::find(out.begin(), out.end(), o) == out.end()) out.push_back(o);
  };
  for (auto o : oids) {
    const auto* t = find(o);
    if (!t)
      want(o);
    else if (t->kind == JsonKind::Array)
      want(t->element);
  }
  return out;
}

Conversion TypeCatalog::append_json(TypeOid type, std::string_view text, std::string& out) const {
  const TypeInfo* t = find(type);
  if (!t) {
    append_json_string(text, out);
    return Conversion::AsText;
  }
  switch (t->kind) {
    case JsonKind::Number:
      // An integer's text output is already the JSON jsonb prints (the common key column).
      if (t->base == 20 || t->base == 21 || t->base == 23) {
        out += text;
        return Conversion::Exact;
      }
      if (auto n = normalize_json_number(text)) {
        out += *n;
      } else {
        append_json_string(text, out);  // NaN, Infinity, -Infinity
      }
      return Conversion::Exact;
    case JsonKind::Bool:
      out += text == "t" ? "true" : "false";
      return Conversion::Exact;
    case JsonKind::Json:
      if (auto j = normalize_json(text)) {
        out += *j;
        return Conversion::Exact;
      }
      append_json_string(text, out);
      return Conversion::AsText;
    case JsonKind::Jsonb:
      out += text;
      return Conversion::Exact;
    case JsonKind::Timestamp:
    case JsonKind::TimestampTz:
      append_json_string(iso_timestamp_to_json(text, t->kind == JsonKind::TimestampTz), out);
      return Conversion::Exact;
    case JsonKind::Array: {
      const TypeInfo* element = find(t->element);
      if (element) {
        std::string json;
        Conversion conv = Conversion::Exact;
        if (ArrayLiteral(*this, *element, text).convert(json, conv)) {
          out += json;
          return conv;
        }
      }
      append_json_string(text, out);
      return Conversion::AsText;
    }
    case JsonKind::AsText:
      append_json_string(text, out);
      return Conversion::AsText;
    case JsonKind::Date:
    case JsonKind::String:
      break;
  }
  append_json_string(text, out);
  return Conversion::Exact;
}

}  // namespace pgfanout::pg

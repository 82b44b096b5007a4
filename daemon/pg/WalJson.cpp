// JSON text as jsonb prints it: numbers through numeric, json values re-read and printed (see
// WalTypes.hpp).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "pg/WalTypes.hpp"

namespace pgfanout::pg {

void append_json_string(std::string_view text, std::string& out) {
  // PostgreSQL's escape_json: the two JSON specials, the short escapes, other control
  // characters as \u00xx; everything else (UTF-8 included) as it is.
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

std::optional<std::string> normalize_json_number(std::string_view text) {
  // JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  std::size_t i = 0;
  bool negative = false;
  auto digit = [&](std::size_t at) {
    return at < text.size() && text[at] >= '0' && text[at] <= '9';
  };
  if (i < text.size() && text[i] == '-') negative = true, ++i;
  if (!digit(i)) return std::nullopt;
  std::string digits;
  std::size_t int_len = 0;
  if (text[i] == '0') {
    digits.push_back('0'), ++i, int_len = 1;
  } else {
    while (digit(i)) digits.push_back(text[i++]), ++int_len;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (!digit(i)) return std::nullopt;
    while (digit(i)) digits.push_back(text[i++]);
  }
  long exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) exp_negative = text[i++] == '-';
    if (!digit(i)) return std::nullopt;
    while (digit(i)) {
      exponent = exponent * 10 + (text[i++] - '0');
      if (exponent > 100000) return std::nullopt;  // numeric would refuse it too
    }
    if (exp_negative) exponent = -exponent;
  }
  if (i != text.size()) return std::nullopt;
  // numeric_in: the value is digits with the point after int_len + exponent of them; its display
  // scale is the number of digits after that point (never negative).
  long point = static_cast<long>(int_len) + exponent;
  long len = static_cast<long>(digits.size());
  std::string int_part, frac_part;
  if (point <= 0) {
    int_part = "0";
    frac_part.assign(static_cast<std::size_t>(-point), '0');
    frac_part += digits;
  } else if (point >= len) {
    int_part = digits + std::string(static_cast<std::size_t>(point - len), '0');
  } else {
    int_part = digits.substr(0, static_cast<std::size_t>(point));
    frac_part = digits.substr(static_cast<std::size_t>(point));
  }
  auto nz = int_part.find_first_not_of('0');
  int_part = nz == std::string::npos ? "0" : int_part.substr(nz);
  bool zero = digits.find_first_not_of('0') == std::string::npos;
  std::string out;
  if (negative && !zero) out.push_back('-');
  out += int_part;
  if (!frac_part.empty()) out += "." + frac_part;
  return out;
}

namespace {

struct JValue {
  enum Type { Null, True, False, Number, String, Array, Object } type = Null;
  std::string text;  // a number's jsonb text, a string's decoded bytes
  std::vector<std::unique_ptr<JValue>> items;
  std::vector<std::pair<std::string, std::unique_ptr<JValue>>> members;
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  std::unique_ptr<JValue> parse_document() {
    auto v = value(0);
    ws();
    if (!v || i_ != s_.size()) return nullptr;
    return v;
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  std::unique_ptr<JValue> value(int depth) {
    if (depth > 1000) return nullptr;
    ws();
    if (i_ >= s_.size()) return nullptr;
    auto v = std::make_unique<JValue>();
    char c = s_[i_];
    if (c == '{') {
      v->type = JValue::Object;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        ws();
        std::string key;
        if (!string(key)) return nullptr;
        ws();
        if (i_ >= s_.size() || s_[i_] != ':') return nullptr;
        ++i_;
        auto member = value(depth + 1);
        if (!member) return nullptr;
        v->members.emplace_back(std::move(key), std::move(member));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return v;
        }
        return nullptr;
      }
    }
    if (c == '[') {
      v->type = JValue::Array;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        auto item = value(depth + 1);
        if (!item) return nullptr;
        v->items.push_back(std::move(item));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return v;
        }
        return nullptr;
      }
    }
    if (c == '"') {
      v->type = JValue::String;
      if (!string(v->text)) return nullptr;
      return v;
    }
    if (literal("true")) {
      v->type = JValue::True;
      return v;
    }
    if (literal("false")) {
      v->type = JValue::False;
      return v;
    }
    if (literal("null")) {
      v->type = JValue::Null;
      return v;
    }
    std::size_t start = i_;
    while (i_ < s_.size() && std::strchr("+-.0123456789eE", s_[i_]) && s_[i_] != '\0') ++i_;
    auto n = normalize_json_number(s_.substr(start, i_ - start));
    if (!n) return nullptr;
    v->type = JValue::Number;
    v->text = std::move(*n);
    return v;
  }

  bool hex4(unsigned& out) {
    if (s_.size() - i_ < 4) return false;
    out = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return false;
      out = out * 16 + static_cast<unsigned>(d);
    }
    return true;
  }

  static void utf8(unsigned cp, std::string& out) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool string(std::string& out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          unsigned cp;
          if (!hex4(cp) || cp == 0) return false;  // jsonb refuses \u0000
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (s_.substr(i_, 2) != "\\u") return false;
            i_ += 2;
            if (!hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          utf8(cp, out);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

void print(JValue& v, std::string& out) {
  switch (v.type) {
    case JValue::Null:
      out += "null";
      break;
    case JValue::True:
      out += "true";
      break;
    case JValue::False:
      out += "false";
      break;
    case JValue::Number:
      out += v.text;
      break;
    case JValue::String:
      append_json_string(v.text, out);
      break;
    case JValue::Array: {
      out.push_back('[');
      for (std::size_t k = 0; k < v.items.size(); ++k) {
        if (k) out += ", ";
        print(*v.items[k], out);
      }
      out.push_back(']');
      break;
    }
    case JValue::Object: {
      // jsonb's key order: shorter first, then bytewise; of duplicate keys the last one stays.
      auto& m = v.members;
      std::stable_sort(m.begin(), m.end(), [](const auto& a, const auto& b) {
        if (a.first.size() != b.first.size()) return a.first.size() < b.first.size();
        return std::memcmp(a.first.data(), b.first.data(), a.first.size()) < 0;
      });
      out.push_back('{');
      bool first = true;
      for (std::size_t k = 0; k < m.size(); ++k) {
        if (k + 1 < m.size() && m[k + 1].first == m[k].first) continue;
        if (!first) out += ", ";
        first = false;
        append_json_string(m[k].first, out);
        out += ": ";
        print(*m[k].second, out);
      }
      out.push_back('}');
      break;
    }
  }
}

}  // namespace

std::optional<std::string> normalize_json(std::string_view text) {
  JsonParser p(text);
  auto v = p.parse_document();
  if (!v) return std::nullopt;
  std::string out;
  print(*v, out);
  return out;
}

}  // namespace pgfanout::pg

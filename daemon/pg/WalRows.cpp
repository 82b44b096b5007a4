// WalDecoder: a row change into its envelope (row-level) or into an element of a per-statement
// group, and the groups into parts (see WalDecoder.hpp).
#include <algorithm>
#include <cstring>

#include "pg/WalDecoder.hpp"

namespace pgfanout::pg {

namespace {

void append_names(const char* field, const std::vector<std::string>& names, std::string& out) {
  if (names.empty()) return;
  out += ",\"";
  out += field;
  out += "\":[";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(names[i], out);
  }
  out.push_back(']');
}

// Equal as the trigger's test sees them: numbers by value (1.50 = 1.5), the rest by JSON text.
std::string comparable(std::string json, const TypeInfo* type) {
  if (type && type->kind == JsonKind::Number && !json.empty() && json[0] != '"' &&
      json.find('.') != std::string::npos) {
    while (json.back() == '0') json.pop_back();
    if (json.back() == '.') json.pop_back();
  }
  return json;
}

}  // namespace

void WalDecoder::row(const Rel& rel, const char* op, const pgoutput::Tuple* old_tuple,
                     char old_kind, const pgoutput::Tuple* new_tuple, std::uint64_t lsn,
                     std::vector<WalEvent>& out) {
  const auto& watch = *rel.watch;
  if (std::find(watch.ops.begin(), watch.ops.end(), op) == watch.ops.end()) return;
  const auto& cols = rel.rel.columns;
  const std::size_t n = cols.size();
  const bool full_old = old_tuple && old_kind == 'O';
  std::vector<std::string> as_text, toast;

  auto json_of = [&](std::size_t i, const pgoutput::Value& v, std::string& s, bool note) {
    if (v.kind != 't') {
      s += "null";
      return;
    }
    if (types_.append_json(cols[i].type, v.text, s) == Conversion::AsText && note &&
        std::find(as_text.begin(), as_text.end(), cols[i].name) == as_text.end())
      as_text.push_back(cols[i].name);
  };

  // The new row's values, an unchanged TOASTed one taken from the old row when it is there.
  auto& now = now_;
  now.assign(n, nullptr);
  if (new_tuple) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto* v = &(*new_tuple)[i];
      if (v->kind == 'u') v = full_old && (*old_tuple)[i].kind != 'u' ? &(*old_tuple)[i] : nullptr;
      now[i] = v;
    }
  }

  bool key_changed = old_tuple && old_kind == 'K';
  if (new_tuple && full_old) {
    bool changed = false;
    for (std::size_t i = 0; i < n; ++i) {
      if ((*new_tuple)[i].kind == 'u') continue;  // unchanged
      std::string a, b;
      json_of(i, (*new_tuple)[i], a, false);
      json_of(i, (*old_tuple)[i], b, false);
      const TypeInfo* t = types_.find(cols[i].type);
      if (comparable(std::move(a), t) == comparable(std::move(b), t)) continue;
      if (rel.changed[i]) changed = true;
      if (rel.key[i]) key_changed = true;
    }
    if (!changed) return;
  }

  // The objects are written where they go: straight into a row-level payload, or into their
  // own strings for a per-statement element.
  auto object = [&](std::string& s, auto pick) {
    s += '{';
    bool first = true;
    for (std::size_t i : rel.order) {
      const pgoutput::Value* v = pick(i);
      if (!v) continue;
      if (!first) s += ", ";
      first = false;
      append_json_string(cols[i].name, s);
      s += ": ";
      json_of(i, *v, s, true);
    }
    s += '}';
  };
  auto new_object = [&](std::string& s) { object(s, [&](std::size_t i) { return now[i]; }); };
  // What "old" holds: the whole old row, the old key (it changed), or the key from the new row.
  const bool old_is_key = !full_old && old_tuple;
  const bool key_from_new = !old_tuple && new_tuple && std::strcmp(op, "UPDATE") == 0;
  auto old_object = [&](std::string& s) {
    if (full_old) {
      object(s, [&](std::size_t i) -> const pgoutput::Value* {
        return (*old_tuple)[i].kind == 'u' ? nullptr : &(*old_tuple)[i];
      });
    } else if (old_is_key) {
      object(s, [&](std::size_t i) { return rel.key[i] ? &(*old_tuple)[i] : nullptr; });
    } else {
      object(s, [&](std::size_t i) { return rel.key[i] ? now[i] : nullptr; });
    }
  };
  const bool has_old = full_old || old_is_key || key_from_new;
  if (new_tuple) {
    for (std::size_t i : rel.order)
      if (!now[i]) toast.push_back(cols[i].name);
    std::sort(toast.begin(), toast.end());
  }

  if (!watch.spec.per_statement) {
    std::string p;
    p.reserve(256);
    append_head(rel, op, p);
    if (new_tuple) {
      p += ",\"new\":";
      new_object(p);
    }
    if (has_old) {
      p += ",\"old\":";
      old_object(p);
    }
    append_names("unchanged_toast", toast, p);
    append_names("as_text", as_text, p);
    if (!in_stream_) append_tail(txid_, at_, lsn, p);
    out.push_back(event(rel.channel, std::move(p), lsn));
    return;
  }

  std::string new_obj, old_obj;
  if (new_tuple) new_object(new_obj);
  if (has_old) old_object(old_obj);

  if (pending_.rel != &rel || pending_.op != op) flush(out);
  pending_.rel = &rel;
  pending_.op = op;
  pending_.lsn = lsn;
  pending_.subxid = change_xid_;
  auto element = [&](bool with_new, bool with_old) {
    std::string e = "{";
    if (with_new && !new_obj.empty()) e += "\"new\":" + new_obj;
    if (with_old && !old_obj.empty())
      e += std::string(e.size() > 1 ? "," : "") + "\"old\":" + old_obj;
    if (with_new) append_names("unchanged_toast", toast, e);
    append_names("as_text", as_text, e);
    if (e.size() > 1 && e[1] == ',') e.erase(1, 1);
    pending_.elements.push_back(e + "}");
  };
  if (new_tuple && old_tuple && key_changed) {
    // The trigger pairs old and new rows by key: a row whose key changed is two elements.
    element(true, false);
    element(false, true);
  } else {
    element(true, true);
  }
  if (pending_.elements.size() >= kStatementRows) flush(out);
}

void WalDecoder::flush(std::vector<WalEvent>& out) {
  if (pending_.elements.empty()) {
    pending_.rel = nullptr;
    return;
  }
  std::string h, t;
  append_head(*pending_.rel, pending_.op, h);
  if (!in_stream_) append_tail(txid_, at_, pending_.lsn, t);
  // As the trigger: the bytes left for rows, "part" and "parts" counted as 10 digits each.
  // A streamed transaction's tail comes at its commit: room for the longest.
  const std::size_t fixed = h.size() + std::strlen(",\"part\":,\"parts\":,\"rows\":[]") +
                            (in_stream_ ? kMaxTailBytes : t.size()) + 20;
  const std::size_t budget = kPartBytes > fixed ? kPartBytes - fixed : 0;
  std::vector<std::string> parts;
  std::string part;
  bool open = false;
  for (const auto& e : pending_.elements) {
    if (open && part.size() + 1 + e.size() > budget) {
      parts.push_back(std::move(part));
      part.clear();
      open = false;
    }
    if (open) part.push_back(',');
    part += e;
    open = true;
  }
  parts.push_back(std::move(part));
  for (std::size_t k = 0; k < parts.size(); ++k) {
    std::string p = h + ",\"part\":" + std::to_string(k + 1) +
                    ",\"parts\":" + std::to_string(parts.size()) + ",\"rows\":[" + parts[k] + "]" +
                    t;
    out.push_back(event(pending_.rel->channel, std::move(p), pending_.lsn));
  }
  pending_ = Pending{};
}

}  // namespace pgfanout::pg

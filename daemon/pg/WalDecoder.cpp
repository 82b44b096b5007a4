#include "pg/WalDecoder.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "pg/ConnInfo.hpp"
#include "pg/ReplicationProtocol.hpp"

namespace pgfanout::pg {

const char* const kTableKeySql = R"sql(
SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text, a.attname::pg_catalog.text
  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS w(s, t)
  JOIN pg_catalog.pg_namespace n ON n.nspname = w.s
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.t
  JOIN LATERAL (
    SELECT x.indkey FROM pg_catalog.pg_index x
     WHERE x.indrelid = c.oid AND (x.indisprimary OR x.indisreplident)
     ORDER BY x.indisprimary DESC LIMIT 1) AS i ON true
  CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
 ORDER BY 1, 2, k.ord
)sql";

namespace {

// A regclass-style name: "schema"."Table" or schema.table (unquoted parts fold to lower case);
// without a schema, public.
std::pair<std::string, std::string> parse_table_name(const std::string& text) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        parts.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        parts.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '.') {
      parts.emplace_back();
    } else {
      parts.back().push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
  }
  if (parts.size() == 1) return {"public", parts[0]};
  return {parts[parts.size() - 2], parts.back()};
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

WalDecoder::WalDecoder(const std::vector<WatchSpec>& watches, std::string message_prefix)
    : prefix_(std::move(message_prefix)) {
  for (const auto& spec : watches) {
    if (spec.via != "wal") continue;
    Watch w;
    w.spec = spec;
    std::tie(w.schema, w.table) = parse_table_name(spec.table);
    w.ops = spec.ops.empty() ? std::vector<std::string>{"INSERT", "UPDATE", "DELETE"} : spec.ops;
    watches_.push_back(std::move(w));
  }
}

bool WalDecoder::add_table_key_row(const std::vector<std::string>& row) {
  if (row.size() != 3) return false;
  staged_keys_[{row[0], row[1]}].push_back(row[2]);
  return true;
}

std::vector<std::string> WalDecoder::table_key_params() const {
  std::vector<std::string> schemas, tables;
  for (const auto& w : watches_) {
    schemas.push_back(w.schema);
    tables.push_back(w.table);
  }
  return {text_array(schemas), text_array(tables)};
}

void WalDecoder::reset() {
  relations_.clear();
  in_transaction_ = false;
  pending_ = Pending{};
  in_stream_ = false;
  stream_xid_ = change_xid_ = 0;
  stream_txids_.clear();
}

std::uint64_t WalDecoder::widen_xid(std::uint32_t xid, std::uint64_t reference) {
  const std::uint64_t span = 1ULL << 32;
  std::uint64_t best = (reference & ~(span - 1)) | xid;
  auto distance = [&](std::uint64_t c) { return c > reference ? c - reference : reference - c; };
  if (best >= span && distance(best - span) < distance(best)) best -= span;
  if (best + span > best && distance(best + span) < distance(best)) best += span;
  return best;
}

std::string WalDecoder::format_at(std::int64_t pg_time) {
  // A commit time from a malformed stream may be anything: saturate rather than overflow.
  constexpr std::int64_t kLatest = std::numeric_limits<std::int64_t>::max() - kPgEpochOffsetMicros;
  std::int64_t us = std::min(pg_time, kLatest) + kPgEpochOffsetMicros;
  std::int64_t secs = us / 1'000'000;
  std::int64_t frac = us % 1'000'000;
  if (frac < 0) frac += 1'000'000, --secs;
  std::int64_t days = secs / 86400;
  std::int64_t sod = secs % 86400;
  if (sod < 0) sod += 86400, --days;
  // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
  std::int64_t z = days + 719468;
  std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  std::int64_t doe = z - era * 146097;
  std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t y = yoe + era * 400;
  std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  std::int64_t mp = (5 * doy + 2) / 153;
  std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ",
                static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                static_cast<long long>(sod % 60), static_cast<long long>(frac / 1000));
  return buf;
}

WalDecoder::Result WalDecoder::feed(std::string_view message, std::uint64_t lsn,
                                    std::vector<WalEvent>& out) {
  using namespace pgoutput;
  Result result;
  auto fail = [&](std::string text) {
    result.kind = Result::Error;
    result.error = std::move(text);
    return result;
  };
  std::uint32_t change_xid = 0;
  auto decoded = decode_pgoutput(message, in_stream_, &change_xid);
  if (auto* e = std::get_if<DecodeError>(&decoded)) return fail(e->message);
  if (in_stream_) {
    // A change of another subtransaction starts a new per-statement group (an abort may drop it).
    if (change_xid != change_xid_) flush(out);
    change_xid_ = change_xid;
  }
  // A row of the same per-statement group keeps it open; anything else sends it first.
  auto rel_of = [&](Oid oid) -> const Rel* {
    auto it = relations_.find(oid);
    return it == relations_.end() ? nullptr : &it->second;
  };
  auto check_row = [&](Oid oid, const Tuple* a, const Tuple* b, const Rel*& rel) -> bool {
    rel = rel_of(oid);
    if (!rel) return false;
    std::size_t n = rel->rel.columns.size();
    return (!a || a->size() == n) && (!b || b->size() == n);
  };

  if (auto* b = std::get_if<pgoutput::Begin>(&decoded)) {
    flush(out);
    in_transaction_ = true;
    std::uint64_t full = reference_xid_ ? widen_xid(b->xid, reference_xid_) : b->xid;
    if (reference_xid_) reference_xid_ = full;
    txid_ = std::to_string(full);
    at_ = format_at(b->commit_time);
    result.kind = Result::Begin;
    return result;
  }
  if (auto* st = std::get_if<StreamStart>(&decoded)) {
    if (in_stream_ || in_transaction_) return fail("Stream Start inside a transaction or block");
    in_stream_ = true;
    stream_xid_ = change_xid_ = st->xid;
    auto [it, added] = stream_txids_.try_emplace(st->xid);
    if (added) {
      std::uint64_t full = reference_xid_ ? widen_xid(st->xid, reference_xid_) : st->xid;
      it->second = std::to_string(full);
    }
    return result;
  }
  if (std::holds_alternative<StreamStop>(decoded)) {
    if (!in_stream_) return fail("Stream Stop outside a stream block");
    flush(out);
    in_stream_ = false;
    return result;
  }
  if (auto* sc = std::get_if<StreamCommit>(&decoded)) {
    auto it = stream_txids_.find(sc->xid);
    if (in_stream_ || in_transaction_ || it == stream_txids_.end())
      return fail("Stream Commit of a transaction not streamed, or inside a block");
    result.kind = Result::StreamCommit;
    result.xid = sc->xid;
    result.commit_lsn = sc->end_lsn;
    result.txid = std::move(it->second);
    result.at = format_at(sc->commit_time);
    stream_txids_.erase(it);
    return result;
  }
  if (auto* sa = std::get_if<StreamAbort>(&decoded)) {
    if (in_stream_ || in_transaction_) return fail("Stream Abort inside a transaction or block");
    result.kind = Result::StreamAbort;
    result.xid = sa->xid;
    result.subxid = sa->subxid;
    if (sa->xid == sa->subxid) stream_txids_.erase(sa->xid);
    return result;
  }
  if (auto* c = std::get_if<pgoutput::Commit>(&decoded)) {
    flush(out);
    in_transaction_ = false;
    result.kind = Result::Commit;
    result.commit_lsn = c->end_lsn;
    return result;
  }
  if (auto* r = std::get_if<pgoutput::Relation>(&decoded)) {
    flush(out);
    return relation(std::move(*r));
  }
  if (auto* m = std::get_if<pgoutput::Message>(&decoded)) {
    if (m->prefix != prefix_) return result;
    flush(out);
    auto nl = m->content.find('\n');
    WalEvent ev;
    ev.channel = std::string(m->content.substr(0, nl));
    if (nl != std::string_view::npos) ev.payload = std::string(m->content.substr(nl + 1));
    ev.lsn = lsn;
    if (in_stream_) {
      ev.stream_xid = stream_xid_;
      ev.subxid = change_xid_;
    }
    if (ev.channel.empty()) {
      result.kind = Result::Skipped;
      result.error = "a pgfanout message without a channel (its first line)";
      return result;
    }
    out.push_back(std::move(ev));
    return result;
  }
  const Rel* rel = nullptr;
  if (auto* i = std::get_if<Insert>(&decoded)) {
    if (!check_row(i->relation, nullptr, &i->new_tuple, rel))
      return fail("Insert for an unknown relation or of the wrong width");
    if (rel->watch) row(*rel, "INSERT", nullptr, 0, &i->new_tuple, lsn, out);
  } else if (auto* u = std::get_if<Update>(&decoded)) {
    if (!check_row(u->relation, u->old_kind ? &u->old_tuple : nullptr, &u->new_tuple, rel))
      return fail("Update for an unknown relation or of the wrong width");
    if (rel->watch)
      row(*rel, "UPDATE", u->old_kind ? &u->old_tuple : nullptr, u->old_kind, &u->new_tuple, lsn,
          out);
  } else if (auto* d = std::get_if<Delete>(&decoded)) {
    if (!check_row(d->relation, &d->old_tuple, nullptr, rel))
      return fail("Delete for an unknown relation or of the wrong width");
    if (rel->watch) row(*rel, "DELETE", &d->old_tuple, d->old_kind, nullptr, lsn, out);
  } else {
    flush(out);  // Origin, Type (types are loaded by oid), Truncate: nothing to send
  }
  return result;
}

WalDecoder::Result WalDecoder::relation(pgoutput::Relation&& r) {
  Result result;
  Rel rel;
  rel.rel = std::move(r);
  for (const auto& w : watches_) {
    if (w.schema == rel.rel.schema && w.table == rel.rel.name) rel.watch = &w;
  }
  if (rel.watch) {
    const auto& spec = rel.watch->spec;
    const auto& cols = rel.rel.columns;
    std::size_t n = cols.size();
    rel.channel = spec.channel.empty() ? rel.rel.name + "_changed" : spec.channel;
    rel.key.assign(n, false);
    auto known = table_keys_.find({rel.rel.schema, rel.rel.name});
    for (std::size_t i = 0; i < n; ++i) {
      if (rel.rel.replica_identity == 'f')
        rel.key[i] = known != table_keys_.end() && contains(known->second, cols[i].name);
      else
        rel.key[i] = cols[i].key;
    }
    rel.keep.assign(n, spec.columns.empty());
    rel.changed.assign(n, false);
    for (std::size_t i = 0; i < n; ++i) {
      if (!spec.columns.empty()) rel.keep[i] = rel.key[i] || contains(spec.columns, cols[i].name);
      rel.changed[i] = spec.changed.empty() ? rel.keep[i] : contains(spec.changed, cols[i].name);
      if (rel.keep[i]) rel.order.push_back(i);
    }
    std::sort(rel.order.begin(), rel.order.end(), [&](std::size_t a, std::size_t b) {
      const auto &x = cols[a].name, &y = cols[b].name;
      if (x.size() != y.size()) return x.size() < y.size();
      return std::memcmp(x.data(), y.data(), x.size()) < 0;
    });
    std::vector<TypeOid> oids;
    for (const auto& c : cols) oids.push_back(c.type);
    result.types = types_.missing(oids);
    if (!result.types.empty()) result.kind = Result::NeedTypes;
  }
  auto oid = rel.rel.oid;
  relations_[oid] = std::move(rel);
  return result;
}

void WalDecoder::append_head(const Rel& rel, std::string_view op, std::string& s) {
  s += "{\"v\":1,\"op\":\"";
  s += op;
  s += "\",\"schema\":";
  append_json_string(rel.rel.schema, s);
  s += ",\"table\":";
  append_json_string(rel.rel.name, s);
}

void WalDecoder::append_tail(std::string_view txid, std::string_view at, std::uint64_t lsn,
                             std::string& s) {
  s += ",\"txid\":\"";
  s += txid;
  s += "\",\"at\":\"";
  s += at;
  s += "\",\"lsn\":\"";
  s += format_lsn(lsn);
  s += "\"}";
}

WalEvent WalDecoder::event(std::string channel, std::string payload, std::uint64_t lsn) const {
  WalEvent ev{std::move(channel), std::move(payload), lsn};
  if (in_stream_) {
    ev.stream_xid = stream_xid_;
    ev.subxid = change_xid_;
    ev.needs_tail = true;
  }
  return ev;
}

}  // namespace pgfanout::pg

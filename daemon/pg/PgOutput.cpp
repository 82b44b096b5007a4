#include "pg/PgOutput.hpp"

#include <cstdio>
#include <optional>

namespace pgfanout::pg::pgoutput {

namespace {

// A bounds-checked reader: any read past the end sets failed() and returns a zero value, so a
// decoder reads a whole message and checks once.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool failed() const { return failed_; }
  bool at_end() const { return pos_ == data_.size(); }
  std::size_t remaining() const { return data_.size() - pos_; }

  std::uint64_t uint(std::size_t bytes) {
    if (failed_ || remaining() < bytes) return fail();
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i)
      v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    pos_ += bytes;
    return v;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(uint(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(uint(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(uint(4)); }
  std::uint64_t u64() { return uint(8); }
  char byte() { return static_cast<char>(u8()); }

  // A NUL-terminated string.
  std::string_view cstring() {
    if (failed_) return {};
    auto end = data_.find('\0', pos_);
    if (end == std::string_view::npos) {
      fail();
      return {};
    }
    auto s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  std::string_view bytes(std::size_t n) {
    if (failed_ || remaining() < n) {
      fail();
      return {};
    }
    auto s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::uint64_t fail() {
    failed_ = true;
    return 0;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

bool read_tuple(Reader& r, Tuple& out, std::string& error) {
  std::uint16_t n = r.u16();
  if (r.failed()) return false;
  // Each column takes at least one byte: a count larger than what is left is malformed.
  if (n > r.remaining()) {
    error = "tuple column count exceeds the message";
    return false;
  }
  out.reserve(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    Value v;
    v.kind = r.byte();
    switch (v.kind) {
      case 'n':
      case 'u':
        break;
      case 't': {
        std::uint32_t len = r.u32();
        v.text = r.bytes(len);
        break;
      }
      default:
        if (!r.failed()) {
          error = "unknown tuple value kind";
          return false;
        }
    }
    if (r.failed()) return false;
    out.push_back(v);
  }
  return true;
}

PgOutputMessage error_of(const char* what, std::string detail = {}) {
  std::string m = what;
  if (!detail.empty()) m += ": " + detail;
  return DecodeError{std::move(m)};
}

// Checks the reader after a whole message was read: truncated, or bytes left over.
std::optional<DecodeError> finish(const Reader& r, const char* name) {
  if (r.failed()) return DecodeError{std::string("truncated ") + name + " message"};
  if (!r.at_end()) return DecodeError{std::string("trailing bytes after ") + name + " message"};
  return std::nullopt;
}

template <typename T>
PgOutputMessage done(const Reader& r, const char* name, T&& value) {
  if (auto e = finish(r, name)) return *e;
  return std::forward<T>(value);
}

PgOutputMessage decode_relation(Reader& r) {
  Relation rel;
  rel.oid = r.u32();
  rel.schema = r.cstring();
  rel.name = r.cstring();
  rel.replica_identity = r.byte();
  std::uint16_t n = r.u16();
  if (!r.failed() && n > r.remaining())
    return error_of("relation column count exceeds the message");
  for (std::uint16_t i = 0; i < n && !r.failed(); ++i) {
    Column c;
    c.key = (r.u8() & 1) != 0;
    c.name = r.cstring();
    c.type = r.u32();
    c.typmod = static_cast<std::int32_t>(r.u32());
    rel.columns.push_back(std::move(c));
  }
  return done(r, "Relation", std::move(rel));
}

PgOutputMessage decode_update(Reader& r) {
  Update u;
  std::string error;
  u.relation = r.u32();
  char kind = r.byte();
  if (kind == 'K' || kind == 'O') {
    u.old_kind = kind;
    if (!read_tuple(r, u.old_tuple, error)) return error_of("bad Update old tuple", error);
    kind = r.byte();
  }
  if (r.failed()) return error_of("truncated Update message");
  if (kind != 'N') return error_of("Update without a new tuple");
  if (!read_tuple(r, u.new_tuple, error)) return error_of("bad Update new tuple", error);
  return done(r, "Update", std::move(u));
}

}  // namespace

PgOutputMessage decode_pgoutput(std::string_view data, bool in_stream, std::uint32_t* xid) {
  if (xid) *xid = 0;
  if (data.empty()) return error_of("empty pgoutput message");
  Reader r(data.substr(1));
  std::string error;
  if (in_stream) {
    switch (data[0]) {
      case 'R':
      case 'Y':
      case 'I':
      case 'U':
      case 'D':
      case 'T':
      case 'M': {
        std::uint32_t x = r.u32();
        if (r.failed()) return error_of("truncated streamed message");
        if (xid) *xid = x;
        break;
      }
      default:
        break;
    }
  }
  switch (data[0]) {
    case 'B': {
      Begin b;
      b.final_lsn = r.u64();
      b.commit_time = static_cast<PgTime>(r.u64());
      b.xid = r.u32();
      return done(r, "Begin", b);
    }
    case 'C': {
      Commit c;
      c.flags = r.u8();
      c.commit_lsn = r.u64();
      c.end_lsn = r.u64();
      c.commit_time = static_cast<PgTime>(r.u64());
      return done(r, "Commit", c);
    }
    case 'O': {
      Origin o;
      o.commit_lsn = r.u64();
      o.name = r.cstring();
      return done(r, "Origin", std::move(o));
    }
    case 'R':
      return decode_relation(r);
    case 'Y': {
      Type t;
      t.oid = r.u32();
      t.schema = r.cstring();
      t.name = r.cstring();
      return done(r, "Type", std::move(t));
    }
    case 'I': {
      Insert ins;
      ins.relation = r.u32();
      if (r.byte() != 'N' && !r.failed()) return error_of("Insert without a new tuple");
      if (!read_tuple(r, ins.new_tuple, error)) return error_of("bad Insert tuple", error);
      return done(r, "Insert", std::move(ins));
    }
    case 'U':
      return decode_update(r);
    case 'D': {
      Delete d;
      d.relation = r.u32();
      d.old_kind = r.byte();
      if (!r.failed() && d.old_kind != 'K' && d.old_kind != 'O')
        return error_of("Delete without an old tuple");
      if (!read_tuple(r, d.old_tuple, error)) return error_of("bad Delete tuple", error);
      return done(r, "Delete", std::move(d));
    }
    case 'T': {
      Truncate t;
      std::uint32_t n = r.u32();
      t.options = r.u8();
      if (!r.failed() && n > r.remaining() / 4) return error_of("truncated Truncate message");
      for (std::uint32_t i = 0; i < n && !r.failed(); ++i) t.relations.push_back(r.u32());
      return done(r, "Truncate", std::move(t));
    }
    case 'M': {
      Message m;
      m.transactional = (r.u8() & 1) != 0;
      m.lsn = r.u64();
      m.prefix = r.cstring();
      std::uint32_t len = r.u32();
      m.content = r.bytes(len);
      return done(r, "Message", m);
    }
    case 'S': {
      StreamStart st;
      st.xid = r.u32();
      st.first_segment = r.u8() == 1;
      return done(r, "Stream Start", st);
    }
    case 'E':
      return done(r, "Stream Stop", StreamStop{});
    case 'c': {
      StreamCommit c;
      c.xid = r.u32();
      c.flags = r.u8();
      c.commit_lsn = r.u64();
      c.end_lsn = r.u64();
      c.commit_time = static_cast<PgTime>(r.u64());
      return done(r, "Stream Commit", c);
    }
    case 'A': {
      StreamAbort a;
      a.xid = r.u32();
      a.subxid = r.u32();
      return done(r, "Stream Abort", a);
    }
    default: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(data[0]));
      return error_of("unknown pgoutput message type", buf);
    }
  }
}

}  // namespace pgfanout::pg::pgoutput

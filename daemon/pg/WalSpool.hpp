// WalSpool: the events of one transaction streamed before its commit (pgoutput protocol 2),
// kept until its Stream Commit delivers them or its Stream Abort drops them. The spools of one
// stream share a memory Budget: while their events in memory stay under its limit, they stay
// there; beyond it, the spool being added to appends its events to a file in `dir` (created on
// first need and unlinked at once: nothing is left behind, even by a crash) in writes of at
// least kMinSpill bytes, giving its buffer back after each. The budget counts the
// buffers' allocated size, not only the bytes in them. So memory stays under the limit plus
// about 2 x kMinSpill per open streamed transaction, however large or many they are. The events are
// serialized (channel, payload, LSN, whether the payload waits for its tail); each subtransaction's
// first position is remembered so a rolled-back savepoint drops its events and those after it (the
// order PostgreSQL's own apply worker relies on).
//
// No I/O besides the file; not thread-safe (the WAL source's loop).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pg/WalDecoder.hpp"

namespace pgfanout::pg {

class WalSpool {
 public:
  struct Budget {
    std::size_t limit;
    std::size_t used = 0;  // bytes of events the spools sharing it hold in memory
  };
  static constexpr std::size_t kMinSpill = 64 * 1024;

  WalSpool(std::string dir, std::shared_ptr<Budget> budget);
  // A spool with a budget of its own.
  WalSpool(std::string dir, std::size_t memory_limit);
  ~WalSpool();
  WalSpool(const WalSpool&) = delete;
  WalSpool& operator=(const WalSpool&) = delete;

  // Stages an event (its stream_xid and subxid say where it belongs). False with `error` when the
  // file could not be created or written.
  bool add(const WalEvent& ev, std::string& error);
  // Subtransaction `subxid` rolled back: its events and all staged after them go. False with
  // `error` when the file could not be truncated.
  bool drop_subxact(std::uint32_t subxid, std::string& error);

  std::size_t events() const { return events_; }
  std::uint64_t bytes() const { return file_bytes_ + memory_.size(); }
  std::uint64_t spilled_bytes() const { return spilled_; }  // ever written to the file
  bool spilled() const { return fd_ >= 0; }
  std::size_t buffer_capacity() const { return memory_.capacity(); }  // what memory it holds

  // Reading back, in order, after the commit: each call gives the next event (channel, payload,
  // lsn, needs_tail). False at the end, or with `error` set when the file could not be read.
  bool next(WalEvent& ev, std::string& error);

 private:
  bool spill(std::string& error);
  bool fill(std::size_t need, std::string& error);
  // Empties memory_ and gives its buffer back.
  void release_memory();

  // What this spool holds in memory counts against the budget as held_.
  void hold(std::size_t bytes);

  std::string dir_;
  std::shared_ptr<Budget> budget_;
  std::size_t held_ = 0;
  int fd_ = -1;
  std::uint64_t file_bytes_ = 0, spilled_ = 0;
  std::string memory_;
  std::size_t events_ = 0;
  struct Sub {
    std::uint32_t xid;
    std::uint64_t offset;
    std::size_t events_before;
  };
  std::vector<Sub> subs_;                                  // in the order first seen
  std::unordered_map<std::uint32_t, std::size_t> sub_at_;  // subxid -> its index in subs_
  // Reading: bytes read and not yet consumed, the next file offset, whether memory_ was taken.
  std::string read_;
  std::size_t read_pos_ = 0;
  std::uint64_t file_pos_ = 0;
  bool memory_taken_ = false;
};

}  // namespace pgfanout::pg

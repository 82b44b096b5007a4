#include "pg/WalSpool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pgfanout::pg {

namespace {

constexpr std::size_t kHeader = 4 + 4 + 8 + 1;  // channel length, payload length, LSN, flags
constexpr std::size_t kReadChunk = 1 << 20;

void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// The bytes a string has allocated (none while it holds its characters inside itself).
std::size_t allocated(const std::string& s) {
  static const std::size_t inline_capacity = std::string().capacity();
  return s.capacity() > inline_capacity ? s.capacity() : 0;
}

}  // namespace

WalSpool::WalSpool(std::string dir, std::shared_ptr<Budget> budget)
    : dir_(std::move(dir)), budget_(std::move(budget)) {}

WalSpool::WalSpool(std::string dir, std::size_t memory_limit)
    : WalSpool(std::move(dir), std::make_shared<Budget>(Budget{memory_limit})) {}

WalSpool::~WalSpool() {
  hold(0);
  if (fd_ >= 0) ::close(fd_);
}

void WalSpool::hold(std::size_t bytes) {
  budget_->used = budget_->used - held_ + bytes;
  held_ = bytes;
}

bool WalSpool::add(const WalEvent& ev, std::string& error) {
  std::uint64_t at = bytes();
  if ((subs_.empty() || subs_.back().xid != ev.subxid) &&
      sub_at_.try_emplace(ev.subxid, subs_.size()).second) {
    subs_.push_back(Sub{ev.subxid, at, events_});
  }
  put(memory_, ev.channel.size(), 4);
  put(memory_, ev.payload.size(), 4);
  put(memory_, ev.lsn, 8);
  put(memory_, ev.needs_tail ? 1 : 0, 1);
  memory_ += ev.channel;
  memory_ += ev.payload;
  ++events_;
  hold(allocated(memory_));
  if (budget_->used < budget_->limit) return true;
  // Over the budget: this spool's events go to its file, in writes of a useful size.
  return memory_.size() < std::min(kMinSpill, budget_->limit) || spill(error);
}

bool WalSpool::spill(std::string& error) {
  if (fd_ < 0) {
    std::string path = dir_ + "/pgfanout-wal-XXXXXX";
    fd_ = ::mkstemp(path.data());
    if (fd_ < 0) {
      error = errno_text("creating a spool file in " + dir_);
      return false;
    }
    ::unlink(path.c_str());
  }
  std::size_t done = 0;
  while (done < memory_.size()) {
    ssize_t n = ::pwrite(fd_, memory_.data() + done, memory_.size() - done,
                         static_cast<off_t>(file_bytes_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = errno_text("writing the spool file");
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  file_bytes_ += memory_.size();
  spilled_ += memory_.size();
  release_memory();
  return true;
}

void WalSpool::release_memory() {
  std::string().swap(memory_);
  hold(0);
}

bool WalSpool::drop_subxact(std::uint32_t subxid, std::string& error) {
  auto found = sub_at_.find(subxid);
  if (found == sub_at_.end()) return true;  // none of its changes were staged
  auto it = subs_.begin() + static_cast<std::ptrdiff_t>(found->second);
  std::uint64_t offset = it->offset;
  events_ = it->events_before;
  for (auto gone = it; gone != subs_.end(); ++gone) sub_at_.erase(gone->xid);
  subs_.erase(it, subs_.end());
  if (offset >= file_bytes_) {
    memory_.resize(offset - file_bytes_);
    if (memory_.empty()) {
      release_memory();
    } else if (memory_.capacity() > 2 * memory_.size() + kMinSpill) {
      memory_.shrink_to_fit();
      hold(allocated(memory_));
    }
    return true;
  }
  release_memory();
  if (::ftruncate(fd_, static_cast<off_t>(offset)) != 0) {
    error = errno_text("truncating the spool file");
    return false;
  }
  file_bytes_ = offset;
  return true;
}

bool WalSpool::fill(std::size_t need, std::string& error) {
  while (read_.size() - read_pos_ < need) {
    if (read_pos_ > 0) {
      read_.erase(0, read_pos_);
      read_pos_ = 0;
    }
    if (file_pos_ < file_bytes_) {
      std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(std::max(kReadChunk, need), file_bytes_ - file_pos_));
      std::size_t old = read_.size();
      read_.resize(old + want);
      ssize_t n = ::pread(fd_, read_.data() + old, want, static_cast<off_t>(file_pos_));
      if (n < 0 && errno == EINTR) {
        read_.resize(old);
        continue;
      }
      if (n <= 0) {
        read_.resize(old);
        error = n < 0 ? errno_text("reading the spool file") : "the spool file ended early";
        return false;
      }
      read_.resize(old + static_cast<std::size_t>(n));
      file_pos_ += static_cast<std::uint64_t>(n);
    } else if (!memory_taken_) {
      memory_taken_ = true;
      if (read_.empty()) {
        read_ = std::move(memory_);
      } else {
        read_ += memory_;
      }
      memory_.clear();
    } else {
      return false;  // the end
    }
  }
  return true;
}

bool WalSpool::next(WalEvent& ev, std::string& error) {
  error.clear();
  if (!fill(kHeader, error)) {
    if (error.empty() && read_.size() != read_pos_) error = "a spooled event was cut short";
    return false;
  }
  const char* p = read_.data() + read_pos_;
  std::size_t channel = get(p, 4), payload = get(p + 4, 4);
  ev.lsn = get(p + 8, 8);
  ev.needs_tail = p[16] == 1;
  if (!fill(kHeader + channel + payload, error)) {
    if (error.empty()) error = "a spooled event was cut short";
    return false;
  }
  p = read_.data() + read_pos_ + kHeader;
  ev.channel.assign(p, channel);
  ev.payload.assign(p + channel, payload);
  read_pos_ += kHeader + channel + payload;
  return true;
}

}  // namespace pgfanout::pg

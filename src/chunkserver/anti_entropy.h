// The pure parts of continuous anti-entropy between the members of a group (the loop itself is
// Chunkserver::RepairLoop, chunk_repair.cc).
//
// Comparing inventories cheaply: the chunk id space is split into 256 ranges by the id's first
// byte (its first two hex characters); each range's digest is XXH3-64 over the sorted ids in
// it, each id followed by '\n'. Two members compare the 256 digests (one small GET) and list
// only the ranges that differ, so equal inventories cost one request per peer.
//
//   GET /v1/digests -> {"ranges": 256,
//                       "digests": ["<16 hex>", ... 256 of them],
//                       "counts": [N, ... 256 of them]}
//
// Deletes: a member remembers the chunks it was asked to delete (Tombstones) and never pulls
// them back from a peer that still has them (neither in anti-entropy nor in the catch-up at
// start). Garbage collection deletes a chunk from every member of its group and keeps it in
// its ledger until every member confirmed, so the peer's copy is deleted too; the tombstone
// only keeps repair from fighting that in between. The tombstones are kept on disk (below), so
// a member restarted in between does not pull back what it had deleted.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace wharf {

inline constexpr size_t kDigestRanges = 256;

struct RangeDigests {
  std::array<uint64_t, kDigestRanges> digests{};
  std::array<uint64_t, kDigestRanges> counts{};

  nlohmann::json ToJson() const;
  // Never throws: anything but exactly the shape above (256 digests "<16 hex>", 256 counts)
  // is kInvalidArgument.
  static Result<RangeDigests> Parse(std::string_view body);
  bool operator==(const RangeDigests&) const = default;
};

// The range of a chunk id (32 lowercase hex characters): its first byte.
size_t RangeOfId(std::string_view id);
// The two hex characters every id of `range` starts with.
std::string RangePrefix(size_t range);

// Builds RangeDigests from ids fed in ascending order (as the store lists them). Ids that are
// not valid chunk ids are skipped.
class RangeDigester {
 public:
  RangeDigester();
  ~RangeDigester();
  RangeDigester(const RangeDigester&) = delete;
  RangeDigester& operator=(const RangeDigester&) = delete;
  void Add(std::string_view id);
  RangeDigests Finish();

 private:
  void Flush();
  RangeDigests out_;
  void* state_;  // XXH3_state_t*
  int current_ = -1;
};

// Chunks this member was asked to delete, remembered for `ttl` (at most `max_entries`, the
// oldest forgotten first). Thread-safe. Times are wall-clock (they outlive the process) and
// injected for tests.
//
// Persisted (Open): an append-only log, one line per deletion,
//   wharf-tombstones 1                                  (the first line)
//   D <chunk id> <unix ms> <16 hex: XXH3-64 of the text before the last space>
// Each Add appends its record and fdatasyncs it before returning (concurrent Adds share a
// sync), so a delete that was answered is remembered after a crash. Open reads the log; a
// record that is torn (the last line, unterminated), malformed or fails its checksum is
// skipped, one older than the ttl dropped; it then rewrites the log with what is live (temp
// file, fsync, rename, fsync of the directory), and so does an Add once the log holds more
// than twice the live entries (plus 1024): the file stays bounded by max_entries.
class Tombstones {
 public:
  using Clock = std::chrono::system_clock;
  using TimePoint = Clock::time_point;
  Tombstones(std::chrono::seconds ttl, size_t max_entries) : ttl_(ttl), max_(max_entries) {}
  ~Tombstones();
  Tombstones(const Tombstones&) = delete;
  Tombstones& operator=(const Tombstones&) = delete;

  // What Open found in the log.
  struct LoadReport {
    size_t loaded = 0;   // live records taken
    size_t expired = 0;  // records older than the ttl
    size_t skipped = 0;  // malformed or checksum-failing records, a torn tail included
  };
  // Loads `path` (absent: starts empty), then rewrites it compacted and keeps it open for
  // Add. Blocking (disk I/O). kIOError when the file cannot be read or rewritten.
  Result<LoadReport> Open(const std::string& path, TimePoint now);
  // Remembers `id` as deleted at `now`; once Open succeeded, durably (blocking: call from the
  // thread pool). kIOError when the record could not be written and synced (remembered in
  // memory all the same).
  Status Add(const std::string& id, TimePoint now);
  bool Contains(const std::string& id, TimePoint now);
  size_t size();
  // Records in the open log (the header not counted); 0 before Open.
  size_t records_on_disk();

  // One record's line (with its '\n'), and its parse: nullopt unless exactly that shape with
  // a valid chunk id and a matching checksum.
  static std::string Record(std::string_view id, int64_t unix_ms);
  static std::optional<std::pair<std::string, int64_t>> ParseRecord(std::string_view line);

 private:
  void AddLocked(const std::string& id, TimePoint at);
  void ExpireLocked(TimePoint now);
  // Rewrites the log with the live entries and reopens it for appending. file_mu_ held.
  Status CompactLocked(TimePoint now);
  const std::chrono::seconds ttl_;
  const size_t max_;
  std::mutex mu_;
  std::unordered_map<std::string, TimePoint> by_id_;     // the latest deletion of each id
  std::deque<std::pair<TimePoint, std::string>> order_;  // insertion order, may hold stale ids
  // The log (Open). Lock order: sync_mu_, then file_mu_, then mu_.
  std::mutex sync_mu_;  // one fdatasync at a time; covers synced_ (and a compaction)
  std::mutex file_mu_;  // the fd, appends, records_
  std::string path_;
  int fd_ = -1;
  size_t records_ = 0;
  uint64_t appended_ = 0;  // records appended since open (file_mu_)
  uint64_t synced_ = 0;    // of them, known durable (sync_mu_)
  uint64_t epoch_ = 0;     // bumped by each compaction (file_mu_): its rewrite synced all
};

}  // namespace wharf

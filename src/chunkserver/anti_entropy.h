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
// them back from a peer that still has them. Garbage collection deletes a chunk from every
// member of its group and keeps it in its ledger until every member confirmed, so the peer's
// copy is deleted too; the tombstone only keeps repair from fighting that in between.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
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
// oldest forgotten first). Thread-safe. Times are injected (steady clock) for tests.
class Tombstones {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  Tombstones(std::chrono::seconds ttl, size_t max_entries) : ttl_(ttl), max_(max_entries) {}
  void Add(const std::string& id, TimePoint now);
  bool Contains(const std::string& id, TimePoint now);
  size_t size();

 private:
  void ExpireLocked(TimePoint now);
  const std::chrono::seconds ttl_;
  const size_t max_;
  std::mutex mu_;
  std::unordered_map<std::string, TimePoint> by_id_;     // the latest deletion of each id
  std::deque<std::pair<TimePoint, std::string>> order_;  // insertion order, may hold stale ids
};

}  // namespace wharf

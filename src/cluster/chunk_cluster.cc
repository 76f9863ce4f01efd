#include "cluster/chunk_cluster.h"

#include <algorithm>

#include "common/checksum.h"
#include "common/log.h"
#include "common/metrics.h"

namespace wharf {

std::vector<MemberInfo> ReadOrder(const GroupInfo& group, uint64_t spread) {
  std::vector<MemberInfo> active, others;
  for (const auto& m : group.members) {
    (m.state == MemberState::kActive ? active : others).push_back(m);
  }
  // Spread reads over the active members.
  if (!active.empty()) {
    std::rotate(active.begin(), active.begin() + (spread % active.size()), active.end());
  }
  std::stable_partition(others.begin(), others.end(),
                        [](const MemberInfo& m) { return m.state == MemberState::kReadonly; });
  active.insert(active.end(), others.begin(), others.end());
  return active;
}

awaitable<Result<std::string>> ReadWithFailover(std::vector<MemberInfo> members, ChunkRef ref,
                                                uint64_t offset, uint64_t len,
                                                const MemberRead& read,
                                                const std::function<void()>& on_failure) {
  static auto& failovers = Metrics().Counter("wharf_gateway_read_failovers_total",
                                             "Chunk reads that had to try another member.");
  static auto& corrupt = Metrics().Counter("wharf_gateway_read_checksum_mismatch_total",
                                           "Chunk copies that failed their checksum.");
  static const Logger log = GetLogger("cluster");
  if (offset > ref.size || len > ref.size - offset) co_return Err(RangeInvalid("chunk range"));
  const bool whole = offset == 0 && len == ref.size;
  if (members.empty()) co_return Err(Unavailable("group " + ref.group + " unknown to the map"));
  Status last = Unavailable("no member of group " + ref.group + " could serve chunk " + ref.id);
  bool all_corrupt = true;
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) failovers.Inc();
    auto body = co_await read(members[i], offset, len, whole);
    if (!body) {
      all_corrupt = false;
      last = body.error();
      if (on_failure) on_failure();
      continue;
    }
    if (body->size() != len) {
      all_corrupt = false;
      last = Unavailable("member " + members[i].addr + " returned a short chunk");
      continue;
    }
    if (whole && ChecksumOf(*body) != ref.checksum) {
      corrupt.Inc();
      log->error("chunk copy failed its checksum chunk={} member={}", ref.id, members[i].id);
      last = Corruption("chunk " + ref.id + " failed its checksum on " + members[i].id);
      continue;
    }
    co_return std::move(*body);
  }
  if (all_corrupt) co_return Err(Corruption("every copy of chunk " + ref.id + " is corrupt"));
  co_return Err(last);
}

}  // namespace wharf

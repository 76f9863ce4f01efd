#include "cluster/chunk_cluster.h"

#include <algorithm>

#include "common/buffer_pool.h"
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

awaitable<Status> ChunkCluster::StreamChunk(ChunkRef ref, uint64_t offset, uint64_t len,
                                            ChunkSink sink, std::string_view request_id) {
  if (offset > ref.size || len > ref.size - offset) co_return RangeInvalid("chunk range");
  auto data = co_await GetChunk(ref, 0, ref.size, request_id);  // whole, so verified
  if (!data) co_return data.error();
  co_return co_await sink(std::string_view(*data).substr(offset, len));
}

namespace {

// Reads bytes [pos, pos + want) of a copy's body into `buf`. kUnavailable when it ends early.
awaitable<Result<size_t>> ReadPiece(ClientCall& call, char* buf, size_t want,
                                    const std::string& addr) {
  size_t filled = 0;
  while (filled < want) {
    auto n = co_await call.ReadSome(buf + filled, want - filled);
    if (!n) co_return Err(n.error());
    if (*n == 0) co_return Err(Unavailable("member " + addr + " returned a short chunk"));
    filled += *n;
  }
  co_return filled;
}

}  // namespace

awaitable<Status> StreamWithFailover(std::vector<MemberInfo> members, ChunkRef ref, uint64_t offset,
                                     uint64_t len, const MemberOpen& open, const ChunkSink& sink,
                                     const std::function<void()>& on_failure) {
  static auto& failovers = Metrics().Counter("wharf_gateway_read_failovers_total",
                                             "Chunk reads that had to try another member.");
  static auto& corrupt = Metrics().Counter("wharf_gateway_read_checksum_mismatch_total",
                                           "Chunk copies that failed their checksum.");
  static auto& aborted = Metrics().Counter(
      "wharf_gateway_read_aborted_total",
      "Chunk reads that failed after bytes of the copy were handed on (the response is cut).");
  static const Logger log = GetLogger("cluster");
  if (offset > ref.size || len > ref.size - offset) co_return RangeInvalid("chunk range");
  if (members.empty()) co_return Unavailable("group " + ref.group + " unknown to the map");
  // One pooled buffer carries the copy through, a piece at a time: the bytes before the tail
  // are handed on as they arrive, the tail (one piece) once the copy verified.
  constexpr size_t kPiece = kVerifiedTailBytes;
  PooledBuffer buf = co_await SharedBufferPool(kPiece).Acquire();
  if (!buf) co_return Internal("no memory for a chunk read buffer");
  const uint64_t tail_start = ref.size - std::min<uint64_t>(ref.size, kVerifiedTailBytes);
  const uint64_t end = offset + len;
  Status last = Unavailable("no member of group " + ref.group + " could serve chunk " + ref.id);
  bool all_corrupt = true;
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) failovers.Inc();
    const MemberInfo& m = members[i];
    auto call = co_await open(m);
    if (call && (*call)->content_length() != ref.size) {
      call = Err(Unavailable("member " + m.addr + " announced a chunk of the wrong length"));
    }
    if (!call) {
      all_corrupt = false;
      last = call.error();
      if (on_failure) on_failure();
      continue;
    }
    Checksummer sum;
    uint64_t pos = 0;
    bool handed_on = false;
    Status st;
    while (pos < ref.size) {
      const uint64_t stop = pos < tail_start ? tail_start : ref.size;
      const size_t want = std::min<uint64_t>(stop - pos, kPiece);
      auto got = co_await ReadPiece(**call, buf.data(), want, m.addr);
      if (!got) {
        st = got.error();
        break;
      }
      sum.Update(buf.data(), want);
      const uint64_t piece_start = pos;
      pos += want;
      if (pos == ref.size && sum.Value() != ref.checksum) {
        corrupt.Inc();
        log->error("chunk copy failed its checksum chunk={} member={}", ref.id, m.id);
        st = Corruption("chunk " + ref.id + " failed its checksum on " + m.id);
        break;
      }
      const uint64_t from = std::max(piece_start, offset), to = std::min(pos, end);
      if (from < to) {
        handed_on = true;
        WHARF_CO_RETURN_IF_ERROR(
            co_await sink(std::string_view(buf.data() + (from - piece_start), to - from)));
      }
    }
    if (st.ok()) co_return Status::Ok();
    if (handed_on) {  // too late to fail over: the caller must cut its response
      aborted.Inc();
      log->error("chunk read failed after bytes were sent chunk={} member={} err={}", ref.id, m.id,
                 st);
      co_return st;
    }
    last = st;
    if (st.code() != Code::kCorruption) {
      all_corrupt = false;
      if (on_failure) on_failure();
    }
  }
  if (all_corrupt) co_return Corruption("every copy of chunk " + ref.id + " is corrupt");
  co_return last;
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

#include "cluster/chunk_cluster.h"

#include <algorithm>

#include "common/async.h"
#include "common/buffer_pool.h"
#include "common/checksum.h"
#include "common/log.h"
#include "common/metrics.h"

namespace wharf {

CounterMetric& ReadFailoverCounter() {
  static auto& c = Metrics().Counter("wharf_gateway_read_failovers_total",
                                     "Chunk reads that had to try another member.");
  return c;
}
CounterMetric& ReadChecksumMismatchCounter() {
  static auto& c = Metrics().Counter("wharf_gateway_read_checksum_mismatch_total",
                                     "Chunk copies that failed their checksum.");
  return c;
}

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
                                            ChunkSink sink, std::string_view request_id,
                                            std::shared_ptr<PreparedRead> prepared) {
  prepared.reset();  // the default prepares nothing
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

CounterMetric& HedgeCounter() {
  static auto& c = Metrics().Counter(
      "wharf_gateway_read_hedges_total",
      "Chunk reads that asked a second member because the first was slow to answer.");
  return c;
}
// Rounds that hedged, by what came of it: the hedge delivered first (hedge_won), the member
// asked first delivered anyway (first_won), or none could (failed).
CounterMetric& HedgedReadCounter(const char* outcome) {
  return Metrics().Counter("wharf_gateway_hedged_reads_total",
                           "Chunk reads that asked another member because the first was slow, "
                           "by outcome: hedge_won, first_won, failed.",
                           {{"outcome", outcome}});
}

// One member's copy, read and checked: of the right length, and verified when whole.
awaitable<Result<std::string>> ReadCopy(MemberRead read, MemberInfo m, ChunkRef ref,
                                        uint64_t offset, uint64_t len, bool whole) {
  static const Logger log = GetLogger("cluster");
  auto body = co_await read(m, offset, len, whole);
  if (!body) co_return Err(body.error());
  if (body->size() != len) {
    co_return Err(Unavailable("member " + m.addr + " returned a short chunk"));
  }
  if (whole && ChecksumOf(*body) != ref.checksum) {
    ReadChecksumMismatchCounter().Inc();
    log->error("chunk copy failed its checksum chunk={} member={}", ref.id, m.id);
    co_return Err(Corruption("chunk " + ref.id + " failed its checksum on " + m.id));
  }
  co_return std::move(*body);
}

// One member's copy opened: its head read, of the right length.
awaitable<Result<std::unique_ptr<ClientCall>>> OpenCopy(MemberOpen open, MemberInfo m,
                                                        uint64_t size) {
  auto call = co_await open(m);
  if (!call) co_return Err(call.error());
  if ((*call)->content_length() != size) {
    co_return Err(Unavailable("member " + m.addr + " announced a chunk of the wrong length"));
  }
  co_return std::move(*call);
}

// Counts a hedged round and tells the policy about the members that failed or were slow.
// Returns whether every failure of the round was a bad copy.
template <typename T>
bool NoteRound(const HedgeOutcome<T>& h, const std::vector<MemberInfo>& members, size_t first,
               const ReadPolicy& policy) {
  if (h.started > 1) ReadFailoverCounter().Inc(h.started - 1);
  if (h.hedges > 0) {
    HedgeCounter().Inc(h.hedges);
    static auto& hedge_won = HedgedReadCounter("hedge_won");
    static auto& first_won = HedgedReadCounter("first_won");
    static auto& failed = HedgedReadCounter("failed");
    (!h.value ? failed : h.winner_hedged ? hedge_won : first_won).Inc();
  }
  bool all_corrupt = true;
  for (const auto& [i, st] : h.failed) {
    if (st.code() == Code::kCorruption) continue;
    all_corrupt = false;
    if (policy.on_failure) policy.on_failure(members[first + i]);
  }
  for (size_t i : h.overtaken) {  // slow, not proven bad
    all_corrupt = false;
    if (policy.on_failure) policy.on_failure(members[first + i]);
  }
  return all_corrupt;
}

Status LastError(const std::vector<std::pair<size_t, Status>>& failed, const ChunkRef& ref) {
  if (failed.empty()) {
    return Unavailable("no member of group " + ref.group + " could serve chunk " + ref.id);
  }
  return failed.back().second;
}

}  // namespace

awaitable<Status> StreamWithFailover(std::vector<MemberInfo> members, ChunkRef ref, uint64_t offset,
                                     uint64_t len, MemberOpen open, ChunkSink sink,
                                     ReadPolicy policy) {
  static auto& aborted = Metrics().Counter(
      "wharf_gateway_read_aborted_total",
      "Chunk reads that failed after bytes of the copy were handed on (the response is cut).");
  static auto& resumed = Metrics().Counter(
      "wharf_gateway_read_resumed_total",
      "Streamed chunk reads whose member stopped mid-copy, resumed from another member.");
  static const Logger log = GetLogger("cluster");
  if (offset > ref.size || len > ref.size - offset) co_return RangeInvalid("chunk range");
  if (members.empty()) co_return Unavailable("group " + ref.group + " unknown to the map");
  // One pooled buffer carries the copy through, a piece at a time: the bytes before the tail
  // are handed on as they arrive, the tail (one piece) once the copy verified.
  constexpr size_t kPiece = kVerifiedTailBytes;
  BufferPool* pool = policy.buffers ? policy.buffers : &SharedBufferPool(kPiece);
  PooledBuffer buf = co_await pool->Acquire();
  if (!buf) co_return Internal("no memory for a chunk read buffer");
  const uint64_t tail_start = ref.size - std::min<uint64_t>(ref.size, kVerifiedTailBytes);
  const uint64_t end = offset + len;
  // What was handed on so far: the range's bytes [offset, handed_to), all taken from the copy
  // prefix [0, prefix_end) whose checksum was prefix_sum.
  uint64_t handed_to = offset, prefix_end = 0, prefix_sum = 0;
  bool handed_on = false;
  Status last = Unavailable("no member of group " + ref.group + " could serve chunk " + ref.id);
  bool all_corrupt = true;
  size_t next = 0;  // the first member not yet asked
  while (next < members.size()) {
    if (next > 0) ReadFailoverCounter().Inc();
    const size_t first = next;
    std::function<awaitable<Result<std::unique_ptr<ClientCall>>>(size_t)> attempt =
        [&members, &open, first, size = ref.size](size_t i) {
          return OpenCopy(open, members[first + i], size);
        };
    HedgeOutcome<std::unique_ptr<ClientCall>> h =
        co_await RunHedged(members.size() - first, attempt, policy.hedge);
    if (!NoteRound(h, members, first, policy)) all_corrupt = false;
    next = first + h.started;
    if (!h.value) {
      last = LastError(h.failed, ref);
      continue;
    }
    const MemberInfo& m = members[first + h.winner];
    ClientCall& call = **h.value;
    if (handed_on) {
      resumed.Inc();
      log->warn("resuming a chunk read from another member chunk={} member={} at={}", ref.id, m.id,
                handed_to);
    }
    Checksummer sum;
    uint64_t pos = 0;
    Status st;
    while (pos < ref.size) {
      const uint64_t stop = pos < tail_start ? tail_start : ref.size;
      const size_t want = std::min<uint64_t>(stop - pos, kPiece);
      auto got = co_await ReadPiece(call, buf.data(), want, m.addr);
      if (!got) {
        st = got.error();
        break;
      }
      sum.Update(buf.data(), want);
      const uint64_t piece_start = pos;
      pos += want;
      if (pos == ref.size && sum.Value() != ref.checksum) {
        ReadChecksumMismatchCounter().Inc();
        log->error("chunk copy failed its checksum chunk={} member={}", ref.id, m.id);
        st = Corruption("chunk " + ref.id + " failed its checksum on " + m.id);
        break;
      }
      if (handed_on && pos == prefix_end && sum.Value() != prefix_sum) {
        ReadChecksumMismatchCounter().Inc();
        log->error("chunk copies differ where a read resumed chunk={} member={}", ref.id, m.id);
        st = Corruption("chunk " + ref.id + ": the copy on " + m.id +
                        " differs from the bytes already sent");
        break;
      }
      const uint64_t from = std::max(piece_start, handed_to), to = std::min(pos, end);
      if (from < to) {
        WHARF_CO_RETURN_IF_ERROR(
            co_await sink(std::string_view(buf.data() + (from - piece_start), to - from)));
        handed_on = true;
        handed_to = to;
        prefix_end = pos;
        prefix_sum = sum.Value();
      }
    }
    if (st.ok()) co_return Status::Ok();
    last = st;
    if (st.code() != Code::kCorruption) {
      all_corrupt = false;
      if (policy.on_failure) policy.on_failure(m);
    } else if (handed_on) {
      break;  // the bytes handed on may be wrong: no copy can mend that
    }
  }
  if (handed_on) {  // too late to answer an error: the caller must cut its response
    aborted.Inc();
    log->error("chunk read failed after bytes were sent chunk={} err={}", ref.id, last);
    co_return last;
  }
  if (all_corrupt) co_return Corruption("every copy of chunk " + ref.id + " is corrupt");
  co_return last;
}

awaitable<Result<std::string>> ReadWithFailover(std::vector<MemberInfo> members, ChunkRef ref,
                                                uint64_t offset, uint64_t len, MemberRead read,
                                                ReadPolicy policy) {
  if (offset > ref.size || len > ref.size - offset) co_return Err(RangeInvalid("chunk range"));
  const bool whole = offset == 0 && len == ref.size;
  if (members.empty()) co_return Err(Unavailable("group " + ref.group + " unknown to the map"));
  std::function<awaitable<Result<std::string>>(size_t)> attempt = [&members, &read, &ref, offset,
                                                                   len, whole](size_t i) {
    return ReadCopy(read, members[i], ref, offset, len, whole);
  };
  HedgeOutcome<std::string> h = co_await RunHedged(members.size(), attempt, policy.hedge);
  const bool all_corrupt = NoteRound(h, members, 0, policy);
  if (h.value) co_return std::move(*h.value);
  if (all_corrupt) co_return Err(Corruption("every copy of chunk " + ref.id + " is corrupt"));
  co_return Err(LastError(h.failed, ref));
}

}  // namespace wharf

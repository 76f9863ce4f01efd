#include "cluster/local_read.h"

#include <algorithm>

#include "common/async.h"
#include "common/checksum.h"
#include "common/log.h"
#include "common/metrics.h"

namespace wharf {
namespace {

CounterMetric& LocalReads(const char* outcome) {
  return Metrics().Counter("wharf_gateway_local_reads_total",
                           "Chunk copies read from a chunkserver member in this process (wharf "
                           "up) instead of over HTTP, by outcome: served, missing (the member "
                           "did not hold it), corrupt (it failed its checksum), error.",
                           {{"outcome", outcome}});
}

// Verification reads this much at a time: small enough to stay in the CPU's cache between
// the read and the hash.
constexpr size_t kVerifyStep = 256u << 10;

// Opens member `member`'s copy of `ref` and checks it whole against ref.checksum, reading it
// through `buf` (`cap` bytes); when the chunk fits, `buf` then holds all of its data. Blocking.
Result<OpenChunk> OpenVerified(LocalMembers* local, const std::string& member, const ChunkRef& ref,
                               char* buf, size_t cap) {
  WHARF_ASSIGN_OR_RETURN(OpenChunk chunk, local->Open(member, ref.id));
  if (chunk.size() != ref.size || chunk.checksum() != ref.checksum) {
    return Err(
        Corruption(fmt::format("chunk {} on {}: the store holds {} bytes xxh3 {}, the blob "
                               "names {} bytes xxh3 {}",
                               ref.id, member, chunk.size(), FormatChecksum(chunk.checksum()),
                               ref.size, FormatChecksum(ref.checksum))));
  }
  const bool keep = ref.size <= cap;
  const size_t step = std::min(kVerifyStep, cap);
  Checksummer sum;
  for (uint64_t pos = 0; pos < ref.size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(step, ref.size - pos));
    char* dst = keep ? buf + pos : buf;
    WHARF_RETURN_IF_ERROR(chunk.ReadInto(pos, dst, n));
    sum.Update(dst, n);
    pos += n;
  }
  if (sum.Value() != ref.checksum) {
    return Err(
        Corruption(fmt::format("chunk {} failed its checksum on {} (local read)", ref.id, member)));
  }
  return chunk;
}

// For a bytes-only sink and a chunk larger than the buffer: reads the verified copy again,
// piece by piece, checking it again; the last kVerifiedTailBytes are handed on only once the
// copy matched (StreamWithFailover's rule). Every error is final (bytes may have been handed).
awaitable<Status> ResendChecked(const OpenChunk& chunk, ChunkRef ref, uint64_t offset, uint64_t len,
                                const ChunkSink& sink, char* buf, size_t cap) {
  static const Logger log = GetLogger("cluster");
  const uint64_t tail_start = ref.size - std::min<uint64_t>(ref.size, kVerifiedTailBytes);
  const uint64_t end = offset + len;
  Checksummer sum;
  for (uint64_t pos = 0; pos < ref.size;) {
    const uint64_t stop = pos < tail_start ? tail_start : ref.size;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(stop - pos, cap));
    const OpenChunk* c = &chunk;
    auto read = [c, pos, buf, n] { return c->ReadInto(pos, buf, n); };
    Status st = co_await Offload(read);
    if (!st.ok()) co_return st;
    sum.Update(buf, n);
    const uint64_t piece = pos;
    pos += n;
    if (pos == ref.size && sum.Value() != ref.checksum) {
      ReadChecksumMismatchCounter().Inc();
      log->error("local chunk copy changed while it was read chunk={}", ref.id);
      co_return Corruption("chunk " + ref.id + ": the local copy changed while it was read");
    }
    const uint64_t from = std::max(piece, offset), to = std::min(pos, end);
    if (from < to) {
      Status sent = co_await sink(std::string_view(buf + (from - piece), to - from));
      if (!sent.ok()) co_return sent;
    }
  }
  co_return Status::Ok();
}

// Takes a verification buffer from `pool` into *buf (empty when none could be had: the
// error says so) and checks `member`'s copy of `ref` through it on the I/O pool
// (OpenVerified); *buf then holds the chunk's data when it fits.
awaitable<Result<OpenChunk>> CheckCopy(LocalMembers* local, std::string member, ChunkRef ref,
                                       BufferPool* pool, PooledBuffer* buf) {
  *buf = co_await pool->Acquire();
  if (!*buf) co_return Err(Internal("no memory for a chunk read buffer"));
  char* data = buf->data();
  const size_t cap = buf->capacity();
  auto open = [local, member, ref, data, cap] {
    return OpenVerified(local, member, ref, data, cap);
  };
  Result<OpenChunk> r = co_await Offload(open);
  co_return r;
}

// A copy verified ahead (PrepareLocalCopy). Lives on the loop that prepared it; the task
// verifying it holds it too, so dropping it while the check runs frees nothing under it.
class LocalPrepared final : public PreparedRead {
 public:
  LocalPrepared(asio::any_io_executor ex, ChunkRef r, std::string m)
      : ref(std::move(r)), member(std::move(m)), wake(ex) {}
  const ChunkRef ref;
  const std::string member;
  std::optional<Result<OpenChunk>> result;  // set once the check is done
  asio::steady_timer wake;                  // cancelled when it is

  awaitable<Result<OpenChunk>> Take() {
    while (!result) {
      wake.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code ec;
      co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    Result<OpenChunk> r = std::move(*result);
    co_return r;
  }
};

awaitable<void> VerifyAhead(std::shared_ptr<LocalPrepared> p, std::shared_ptr<LocalMembers> local,
                            BufferPool* pool) {
  PooledBuffer buf;  // given back when the check is done: a file sink needs no bytes
  p->result = co_await CheckCopy(local.get(), p->member, p->ref, pool, &buf);
  p->wake.cancel();
}

}  // namespace

std::shared_ptr<PreparedRead> PrepareLocalCopy(asio::any_io_executor ex, MemberInfo member,
                                               ChunkRef ref, std::shared_ptr<LocalMembers> local,
                                               BufferPool* buffers) {
  auto p = std::make_shared<LocalPrepared>(ex, std::move(ref), std::move(member.id));
  BufferPool* pool = buffers ? buffers : &SharedBufferPool(kVerifiedTailBytes);
  asio::co_spawn(ex, VerifyAhead(p, std::move(local), pool), asio::detached);
  return p;
}

awaitable<LocalReadResult> StreamLocalCopies(std::vector<MemberInfo> members, ChunkRef ref,
                                             uint64_t offset, uint64_t len, LocalMembers* local,
                                             ChunkSink sink, BufferPool* buffers,
                                             std::shared_ptr<PreparedRead> prepared) {
  static const Logger log = GetLogger("cluster");
  static auto& served = LocalReads("served");
  static auto& missing = LocalReads("missing");
  static auto& corrupt = LocalReads("corrupt");
  static auto& failed = LocalReads("error");
  if (offset > ref.size || len > ref.size - offset) {
    co_return LocalReadResult{RangeInvalid("chunk range"), true};
  }
  BufferPool* pool = buffers ? buffers : &SharedBufferPool(kVerifiedTailBytes);
  // A copy verified ahead is used only for a file sink (it kept no bytes) and only if it is
  // of this chunk and one of these members, which is then tried first.
  auto* ahead = dynamic_cast<LocalPrepared*>(prepared.get());
  if (ahead != nullptr && (!sink.takes_files() || ahead->ref.id != ref.id ||
                           ahead->ref.checksum != ref.checksum || ahead->ref.size != ref.size)) {
    ahead = nullptr;
  }
  if (ahead != nullptr) {
    auto it = std::find_if(members.begin(), members.end(),
                           [ahead](const MemberInfo& m) { return m.id == ahead->member; });
    if (it == members.end()) {
      ahead = nullptr;
    } else {
      std::rotate(members.begin(), it, it + 1);
    }
  }
  Status last = Unavailable("no local member could serve chunk " + ref.id);
  bool all_corrupt = !members.empty();
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) ReadFailoverCounter().Inc();
    const MemberInfo& m = members[i];
    PooledBuffer buf;
    Result<OpenChunk> chunk = Err(Unavailable("not read"));
    if (i == 0 && ahead != nullptr) {
      chunk = co_await ahead->Take();
      prepared.reset();
    } else {
      chunk = co_await CheckCopy(local, m.id, ref, pool, &buf);
      if (!buf) co_return LocalReadResult{chunk.error(), false};
    }
    char* data = buf.data();
    const size_t cap = buf ? buf.capacity() : 0;
    if (!chunk) {
      last = chunk.error();
      if (last.code() == Code::kCorruption) {
        corrupt.Inc();
        ReadChecksumMismatchCounter().Inc();
        log->error("local chunk copy is bad, trying the next member chunk={} member={} err={}",
                   ref.id, m.id, last);
        continue;
      }
      all_corrupt = false;
      if (last.code() == Code::kNotFound) {
        missing.Inc();
      } else {
        failed.Inc();
        log->warn("local chunk read failed, trying the next member chunk={} member={} err={}",
                  ref.id, m.id, last);
      }
      continue;
    }
    served.Inc();
    if (len == 0) co_return LocalReadResult{Status::Ok(), true};
    if (sink.takes_files()) {
      buf.Release();  // not needed to send: memory is held only while verifying
      Status st = co_await sink.SendFile(chunk->fd(), chunk->data_offset() + offset, len);
      co_return LocalReadResult{st, true};
    }
    if (ref.size <= cap) {  // the verification left the whole chunk in the buffer
      Status st = co_await sink(std::string_view(data + offset, len));
      co_return LocalReadResult{st, true};
    }
    Status st = co_await ResendChecked(*chunk, ref, offset, len, sink, data, cap);
    co_return LocalReadResult{st, true};
  }
  if (all_corrupt) last = Corruption("every local copy of chunk " + ref.id + " is corrupt");
  co_return LocalReadResult{last, false};
}

}  // namespace wharf

// ChunkCluster: the gateway's view of the chunk cluster (Speedy's ImageServer side), as an
// interface. ClusterClient (cluster_client.h) is the implementation over HTTP; tests use the
// in-memory FakeChunkCluster (tests/fakes/). Gateway code holds a ChunkCluster* only.
//
// What an implementation provides:
//   - a cached cluster map (groups, members, states) and its refresh;
//   - placement: the group for a new chunk, chosen with the master's policy;
//   - a chunk written to every member of a group (Speedy's rule: stored only when all have it);
//   - a chunk read from any member with verification and failover;
//   - deletes from a whole group, and a single member's inventory and deletes (for the sweep).
//
// Every operation takes a trailing `request_id`: when not empty it travels with each call the
// operation makes (X-Request-Id over HTTP), so a request's log lines can be joined across
// processes. String views (data, request_id) must stay alive until the returned awaitable
// completes.
//
// Threading: an implementation lives on one executor; call it from coroutines on that
// executor only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "chunkserver/chunk_client.h"
#include "common/asio.h"
#include "common/buffer_pool.h"
#include "common/chunk_ref.h"
#include "common/status.h"
#include "master/cluster_map.h"

namespace wharf {

// Receives the bytes of a chunk read, in order. An error stops the read.
//
// Always takes bytes in memory. A sink may also take them as a range of an open file
// (`file`, set by ServeBlob: the answer's sendfile), which a reader whose copy is a verified
// local chunk file (cluster/local_read.h) uses instead of copying the bytes through memory.
// Constructible from any callable taking the bytes (a bytes-only sink).
class ChunkSink {
 public:
  using Bytes = std::function<awaitable<Status>(std::string_view)>;
  // Sends `len` bytes of `fd` from `offset`. The fd stays the caller's, open until the
  // returned awaitable completes.
  using File = std::function<awaitable<Status>(int fd, uint64_t offset, uint64_t len)>;

  ChunkSink() = default;
  template <typename F>
  requires(!std::is_same_v<std::decay_t<F>, ChunkSink> && std::is_constructible_v<Bytes, F>)
      ChunkSink(F bytes)
      : bytes_(std::move(bytes)) {}  // NOLINT: implicit, as std::function
  ChunkSink(Bytes bytes, File file) : bytes_(std::move(bytes)), file_(std::move(file)) {}

  awaitable<Status> operator()(std::string_view piece) const { return bytes_(piece); }
  explicit operator bool() const { return static_cast<bool>(bytes_); }
  // True when SendFile may be called.
  bool takes_files() const { return static_cast<bool>(file_); }
  awaitable<Status> SendFile(int fd, uint64_t offset, uint64_t len) const {
    return file_(fd, offset, len);
  }

 private:
  Bytes bytes_;
  File file_;
};

class CounterMetric;
// The counters every chunk reader adds to (HTTP copies, local copies of `wharf up`):
// wharf_gateway_read_failovers_total (reads that had to try another member) and
// wharf_gateway_read_checksum_mismatch_total (copies that failed their checksum).
CounterMetric& ReadFailoverCounter();
CounterMetric& ReadChecksumMismatchCounter();

// Work begun for a later StreamChunk of one chunk (ChunkCluster::PrepareRead), owned by the
// reader that will stream it. Dropping it abandons the work.
class PreparedRead {
 public:
  virtual ~PreparedRead() = default;
};

// The tail of every chunk copy that StreamChunk holds back until the copy is verified.
inline constexpr uint64_t kVerifiedTailBytes = 1u << 20;

class ChunkCluster {
 public:
  virtual ~ChunkCluster() = default;

  // Fetches the map now. kUnavailable if no master answered (the cached map stays).
  virtual awaitable<Status> Refresh(std::string_view request_id = {}) = 0;
  // A copy of the cached map (nullopt before the first successful fetch).
  virtual std::optional<ClusterMap> map() const = 0;
  // True if some group is writable in the cached map.
  virtual bool writable() const = 0;
  // How many groups a chunk write tries (ChooseGroup + PutChunkToGroup) before giving up.
  virtual int max_write_attempts() const = 0;

  // Chooses a group for a chunk of `size` bytes, not one of `exclude`. Returns a copy, which
  // stays valid whatever happens to the cached map. kUnavailable if no group is writable (or
  // there is no map yet).
  virtual Result<GroupInfo> ChooseGroup(uint64_t size,
                                        const std::set<std::string, std::less<>>& exclude,
                                        std::string_view request_id = {}) = 0;

  // Writes one chunk (id and checksum chosen by the caller) to every member of `group` in
  // parallel. Ok only when every member acknowledged it durable; otherwise the first failure
  // (kUnavailable, kNoSpace...) and the copies that landed are the caller's garbage.
  virtual awaitable<Status> PutChunkToGroup(GroupInfo group, ChunkRef ref, std::string_view data,
                                            std::string_view request_id = {}) = 0;

  // Bytes [offset, offset+len) of a chunk. A whole-chunk read is verified against the chunk's
  // checksum; on error or mismatch the next member is tried (active ones first).
  // kRangeInvalid for a range outside the chunk; kUnavailable when no member could serve it;
  // kCorruption when every copy was bad.
  virtual awaitable<Result<std::string>> GetChunk(ChunkRef ref, uint64_t offset, uint64_t len,
                                                  std::string_view request_id = {}) = 0;

  // Streams bytes [offset, offset+len) of a chunk to `sink` in order, as they arrive from a
  // member. The whole copy is read and checked against ref.checksum incrementally; bytes
  // outside the range are dropped. The last kVerifiedTailBytes of a copy (all of a chunk of
  // that size or less) are handed on only once the copy verified, so a bad copy can never be
  // passed on whole.
  // Failover: a member that fails, or whose copy fails its checksum, before any byte of it was
  // handed to `sink` is skipped for the next one (errors then as GetChunk). Once bytes were
  // handed on, a failure ends the read with kUnavailable, or kCorruption for a bad copy: the
  // caller must then abort what it was sending (the bytes it passed on may be wrong).
  // A `sink` error stops the read and is returned. The default implementation reads the
  // whole chunk with GetChunk and hands it on (verify-then-send).
  // `prepared`: what PrepareRead(ref) returned, if it was called (else null).
  virtual awaitable<Status> StreamChunk(ChunkRef ref, uint64_t offset, uint64_t len, ChunkSink sink,
                                        std::string_view request_id = {},
                                        std::shared_ptr<PreparedRead> prepared = nullptr);

  // Lets the work of a later StreamChunk(ref, ...) to a sink that takes files begin now, so
  // that it overlaps with sending the chunk before (ReadChunks prepares each next chunk while
  // the current one is sent): a local copy's verification (cluster/local_read.h). Returns
  // null when there is nothing to begin ahead (the default).
  virtual std::shared_ptr<PreparedRead> PrepareRead(const ChunkRef& ref) {
    (void)ref;
    return nullptr;
  }

  // Deletes a chunk from every member of its group. Ok only if every member confirmed (deleted,
  // or did not have it); kUnavailable if some member could not be reached or the group is not
  // in the map.
  virtual awaitable<Status> DeleteChunk(ChunkRef ref, std::string_view request_id = {}) = 0;

  // One page of a member's inventory: up to `limit` chunks with ids after `after`.
  // kUnavailable if the member cannot be reached; kInvalidArgument for a malformed answer.
  virtual awaitable<Result<InventoryPage>> ListMemberChunks(MemberInfo member, std::string after,
                                                            size_t limit,
                                                            std::string_view request_id = {}) = 0;

  // Deletes a chunk on one member only. true: deleted; false: the member did not have it.
  virtual awaitable<Result<bool>> DeleteMemberChunk(MemberInfo member, std::string id,
                                                    std::string_view request_id = {}) = 0;
};

// The members of `group` in read preference order: active ones first (rotated by `spread`, so
// reads spread over them), then readonly ones, then the rest.
std::vector<MemberInfo> ReadOrder(const GroupInfo& group, uint64_t spread);

// Reads one member's copy: bytes [offset, offset+len), or the whole chunk when `whole`.
// It must return a coroutine that owns what it uses: a hedged read may outlive its caller.
using MemberRead = std::function<awaitable<Result<std::string>>(
    const MemberInfo& member, uint64_t offset, uint64_t len, bool whole)>;

// How the shared read rules below treat slow and failing members.
struct ReadPolicy {
  // Hedging: when the member being read has not delivered after this (the whole answer for
  // ReadWithFailover, the response head for StreamWithFailover), the next member is asked too
  // and the first good copy wins (common/async.h RunHedged). 0: the next only after a failure.
  std::chrono::milliseconds hedge{0};
  // Called (may be empty) for each member that could not serve, or was overtaken by a hedge.
  std::function<void(const MemberInfo&)> on_failure;
  // Where StreamWithFailover's kVerifiedTailBytes buffer comes from (a gateway's, under its
  // memory budget); null: the process-wide SharedBufferPool.
  BufferPool* buffers = nullptr;
};

// The read rule every implementation shares: tries `members` in order with `read` (hedged as
// `policy` says), takes the first answer of the right length (verified against ref.checksum
// when it is the whole chunk), counts failovers, hedges and bad copies. Errors as
// ChunkCluster::GetChunk.
awaitable<Result<std::string>> ReadWithFailover(std::vector<MemberInfo> members, ChunkRef ref,
                                                uint64_t offset, uint64_t len, MemberRead read,
                                                ReadPolicy policy);

// What StreamWithFailover needs of a member: the response to a GET of its whole copy, with
// its head read (status 200), for the body to be read from. As MemberRead, the coroutine
// must own what it uses.
using MemberOpen =
    std::function<awaitable<Result<std::unique_ptr<ClientCall>>>(const MemberInfo& member)>;

// The streaming read rule (ChunkCluster::StreamChunk): opens `members` in order with `open`
// (hedged as `policy` says), verifies incrementally, holds back the verified tail, counts
// failovers and bad copies like ReadWithFailover. A copy that stops (a member error or
// deadline) after bytes were handed on is resumed from the next member: its copy is read
// from the start and must match, up to the point handed on, what the first copy gave (same
// checksum of that prefix), and only the bytes after it are handed on. A copy that fails its
// checksum after bytes were handed on still ends the read with kCorruption.
awaitable<Status> StreamWithFailover(std::vector<MemberInfo> members, ChunkRef ref, uint64_t offset,
                                     uint64_t len, MemberOpen open, ChunkSink sink,
                                     ReadPolicy policy);

}  // namespace wharf

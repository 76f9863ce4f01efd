// Short-circuit local reads (HDFS's idea): when a chunkserver member lives in the gateway's
// own process (`wharf up`), the gateway reads that member's chunk files from its store
// directly instead of asking it over loopback HTTP, which cost two extra copies of every byte
// (chunkserver -> socket -> gateway) and a wake-up per socket read.
//
// Integrity is the HTTP path's, and stronger: a local copy is read whole on the I/O pool and
// checked against the chunk's checksum (ChunkRef::checksum, the one the blob's record names)
// BEFORE any byte of it is handed on, so a bad local copy always fails over to the next
// member instead of cutting the answer. Only then are the bytes handed on:
//
//   - to a sink that takes files (ServeBlob's): as a range of the very fd that was verified
//     (sendfile: no copy through user space). Safe because the store never writes a published
//     chunk file: a chunk is written to tmp/, fsynced and renamed into place, a commit of an
//     id that exists keeps the old file, delete unlinks and quarantine renames
//     (local_chunk_store.h). The open fd's inode therefore holds the verified bytes for as
//     long as it is open, whatever happens to the name. The one residual window — a writer
//     outside wharf editing the file in place between the check and the send, milliseconds —
//     is outside the store's contract, as it is for the chunkserver's own sendfile.
//   - to a bytes-only sink: from the verification buffer when the chunk fits it, else read a
//     second time piece by piece, checked again, its last piece handed on only once the copy
//     matched again (a copy that changed between the passes ends the read with kCorruption,
//     as StreamWithFailover does after bytes were handed on).
//
// A member the process does not hold, or that does not serve (stopped), is left to the
// normal HTTP path; a member that does not have the chunk, errs, or whose copy is bad is
// skipped for the next one. Disk reads run on the I/O pool (IoPool), never on the event loop;
// the verification buffer is a pooled one (no per-chunk allocation or zero-fill) and is given
// back before the bytes are sent.
//
// Counted in wharf_gateway_local_reads_total{outcome=served|missing|corrupt|error}.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chunkserver/chunk_store.h"
#include "cluster/chunk_cluster.h"
#include "common/asio.h"
#include "common/buffer_pool.h"
#include "common/chunk_ref.h"
#include "common/status.h"
#include "master/cluster_map.h"

namespace wharf {

// The chunkserver members that live in this process, by member id. Thread-safe: called from
// the gateway's loop (Serves) and from the I/O pool (Open). Must outlive every reader using it
// (and the I/O pool's tasks: a read may still be running on the pool when a gateway stops).
class LocalMembers {
 public:
  virtual ~LocalMembers() = default;
  // True when member `member_id` lives in this process and serves now. Cheap, non-blocking.
  virtual bool Serves(std::string_view member_id) const = 0;
  // Opens chunk `chunk_id` in member `member_id`'s store (ChunkStore::Open). BLOCKING (disk):
  // call on the I/O pool. kUnavailable when the member is not here or does not serve;
  // kNotFound when it does not hold the chunk; kCorruption for a damaged header; kIOError.
  virtual Result<OpenChunk> Open(std::string_view member_id, const std::string& chunk_id) = 0;
};

// What StreamLocalCopies did.
struct LocalReadResult {
  // final: `status` is the read's answer — Ok, a sink error, or a failure after bytes were
  // handed on (the caller must cut what it was sending). Not final: no byte was handed on and
  // every member given failed; `status` is the last error (kCorruption when every copy was
  // bad), and the caller may try other members.
  Status status;
  bool final = false;
};

// Begins opening and verifying `member`'s local copy of `ref` now, on `ex` (the caller's
// loop) and the I/O pool, for a later StreamLocalCopies to a sink that takes files: a reader
// prepares its next chunk while the current one is still being sent, so the client is never
// left waiting while a chunk is checked. The verification buffer is given back as soon as
// the check is done; what is kept until the read (or until the result is dropped) is the
// open, verified fd.
std::shared_ptr<PreparedRead> PrepareLocalCopy(asio::any_io_executor ex, MemberInfo member,
                                               ChunkRef ref, std::shared_ptr<LocalMembers> local,
                                               BufferPool* buffers);

// Streams bytes [offset, offset+len) of chunk `ref` to `sink` from the first of `members`
// (all of which `local` serves, in read order) whose local copy verifies, as the file comment
// says. `buffers`: where the verification buffer comes from (null: SharedBufferPool of
// kVerifiedTailBytes). kRangeInvalid (final) for a range outside the chunk. `prepared`: a
// PrepareLocalCopy of `ref` (else null or another kind): when the sink takes files and its
// member is one of `members`, that member is tried first and its check is not done again.
awaitable<LocalReadResult> StreamLocalCopies(std::vector<MemberInfo> members, ChunkRef ref,
                                             uint64_t offset, uint64_t len, LocalMembers* local,
                                             ChunkSink sink, BufferPool* buffers,
                                             std::shared_ptr<PreparedRead> prepared = nullptr);

}  // namespace wharf

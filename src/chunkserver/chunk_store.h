// ChunkStore: the chunkserver's storage interface. Pure storage: no HTTP, no networking.
//
// A chunk is an immutable byte string (a fragment of a blob or file, typically 16 MiB) named
// by a chunk id (see common/chunk_id.h) and protected by an XXH3-64 checksum (see
// common/checksum.h) that the writer announces up front and the store verifies before the chunk
// becomes visible.
//
// Threading: every implementation is thread-safe, and every method is BLOCKING (disk I/O).
// Callers on an event loop run them on a thread pool (common/async.h: Offload()).
//
// Durability: a chunk is visible (Stat/Open/List) only once it is durable. After a failed
// fsync the store never claims durability again: every later mutation fails with kIOError
// (sticky, as in leveldb), and Health() reports the failure so the chunkserver can turn
// read-only.
//
// Ids: every method that takes an id returns kInvalidArgument for an id that fails
// ValidChunkId(), before touching the disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chunkserver/anti_entropy.h"
#include "chunkserver/env.h"
#include "common/status.h"

namespace wharf {

// What the store knows about one stored chunk.
struct ChunkInfo {
  std::string id;
  uint64_t size = 0;       // data bytes (excluding any on-disk header)
  uint64_t checksum = 0;   // XXH3-64 of the data
  int64_t mtime_unix = 0;  // when the chunk was committed (seconds since the epoch)

  bool operator==(const ChunkInfo&) const = default;
};

// Space of the store, summed over its data directories (a file system shared by several
// directories is counted once).
struct SpaceInfo {
  uint64_t capacity = 0;       // total bytes of the file systems
  uint64_t free = 0;           // bytes available to the store
  uint64_t reserve_bytes = 0;  // writes are refused when they would leave less free space
};

// An open chunk, for the HTTP layer to sendfile()/pread() a range from. Owns `fd` (closed
// on destruction). Bytes [data_offset, data_offset + size) of the file are the chunk's data.
// The data stays readable through the fd even if the chunk is deleted meanwhile.
// Read() goes through `env` (nullptr = DefaultEnv()), so tests can inject read faults.
// Movable, not copyable. Not thread-safe (but pread on fd() from several threads is fine).
class OpenChunk {
 public:
  OpenChunk() = default;
  OpenChunk(int fd, uint64_t data_offset, uint64_t size, uint64_t checksum,
            std::shared_ptr<Env> env = nullptr)
      : fd_(fd),
        data_offset_(data_offset),
        size_(size),
        checksum_(checksum),
        env_(env ? std::move(env) : DefaultEnv()) {}
  ~OpenChunk();
  OpenChunk(OpenChunk&& other) noexcept;
  OpenChunk& operator=(OpenChunk&& other) noexcept;
  OpenChunk(const OpenChunk&) = delete;
  OpenChunk& operator=(const OpenChunk&) = delete;

  int fd() const { return fd_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t size() const { return size_; }
  uint64_t checksum() const { return checksum_; }

  // Reads data bytes [offset, offset + len) of the chunk (offsets relative to the data).
  // kRangeInvalid if the range is outside the chunk; kIOError on a read error or a file
  // shorter than its header claims.
  Result<std::string> Read(uint64_t offset, uint64_t len) const;
  // As Read(), into the caller's `buf` (at least `len` bytes; nothing is allocated or
  // zero-filled): for readers that reuse one buffer from piece to piece.
  Status ReadInto(uint64_t offset, void* buf, size_t len) const;

 private:
  int fd_ = -1;
  uint64_t data_offset_ = 0;
  uint64_t size_ = 0;
  uint64_t checksum_ = 0;
  std::shared_ptr<Env> env_ = DefaultEnv();
};

// Streams one chunk into the store. Obtained from ChunkStore::BeginWrite(). Not thread-safe:
// one caller at a time. The store must outlive its writers.
//
// Destroying a writer that was not committed (or whose commit failed) aborts it: nothing of
// it remains on disk.
class ChunkWriter {
 public:
  virtual ~ChunkWriter() = default;

  // Appends `n` bytes of chunk data.
  // kInvalidArgument if the data would exceed the size announced to BeginWrite (the writer
  // is then aborted), or if the writer is already finished;
  // kIOError if the disk write fails (aborted).
  virtual Status Append(const void* data, size_t n) = 0;
  Status Append(std::string_view s) { return Append(s.data(), s.size()); }

  // Verifies and publishes the chunk. On success the chunk is durable (data and directory
  // entry fsynced) and visible to Stat/Open/List. On any failure nothing of the chunk is
  // left on disk or visible. Errors:
  //   kInvalidArgument  fewer bytes were appended than announced (short body);
  //   kDigestMismatch   the data does not hash to the announced checksum;
  //   kConflict         a chunk with this id and different size/checksum exists;
  //   kIOError          a disk error; if it was an fsync the store is now sticky-failed.
  // Committing a chunk that already exists with the same size and checksum succeeds
  // (idempotent retries). Calling Commit() again returns the first call's result.
  virtual Status Commit() = 0;
};

class ChunkStore {
 public:
  virtual ~ChunkStore() = default;

  // Starts writing chunk `id` of exactly `size` bytes whose XXH3-64 is `checksum`.
  // Errors: kInvalidArgument (bad id); kTooLarge (size above the store's limit);
  // kNoSpace (the write, counting writes in progress, would leave free space under the
  // reserve on every data directory); kConflict (the id already exists with a different
  // size or checksum); kIOError (the store is sticky-failed, or the temp file cannot be made).
  virtual Result<std::unique_ptr<ChunkWriter>> BeginWrite(const std::string& id, uint64_t size,
                                                          uint64_t checksum) = 0;

  // Metadata of a stored chunk, from memory (no disk I/O). kNotFound; kInvalidArgument.
  virtual Result<ChunkInfo> Stat(const std::string& id) = 0;

  // Opens a chunk for reading. kNotFound; kInvalidArgument; kCorruption if the on-disk
  // header is damaged or the file length disagrees with it; kIOError.
  virtual Result<OpenChunk> Open(const std::string& id) = 0;

  // Convenience: Open() + OpenChunk::Read(). Does not verify the checksum (ranges can't be).
  // Errors of both; kRangeInvalid if [offset, offset + len) is not inside the chunk.
  virtual Result<std::string> ReadRange(const std::string& id, uint64_t offset, uint64_t len) = 0;

  // Removes a chunk durably. kNotFound; kInvalidArgument; kIOError (incl. sticky failure).
  virtual Status Delete(const std::string& id) = 0;

  // Up to `limit` chunks with id > `after` (any string; "" starts at the beginning), sorted
  // by id: the inventory, one page at a time. Served from memory.
  virtual Result<std::vector<ChunkInfo>> List(std::string_view after, size_t limit) = 0;

  // Re-reads the whole chunk and checks it against its stored checksum (for the scrubber).
  // Returns the chunk's info when intact. kCorruption if data, length or header disagree;
  // kNotFound; kInvalidArgument; kIOError on a read error.
  virtual Result<ChunkInfo> Verify(const std::string& id) = 0;

  // Moves a (corrupt) chunk aside so it is no longer listed or served; it is kept on disk
  // for the operator, not deleted. kNotFound; kInvalidArgument; kIOError.
  virtual Status Quarantine(const std::string& id) = 0;

  // Number of stored chunks (from memory).
  virtual uint64_t Count() = 0;

  // The per-range digests of the sorted ids (anti_entropy.h), from memory. This default walks
  // List(); a store may cache them and recompute only the ranges a put or delete touched.
  virtual Result<RangeDigests> Digests();

  // Capacity, free space and reserve, summed over the data directories. kIOError.
  virtual Result<SpaceInfo> Space() = 0;

  // Ok, or why the chunkserver should report itself read-only: the sticky kIOError recorded
  // by the first failed fsync (the store then refuses every mutation, until a restart), or a
  // write fault — a chunk write or probe that could not create, write or rename a file (a
  // read-only remount, an immutable directory) — until a ProbeWrite() succeeds.
  virtual Status Health() = 0;

  // Creates, writes, syncs and removes a small file in every data directory. A failure is
  // recorded as a write fault (see Health()); success clears one. Returns the probe's result.
  virtual Status ProbeWrite() = 0;
};

}  // namespace wharf

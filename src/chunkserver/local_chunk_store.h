// LocalChunkStore: ChunkStore over one or more local data directories, a file per chunk.
//
// On-disk layout of each data directory:
//
//   <dir>/
//   ├── LOCK                       flock()ed while a store has the directory open
//   ├── chunks/
//   │   ├── 00/
//   │   │   └── 00c0ffee...        one file per chunk, named by its id, in the subdirectory
//   │   ├── 01/                    named by the id's first two hex digits (256 at most,
//   │   └── ...                    made on first use); 32-byte header + data, chunk_file.h
//   ├── tmp/
//   │   └── <id>.<random>          chunks being written; renamed into chunks/ on commit,
//   │                              all deleted when the store opens
//   └── quarantine/
//       └── <id>.<time>.<rand>     chunks moved aside by Quarantine() or by the startup
//                                  scan (damaged header); kept for the operator
//
// A new chunk goes to the directory with the most free space above its reserve; lookups use
// an in-memory index (id -> directory, size, checksum, mtime) built at Open() by reading
// every chunk header, so Stat/List/Count never touch the disk.
//
// Write protocol: temp file in <dir>/tmp (header + data), fsync, rename into
// <dir>/chunks/<xx>/<id>, fsync of <dir>/chunks/<xx>. A crash leaves at worst a temp file
// (deleted at next open) or a complete durable chunk the index did not yet know (picked up
// by the next scan; an orphan for garbage collection at worst).
#pragma once

#include <atomic>
#include <bitset>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "chunkserver/chunk_file.h"
#include "chunkserver/chunk_store.h"
#include "chunkserver/env.h"
#include "chunkserver/sync_group.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/units.h"

namespace wharf {

class LocalChunkStore : public ChunkStore {
 public:
  struct Options {
    // Data directories (created if missing). At least one; no duplicates.
    std::vector<std::string> dirs;
    // Free space each data directory keeps: writes that would eat into it get kNoSpace.
    Reserve reserve;
    // Chunks larger than this are refused with kTooLarge.
    uint64_t max_chunk_bytes = uint64_t{1} << 30;
    // File-system operations; nullptr = DefaultEnv(). Shared so a test env outlives the store.
    std::shared_ptr<Env> env;
    // Labels added to this store's metrics (several chunkservers may share one process).
    Labels metric_labels;
    // How a commit is made durable. kPerFile: fdatasync of the chunk file, then fsync of its
    // directory after the rename. kGroup: for chunks of 1 MiB or more, a syncfs(2) of the
    // data directory's file system before the rename and another after it, each shared by
    // every commit waiting at that moment in this process (group commit: fewer journal
    // commits and cache flushes under concurrent writes; it also flushes other dirty files
    // of that file system); smaller chunks as kPerFile.
    enum class Sync { kPerFile, kGroup };
    Sync sync = Sync::kPerFile;
    // With kGroup, chunks smaller than this still commit as kPerFile (tests set 0).
    uint64_t group_sync_min_bytes = 1u << 20;
    // Chunks of at least this many bytes are written with O_DIRECT (WriteMode::kDirect): no
    // page-cache copy and no fresh page per byte. 0 = never.
    uint64_t direct_io_min_bytes = 1u << 20;
    // Test hook: when set, replaces the real space of each data directory (a fake disk).
    std::function<FsSpace(const std::string& dir)> space_for_test;
  };

  // Opens the store: creates the directory skeleton, locks each data directory, deletes
  // leftover temp files and builds the index by scanning every chunk header. Chunk files
  // with a damaged header are quarantined (counted, logged); unknown files are ignored.
  // kInvalidArgument for bad options; kUnavailable if a directory is locked by another
  // store; kIOError.
  static Result<std::unique_ptr<LocalChunkStore>> Open(Options options);

  ~LocalChunkStore() override;
  LocalChunkStore(const LocalChunkStore&) = delete;
  LocalChunkStore& operator=(const LocalChunkStore&) = delete;

  // ChunkStore.
  Result<std::unique_ptr<ChunkWriter>> BeginWrite(const std::string& id, uint64_t size,
                                                  uint64_t checksum) override;
  Result<ChunkInfo> Stat(const std::string& id) override;
  Result<OpenChunk> Open(const std::string& id) override;
  Result<std::string> ReadRange(const std::string& id, uint64_t offset, uint64_t len) override;
  Status Delete(const std::string& id) override;
  Result<std::vector<ChunkInfo>> List(std::string_view after, size_t limit) override;
  Result<ChunkInfo> Verify(const std::string& id) override;
  Status Quarantine(const std::string& id) override;
  uint64_t Count() override;
  // Cached per range: only the ranges a commit, delete or quarantine touched since the last
  // call are recomputed (each under the lock on its own, so the loop's Stat calls wait for one
  // range at most). Equal, unchanged inventories thus cost 256 array copies, not a walk.
  Result<RangeDigests> Digests() override;
  Result<SpaceInfo> Space() override;
  Status Health() override;
  Status ProbeWrite() override;

  // The path of chunk `id`'s file, or "" if the store does not hold it (tests corrupt it).
  std::string ChunkPathForTest(const std::string& id);

 private:
  friend class LocalChunkWriter;

  struct Entry {
    size_t dir = 0;  // index into dirs_
    uint64_t size = 0;
    uint64_t checksum = 0;
    int64_t mtime_unix = 0;
  };
  struct Counters;

  explicit LocalChunkStore(Options options);

  Status OpenDir(size_t dir);
  Status ScanDir(size_t dir, std::map<std::string, Entry>* index);
  Status ScanFile(size_t dir, const std::string& sub, const std::string& name,
                  std::map<std::string, Entry>* index);
  Result<FsSpace> DirSpace(size_t dir);
  // Picks the directory for a new chunk of `file_bytes` and reserves the bytes (pending_).
  Result<size_t> ReserveSpace(uint64_t file_bytes);
  void ReleaseSpace(size_t dir, uint64_t file_bytes);
  // Publishes a synced temp file as chunk `id` (rename + directory fsync, index update).
  Status Publish(const std::string& id, size_t dir, const std::string& tmp_path,
                 const ChunkHeader& header);
  Status RenameIntoPlace(const std::string& id, size_t dir, uint64_t chunk_bytes,
                         const std::string& tmp_path);
  Status EnsureSubdir(size_t dir, const std::string& id);
  // Options::sync: makes a chunk file's written data durable (before the rename), then the
  // rename (after it). Record the latency; the caller makes a failure sticky.
  Status SyncChunkData(size_t dir, uint64_t chunk_bytes, WritableFile* file);
  Status SyncChunkRename(size_t dir, uint64_t chunk_bytes, const std::string& parent);
  // Whether a chunk of this size commits through the shared syncfs: with Sync::kGroup, chunks
  // of at least Options::group_sync_min_bytes. A small chunk's fdatasync is one cheap journal
  // commit, cheaper than waiting for a syncfs that writes back everything dirty (measured: 300 x 4
  // KiB pushes were slower through the group, 16 MiB ones faster).
  bool GroupSyncs(uint64_t chunk_bytes) const;
  Status GroupSync(size_t dir);  // one shared syncfs of dirs_[dir]'s file system
  // Records an fsync failure: from now on every mutation fails.
  Status SetSticky(const Status& st);
  Status CheckSticky();
  // Records a failed file operation of a write (not an fsync): Health() reports it until a
  // ProbeWrite() succeeds. Returns `st`.
  Status NoteWriteFault(const Status& st);
  // Waits until no commit/delete of `id` is in flight, then marks one in flight.
  void BeginMutation(std::unique_lock<std::mutex>& lock, const std::string& id);
  void EndMutation(const std::string& id);
  Result<Entry> Lookup(const std::string& id);
  Result<OpenChunk> OpenEntry(const std::string& id, const Entry& e);
  Status MoveToQuarantine(size_t dir, const std::string& path, const std::string& id);

  std::string ChunkDir(size_t dir, const std::string& id) const;
  std::string ChunkPath(size_t dir, const std::string& id) const;
  std::string TmpDir(size_t dir) const { return dirs_[dir] + "/tmp"; }

  const Options options_;
  const std::shared_ptr<Env> env_;
  const std::vector<std::string> dirs_;
  std::vector<std::unique_ptr<FileLock>> locks_;  // one per data directory
  Logger log_;
  std::unique_ptr<Counters> counters_;
  std::vector<std::shared_ptr<SyncGroup>> sync_groups_;  // per data directory (Sync::kGroup)

  std::atomic<bool> failed_{false};  // fast path for the sticky error
  std::mutex mu_;
  std::condition_variable mutation_done_;
  Status sticky_;                          // guarded by mu_
  Status write_fault_;                     // guarded by mu_
  std::map<std::string, Entry> index_;     // guarded by mu_; sorted for List
  std::set<std::string> mutating_;         // guarded by mu_; ids with a commit/delete running
  std::vector<uint64_t> pending_;          // guarded by mu_; bytes of writes in progress per dir
  std::vector<std::bitset<256>> subdirs_;  // guarded by mu_; chunks/<xx> known to exist, per dir
  // Digests(): the last digests, and the ranges changed since (all at open). Guarded by mu_.
  RangeDigests digests_;
  std::bitset<kDigestRanges> digests_stale_;
  // Marks the range of `id` for recomputing; mu_ held.
  void IndexChangedLocked(const std::string& id) { digests_stale_.set(RangeOfId(id)); }
};

}  // namespace wharf

// Env: the few file-system operations LocalChunkStore performs (writes, reads, directory
// changes, the data directory's lock), behind an interface so tests can inject faults
// (tests/support/fault_env.h, a test-only library), as leveldb's Env does. Blocking;
// thread-safe.
//
// Every error is a Status: kNotFound when the named file/directory does not exist, kIOError
// for everything else (with strerror text).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace wharf {

// A file being written sequentially. Not thread-safe. Destroying it closes the fd without
// syncing (data may or may not reach the disk).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all `n` bytes (retrying short writes). kIOError.
  virtual Status Append(const void* data, size_t n) = 0;
  // Writes out what Append has staged in memory (a direct-I/O file holds up to one staging
  // buffer), so that a syncfs(2) of the file system covers every appended byte. kIOError.
  virtual Status Flush() = 0;
  // Flush(), then fdatasync(): data and metadata reach stable storage. kIOError.
  virtual Status Sync() = 0;
  // Closes the fd. kIOError. Further calls are no-ops.
  virtual Status Close() = 0;
};

// What fstat(2) says of an open file.
struct FileInfo {
  uint64_t size = 0;
  int64_t mtime_unix = 0;
};

// An exclusive lock on a file (flock), held until the object is destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// Space of the file system holding a directory.
struct FsSpace {
  uint64_t capacity = 0;
  uint64_t free = 0;    // available to unprivileged users (statvfs f_bavail)
  uint64_t device = 0;  // st_dev: directories on one file system share it
};

// How a new file is written. kDirect: O_DIRECT through a reused, aligned staging buffer, so
// the bytes go from it to the device without a copy into the page cache (for large chunk
// files, which are read back rarely and would otherwise push other data out of the cache and
// cost a page-cache copy plus fresh page faults per byte). Falls back to buffered writes where
// the file system refuses O_DIRECT or no staging buffer is free.
enum class WriteMode { kBuffered, kDirect };

class Env {
 public:
  virtual ~Env() = default;
  // Creates `path` for writing; fails (kIOError) if it already exists.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                WriteMode mode) = 0;
  // Opens `path` read-only; the caller owns the returned fd. kNotFound.
  virtual Result<int> OpenReadOnly(const std::string& path) = 0;
  // pread(2) into `buf`: reads `n` bytes at `offset` of `fd`, fewer only when the file ends
  // first. Returns how many were read. kIOError.
  virtual Result<size_t> ReadAt(int fd, uint64_t offset, void* buf, size_t n) = 0;
  // fstat(2) of an open fd. kIOError.
  virtual Result<FileInfo> StatFile(int fd) = 0;
  // Creates `path` if missing and takes an exclusive lock on it without waiting.
  // kUnavailable if another holder (process or store) has it; kIOError.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
  // rename(2): atomically replaces `to`. kNotFound if `from` is missing.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // unlink(2). kNotFound.
  virtual Status Remove(const std::string& path) = 0;
  // fsync of a directory, making renames/creates/unlinks in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // syncfs(2) of the file system holding `dir`: every file's data and metadata written
  // before the call, and every rename, reach stable storage. kIOError (also when writeback
  // of any file of that file system failed since the last call).
  virtual Status SyncFileSystem(const std::string& dir) = 0;
  // mkdir -p. Ok if it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Names in `dir`, without "." and "..", unsorted. kNotFound.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // statvfs + stat of `dir`.
  virtual Result<FsSpace> GetSpace(const std::string& dir) = 0;
};

// The POSIX Env. Process-wide, never destroyed.
std::shared_ptr<Env> DefaultEnv();

}  // namespace wharf

// FaultInjectingEnv (test-only: the wharf binary does not contain it): an Env for tests that
// fails chosen operations (writes, reads, locks...), simulates a crash by
// dropping everything that was not made durable, and corrupts files. Wraps a base Env (the
// POSIX one by default) and forwards to it. Thread-safe.
//
//   auto env = std::make_shared<FaultInjectingEnv>();
//   env->FailNth(FaultInjectingEnv::Op::kSync, 1);   // the next fsync fails with EIO
//   ... a commit fails with kIOError ...
//   env->DropUnsyncedData();                         // "power loss"
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "chunkserver/env.h"

namespace wharf {

class FaultInjectingEnv : public Env {
 public:
  // kRead is ReadAt (pread); kLock is LockFile (open + flock).
  enum class Op {
    kCreate,
    kWrite,
    kSync,
    kRename,
    kRemove,
    kSyncDir,
    kOpen,
    kRead,
    kLock,
    kSyncFs,
    kNumOps
  };

  explicit FaultInjectingEnv(std::shared_ptr<Env> base = DefaultEnv());

  // The `n`th call (1 = the next one) of `op` from now fails with an injected kIOError, and
  // so does every later call of `op` if `sticky`. Replaces any earlier fault for `op`.
  void FailNth(Op op, int n, bool sticky = false);
  // Removes every injected fault.
  void ClearFaults();
  // How many calls of `op` this env has seen (failed or not).
  int CallCount(Op op) const;

  // Simulates a crash: every file written through this env is truncated to the length it
  // had at its last Sync() (or SyncFileSystem()), and every file whose directory entry was
  // created or renamed since the last SyncDir() of its directory (or SyncFileSystem()) is
  // removed. All files count as one file system. Forgets all tracking afterwards.
  Status DropUnsyncedData();

  // Flips all bits of the byte at `offset` of `path` (bypasses fault injection).
  static Status FlipByte(const std::string& path, uint64_t offset);

  // Env.
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        WriteMode mode) override;
  Result<int> OpenReadOnly(const std::string& path) override;
  Result<size_t> ReadAt(int fd, uint64_t offset, void* buf, size_t n) override;
  Result<FileInfo> StatFile(int fd) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status SyncDir(const std::string& dir) override;
  Status SyncFileSystem(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<FsSpace> GetSpace(const std::string& dir) override;

 private:
  friend class FaultWritableFile;
  struct FileState {
    uint64_t len = 0;
    uint64_t synced_len = 0;
  };
  struct Fault {
    int countdown = 0;  // 0 = none; fails when it reaches 1
    bool sticky = false;
    bool firing = false;  // a sticky fault that already fired
  };

  // Counts a call of `op`; returns the injected error if this call must fail.
  Status MaybeFail(Op op);
  void OnAppend(const std::string& path, uint64_t n);
  void OnSync(const std::string& path);

  std::shared_ptr<Env> base_;
  mutable std::mutex mu_;
  Fault faults_[static_cast<int>(Op::kNumOps)];
  int calls_[static_cast<int>(Op::kNumOps)] = {};
  std::map<std::string, FileState> files_;  // written through this env, by path
  std::set<std::string> unsynced_entries_;  // paths whose dir entry is not durable yet
};

}  // namespace wharf

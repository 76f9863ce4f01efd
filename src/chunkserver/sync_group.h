// SyncGroup: group commit of file-system syncs. Callers that need "everything I wrote so far
// is durable" call Sync(); one caller runs the sync function (a syncfs of the data directory's
// file system) for itself and for every caller that arrived before that run began, the rest
// wait for it. So N writers committing at once cost about two syncs, not N fdatasyncs and N
// directory fsyncs, each forcing its own journal commit and cache flush.
//
// Why it is correct: a caller's ticket is taken after its writes returned; a run covers the
// tickets taken before it started, and a sync makes durable everything written before it
// started. So a Sync() returns Ok only after a sync that began after the caller's writes.
//
// A failed sync is sticky: the callers it covered and every later one get its error (the store
// turns read-only on a failed sync anyway; a later success would not prove the earlier data reached
// the disk).
//
// Threading: thread-safe; Sync() blocks (call it on the I/O pool).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "common/status.h"

namespace wharf {

class SyncGroup {
 public:
  SyncGroup() = default;
  SyncGroup(const SyncGroup&) = delete;
  SyncGroup& operator=(const SyncGroup&) = delete;

  // The group of every store of `env` on the file system `device` in this process (the
  // chunkservers of `wharf up` share one disk, so they share its syncs). Kept while used.
  static std::shared_ptr<SyncGroup> For(const void* env, uint64_t device);

  // Returns once a sync that began after this call has succeeded; a caller that finds no
  // sync running runs `sync` (any sync of the group's file system) itself.
  Status Sync(const std::function<Status()>& sync) {
    std::unique_lock lock(mu_);
    const uint64_t ticket = ++requested_;
    while (completed_ < ticket && error_.ok()) {
      if (running_) {
        done_.wait(lock);
        continue;
      }
      running_ = true;
      const uint64_t covers = requested_;
      lock.unlock();
      Status st = sync();
      lock.lock();
      running_ = false;
      runs_++;
      if (st.ok()) {
        completed_ = covers;
      } else {
        error_ = st;
      }
      done_.notify_all();
    }
    return completed_ >= ticket ? Status::Ok() : error_;
  }

  // Syncs run so far, and callers waiting for one (tests).
  uint64_t runs() const {
    std::lock_guard lock(mu_);
    return runs_;
  }
  uint64_t waiting() const {
    std::lock_guard lock(mu_);
    return requested_ - completed_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable done_;
  uint64_t requested_ = 0;  // tickets handed out
  uint64_t completed_ = 0;  // every ticket up to this one is durable
  uint64_t runs_ = 0;
  bool running_ = false;
  Status error_;  // the first failed sync's error, kept
};

}  // namespace wharf

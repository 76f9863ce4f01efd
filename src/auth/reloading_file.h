// A configuration file (htpasswd, access policy) that is re-read when it changes on disk.
//
//   ReloadingFile<Htpasswd> file(path, &Htpasswd::Parse);
//   WHARF_RETURN_IF_ERROR(file.Load());          // at start: a bad file stops the process
//   ...
//   auto r = file.ReloadIfChanged();             // per request or on a timer: one stat()
//   if (!r) log->warn("htpasswd reload failed, keeping the last good one err={}", r.error());
//   std::shared_ptr<const Htpasswd> now = file.Current();
//
// A change is a different (device, inode, size, mtime, ctime): an editor's rename-into-place
// and an in-place rewrite are both seen. A changed file that fails to read or parse leaves the
// last good content in place; that failure is returned once per distinct file identity, so a
// caller calling on every request logs it once, not per request.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf::auth {

// What ReloadingFile compares to see a change.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  timespec ctime{};
  bool operator==(const FileIdentity& o) const;
};
// kNotFound / kIOError from stat().
Result<FileIdentity> StatIdentity(const std::string& path);
// Reads at most max_bytes (kTooLarge beyond) of a regular file, with the identity it had.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

// Thread-safe: Current() and ReloadIfChanged() may be called from any thread; a reload runs
// under the lock (a stat, and on change a read and a parse of a small file).
template <typename T>
class ReloadingFile {
 public:
  using Parser = std::function<Result<T>(std::string_view content)>;
  static constexpr size_t kMaxBytes = 16 << 20;

  ReloadingFile(std::string path, Parser parse) : path_(std::move(path)), parse_(parse) {}

  // The first read: any error (missing file, parse error) is returned and nothing is loaded.
  Status Load() {
    std::lock_guard lock(mutex_);
    WHARF_ASSIGN_OR_RETURN(FileIdentity id, StatIdentity(path_));
    return ReadParse(id);
  }
  // true: the file changed and its new content is now current; false: nothing changed (or the
  // change already failed once). An error: the file changed and cannot be used; the last good
  // content stays current.
  Result<bool> ReloadIfChanged() {
    std::lock_guard lock(mutex_);
    auto id = StatIdentity(path_);
    if (!id) {
      if (stat_failed_) return false;
      stat_failed_ = true;
      return Err(id.error());
    }
    stat_failed_ = false;
    if (*id == loaded_ || (tried_valid_ && *id == tried_)) return false;
    WHARF_RETURN_IF_ERROR(ReadParse(*id));
    return true;
  }
  // The last good content (null before a successful Load()).
  std::shared_ptr<const T> Current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  const std::string& path() const { return path_; }

 private:
  Status ReadParse(const FileIdentity& id) {
    tried_ = id;
    tried_valid_ = true;
    auto content = ReadSmallFile(path_, kMaxBytes);
    if (!content) return content.error();
    auto parsed = parse_(*content);
    if (!parsed) return Status(parsed.error().code(), path_ + ": " + parsed.error().message());
    current_ = std::make_shared<const T>(std::move(*parsed));
    loaded_ = id;
    return Status::Ok();
  }

  const std::string path_;
  const Parser parse_;
  mutable std::mutex mutex_;
  std::shared_ptr<const T> current_;
  FileIdentity loaded_;
  FileIdentity tried_;
  bool tried_valid_ = false;
  bool stat_failed_ = false;
};

}  // namespace wharf::auth

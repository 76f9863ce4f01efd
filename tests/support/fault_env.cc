#include "support/fault_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace wharf {
namespace {

std::string Normalize(const std::string& path) {
  std::string s = std::filesystem::path(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s.empty() ? "." : s;
}

std::string DirOf(const std::string& path) {
  return Normalize(std::filesystem::path(path).parent_path().string());
}

std::string_view OpName(FaultInjectingEnv::Op op) {
  switch (op) {
    case FaultInjectingEnv::Op::kCreate:
      return "create";
    case FaultInjectingEnv::Op::kWrite:
      return "write";
    case FaultInjectingEnv::Op::kSync:
      return "fsync";
    case FaultInjectingEnv::Op::kRename:
      return "rename";
    case FaultInjectingEnv::Op::kRemove:
      return "unlink";
    case FaultInjectingEnv::Op::kSyncDir:
      return "fsync dir";
    case FaultInjectingEnv::Op::kOpen:
      return "open";
    case FaultInjectingEnv::Op::kRead:
      return "pread";
    case FaultInjectingEnv::Op::kLock:
      return "flock";
    case FaultInjectingEnv::Op::kSyncFs:
      return "syncfs";
    case FaultInjectingEnv::Op::kNumOps:
      break;
  }
  return "?";
}

}  // namespace

// Forwards to the base file and reports appends/syncs to the env for crash simulation.
class FaultWritableFile : public WritableFile {
 public:
  FaultWritableFile(FaultInjectingEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(const void* data, size_t n) override {
    WHARF_RETURN_IF_ERROR(env_->MaybeFail(FaultInjectingEnv::Op::kWrite));
    WHARF_RETURN_IF_ERROR(base_->Append(data, n));
    env_->OnAppend(path_, n);
    return Status::Ok();
  }

  Status Flush() override {
    WHARF_RETURN_IF_ERROR(env_->MaybeFail(FaultInjectingEnv::Op::kWrite));
    return base_->Flush();
  }

  Status Sync() override {
    WHARF_RETURN_IF_ERROR(env_->MaybeFail(FaultInjectingEnv::Op::kSync));
    WHARF_RETURN_IF_ERROR(base_->Sync());
    env_->OnSync(path_);
    return Status::Ok();
  }

  Status Close() override { return base_->Close(); }

 private:
  FaultInjectingEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

FaultInjectingEnv::FaultInjectingEnv(std::shared_ptr<Env> base) : base_(std::move(base)) {}

void FaultInjectingEnv::FailNth(Op op, int n, bool sticky) {
  std::lock_guard lock(mu_);
  faults_[static_cast<int>(op)] = Fault{n, sticky, false};
}

void FaultInjectingEnv::ClearFaults() {
  std::lock_guard lock(mu_);
  for (auto& f : faults_) f = Fault{};
}

int FaultInjectingEnv::CallCount(Op op) const {
  std::lock_guard lock(mu_);
  return calls_[static_cast<int>(op)];
}

Status FaultInjectingEnv::MaybeFail(Op op) {
  std::lock_guard lock(mu_);
  ++calls_[static_cast<int>(op)];
  Fault& f = faults_[static_cast<int>(op)];
  bool fail = f.firing;
  if (!fail && f.countdown > 0) {
    if (--f.countdown == 0) {
      fail = true;
      f.firing = f.sticky;
    }
  }
  if (!fail) return Status::Ok();
  return IOError(fmt::format("injected fault: {}: Input/output error", OpName(op)));
}

void FaultInjectingEnv::OnAppend(const std::string& path, uint64_t n) {
  std::lock_guard lock(mu_);
  files_[path].len += n;
}

void FaultInjectingEnv::OnSync(const std::string& path) {
  std::lock_guard lock(mu_);
  auto& f = files_[path];
  f.synced_len = f.len;
}

Status FaultInjectingEnv::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  Status first;
  for (const auto& [path, st] : files_) {
    if (unsynced_entries_.count(path) > 0) continue;
    if (::truncate(path.c_str(), static_cast<off_t>(st.synced_len)) != 0 && errno != ENOENT &&
        first.ok()) {
      first = ErrnoError("truncate " + path, errno);
    }
  }
  for (const auto& path : unsynced_entries_) {
    Status st = base_->Remove(path);
    if (!st.ok() && st.code() != Code::kNotFound && first.ok()) first = st;
  }
  files_.clear();
  unsynced_entries_.clear();
  return first;
}

Status FaultInjectingEnv::FlipByte(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  unsigned char b;
  Status st;
  if (::pread(fd, &b, 1, static_cast<off_t>(offset)) != 1) {
    st = IOError(fmt::format("read byte {} of {}", offset, path));
  } else {
    b = static_cast<unsigned char>(~b);
    if (::pwrite(fd, &b, 1, static_cast<off_t>(offset)) != 1) {
      st = IOError(fmt::format("write byte {} of {}", offset, path));
    }
  }
  ::close(fd);
  return st;
}

Result<std::unique_ptr<WritableFile>> FaultInjectingEnv::NewWritableFile(const std::string& path,
                                                                         WriteMode mode) {
  if (Status st = MaybeFail(Op::kCreate); !st.ok()) return Err(st);
  WHARF_ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(path, mode));
  {
    std::lock_guard lock(mu_);
    files_[path] = FileState{};
    unsynced_entries_.insert(path);
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultWritableFile>(this, path, std::move(file)));
}

Result<int> FaultInjectingEnv::OpenReadOnly(const std::string& path) {
  if (Status st = MaybeFail(Op::kOpen); !st.ok()) return Err(st);
  return base_->OpenReadOnly(path);
}

Result<size_t> FaultInjectingEnv::ReadAt(int fd, uint64_t offset, void* buf, size_t n) {
  if (Status st = MaybeFail(Op::kRead); !st.ok()) return Err(st);
  return base_->ReadAt(fd, offset, buf, n);
}

Result<FileInfo> FaultInjectingEnv::StatFile(int fd) { return base_->StatFile(fd); }

Result<std::unique_ptr<FileLock>> FaultInjectingEnv::LockFile(const std::string& path) {
  if (Status st = MaybeFail(Op::kLock); !st.ok()) return Err(st);
  return base_->LockFile(path);
}

Status FaultInjectingEnv::Rename(const std::string& from, const std::string& to) {
  WHARF_RETURN_IF_ERROR(MaybeFail(Op::kRename));
  WHARF_RETURN_IF_ERROR(base_->Rename(from, to));
  std::lock_guard lock(mu_);
  if (auto it = files_.find(from); it != files_.end()) {
    files_[to] = it->second;
    files_.erase(it);
  }
  // The new name is not durable until its directory is synced. (A real crash could also
  // resurrect `from`; the store deletes leftover temp files at open, so dropping is enough.)
  unsynced_entries_.erase(from);
  unsynced_entries_.insert(to);
  return Status::Ok();
}

Status FaultInjectingEnv::Remove(const std::string& path) {
  WHARF_RETURN_IF_ERROR(MaybeFail(Op::kRemove));
  WHARF_RETURN_IF_ERROR(base_->Remove(path));
  std::lock_guard lock(mu_);
  files_.erase(path);
  unsynced_entries_.erase(path);
  return Status::Ok();
}

Status FaultInjectingEnv::SyncDir(const std::string& dir) {
  WHARF_RETURN_IF_ERROR(MaybeFail(Op::kSyncDir));
  WHARF_RETURN_IF_ERROR(base_->SyncDir(dir));
  std::string norm = Normalize(dir);
  std::lock_guard lock(mu_);
  for (auto it = unsynced_entries_.begin(); it != unsynced_entries_.end();) {
    it = DirOf(*it) == norm ? unsynced_entries_.erase(it) : std::next(it);
  }
  return Status::Ok();
}

Status FaultInjectingEnv::SyncFileSystem(const std::string& dir) {
  WHARF_RETURN_IF_ERROR(MaybeFail(Op::kSyncFs));
  // Everything written before the call becomes durable: take the lengths first, so bytes
  // appended while the base sync runs stay unsynced, as they might on a real disk.
  std::map<std::string, uint64_t> lens;
  std::set<std::string> entries;
  {
    std::lock_guard lock(mu_);
    for (const auto& [path, st] : files_) lens[path] = st.len;
    entries = unsynced_entries_;
  }
  WHARF_RETURN_IF_ERROR(base_->SyncFileSystem(dir));
  std::lock_guard lock(mu_);
  for (const auto& [path, len] : lens) {
    if (auto it = files_.find(path); it != files_.end()) {
      it->second.synced_len = std::max(it->second.synced_len, len);
    }
  }
  for (const auto& e : entries) unsynced_entries_.erase(e);
  return Status::Ok();
}

Status FaultInjectingEnv::CreateDirs(const std::string& dir) { return base_->CreateDirs(dir); }

Result<std::vector<std::string>> FaultInjectingEnv::ListDir(const std::string& dir) {
  return base_->ListDir(dir);
}

Result<FsSpace> FaultInjectingEnv::GetSpace(const std::string& dir) { return base_->GetSpace(dir); }

}  // namespace wharf

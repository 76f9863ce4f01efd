#include "chunkserver/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/buffer_pool.h"
#include "common/fs.h"

namespace wharf {
namespace {

Status PathError(const std::string& what, const std::string& path, int err) {
  if (err == ENOENT) return NotFound(what + " " + path);
  return ErrnoError(what + " " + path, err);
}

// Writes all of [p, p+n) at `offset` (pwrite retried on short writes and EINTR). Returns 0 or
// the errno of the failed write.
int WriteAllAt(int fd, const char* p, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return 0;
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("write " + path_, errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }

  Status Flush() override { return Status::Ok(); }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoError("fsync " + path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoError("close " + path_, errno);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

// Staging buffers of direct-I/O files: page-aligned (mapped by the pool), reused across files.
constexpr size_t kStageBytes = 1u << 20;

// An O_DIRECT file: Append copies into a 1 MiB staging buffer (cache-hot, reused, so no fresh
// page faults) and writes each full buffer straight to the device at an aligned offset. The
// last partial buffer is written through the page cache on Flush (O_DIRECT needs aligned
// lengths), after O_DIRECT is switched off for the fd. A write the file system refuses with
// EINVAL (an O_DIRECT constraint) switches the file to buffered writes and is retried.
class DirectWritableFile : public WritableFile {
 public:
  DirectWritableFile(std::string path, int fd, PooledBuffer stage)
      : path_(std::move(path)), fd_(fd), stage_(std::move(stage)) {}
  ~DirectWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      size_t k = std::min(n, kStageBytes - staged_);
      std::memcpy(stage_.data() + staged_, p, k);
      staged_ += k;
      p += k;
      n -= k;
      if (staged_ == kStageBytes) WHARF_RETURN_IF_ERROR(WriteStaged());
    }
    return Status::Ok();
  }

  Status Flush() override {
    if (staged_ == 0) return Status::Ok();
    WHARF_RETURN_IF_ERROR(SetDirect(false));  // a partial block cannot go direct
    return WriteStaged();
  }

  Status Sync() override {
    WHARF_RETURN_IF_ERROR(Flush());
    if (::fdatasync(fd_) != 0) return ErrnoError("fsync " + path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    stage_.Release();
    if (fd_ < 0) return Status::Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoError("close " + path_, errno);
    return Status::Ok();
  }

 private:
  Status WriteStaged() {
    int err = WriteAllAt(fd_, stage_.data(), staged_, offset_);
    if (err == EINVAL && direct_) {
      WHARF_RETURN_IF_ERROR(SetDirect(false));
      err = WriteAllAt(fd_, stage_.data(), staged_, offset_);
    }
    if (err != 0) return ErrnoError("write " + path_, err);
    offset_ += staged_;
    staged_ = 0;
    return Status::Ok();
  }

  Status SetDirect(bool on) {
    if (direct_ == on) return Status::Ok();
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) != 0) {
      return ErrnoError("fcntl O_DIRECT " + path_, errno);
    }
    direct_ = on;
    return Status::Ok();
  }

  std::string path_;
  int fd_;
  PooledBuffer stage_;
  size_t staged_ = 0;    // bytes in stage_ not yet written
  uint64_t offset_ = 0;  // file offset of stage_[0]
  bool direct_ = true;
};

class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // releases the flock

 private:
  int fd_;
};

class PosixEnv : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        WriteMode mode) override {
    constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
    if (mode == WriteMode::kDirect) {
      PooledBuffer stage = SharedBufferPool(kStageBytes).TryAcquire();
      if (stage) {
        int fd = ::open(path.c_str(), kFlags | O_DIRECT, 0644);
        if (fd >= 0) return std::make_unique<DirectWritableFile>(path, fd, std::move(stage));
        if (errno != EINVAL) return Err(PathError("create", path, errno));
        // EINVAL: this file system has no O_DIRECT (tmpfs); write through the page cache.
      }
    }
    int fd = ::open(path.c_str(), kFlags, 0644);
    if (fd < 0) return Err(PathError("create", path, errno));
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  Result<int> OpenReadOnly(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Err(PathError("open", path, errno));
    return fd;
  }

  Result<size_t> ReadAt(int fd, uint64_t offset, void* buf, size_t n) override {
    char* p = static_cast<char*>(buf);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Err(ErrnoError("pread", errno));
      }
      if (r == 0) break;  // end of file
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Result<FileInfo> StatFile(int fd) override {
    struct stat st;
    if (::fstat(fd, &st) != 0) return Err(ErrnoError("fstat", errno));
    return FileInfo{static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtime)};
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Err(PathError("open", path, errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Err(Unavailable("locked by another holder: " + path));
      return Err(ErrnoError("flock " + path, err));
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(fd));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return PathError("rename", from, errno);
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PathError("unlink", path, errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override { return FsyncDir(dir); }

  Status SyncFileSystem(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PathError("open", dir, errno);
    int rc = ::syncfs(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoError("syncfs " + dir, err);
    return Status::Ok();
  }

  Status CreateDirs(const std::string& dir) override { return MakeDirs(dir); }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Err(PathError("opendir", dir, errno));
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return Err(ErrnoError("readdir " + dir, err));
    return names;
  }

  Result<FsSpace> GetSpace(const std::string& dir) override {
    struct statvfs vfs;
    if (::statvfs(dir.c_str(), &vfs) != 0) return Err(PathError("statvfs", dir, errno));
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return Err(PathError("stat", dir, errno));
    FsSpace s;
    s.capacity = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    s.free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    s.device = static_cast<uint64_t>(st.st_dev);
    return s;
  }
};

}  // namespace

std::shared_ptr<Env> DefaultEnv() {
  static auto* env = new std::shared_ptr<Env>(std::make_shared<PosixEnv>());
  return *env;
}

}  // namespace wharf

#include "chunkserver/chunk_store.h"

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace wharf {

OpenChunk::~OpenChunk() {
  if (fd_ >= 0) ::close(fd_);
}

OpenChunk::OpenChunk(OpenChunk&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_offset_(other.data_offset_),
      size_(other.size_),
      checksum_(other.checksum_) {}

OpenChunk& OpenChunk::operator=(OpenChunk&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    data_offset_ = other.data_offset_;
    size_ = other.size_;
    checksum_ = other.checksum_;
  }
  return *this;
}

Result<std::string> OpenChunk::Read(uint64_t offset, uint64_t len) const {
  if (offset > size_ || len > size_ - offset) {
    return Err(
        RangeInvalid(fmt::format("range [{}, +{}) outside chunk of {} bytes", offset, len, size_)));
  }
  std::string out(len, '\0');
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_, out.data() + done, len - done,
                        static_cast<off_t>(data_offset_ + offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(ErrnoError("pread chunk", errno));
    }
    if (n == 0) return Err(IOError("chunk file shorter than its header says"));
    done += static_cast<uint64_t>(n);
  }
  return out;
}

}  // namespace wharf

#include "chunkserver/chunk_store.h"

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace wharf {

Result<RangeDigests> ChunkStore::Digests() {
  constexpr size_t kPage = 10000;
  RangeDigester digester;
  std::string after;
  for (;;) {
    auto page = List(after, kPage);
    if (!page) return Err(page.error());
    for (const ChunkInfo& c : *page) digester.Add(c.id);
    if (page->size() < kPage) break;
    after = page->back().id;
  }
  return digester.Finish();
}

OpenChunk::~OpenChunk() {
  if (fd_ >= 0) ::close(fd_);
}

OpenChunk::OpenChunk(OpenChunk&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_offset_(other.data_offset_),
      size_(other.size_),
      checksum_(other.checksum_),
      env_(other.env_) {}

OpenChunk& OpenChunk::operator=(OpenChunk&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    data_offset_ = other.data_offset_;
    size_ = other.size_;
    checksum_ = other.checksum_;
    env_ = other.env_;
  }
  return *this;
}

Result<std::string> OpenChunk::Read(uint64_t offset, uint64_t len) const {
  if (offset > size_ || len > size_ - offset) {
    return Err(
        RangeInvalid(fmt::format("range [{}, +{}) outside chunk of {} bytes", offset, len, size_)));
  }
  std::string out(len, '\0');
  WHARF_RETURN_IF_ERROR(ReadInto(offset, out.data(), len));
  return out;
}

Status OpenChunk::ReadInto(uint64_t offset, void* buf, size_t len) const {
  if (offset > size_ || len > size_ - offset) {
    return RangeInvalid(
        fmt::format("range [{}, +{}) outside chunk of {} bytes", offset, len, size_));
  }
  auto n = env_->ReadAt(fd_, data_offset_ + offset, buf, len);
  if (!n) return IOError("read chunk: " + n.error().message());
  if (*n != len) return IOError("chunk file shorter than its header says");
  return Status::Ok();
}

}  // namespace wharf

// ByteSource: a stream of bytes read in order, such as a request body. The blob code reads
// uploads through it and so never sees HTTP; the gateway adapts a request to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/asio.h"
#include "common/status.h"

namespace wharf {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes into `buf`; 0 at the end of the stream. Errors end the stream:
  // kCancelled (the peer went away), kInvalidArgument (malformed framing), or what the
  // source's transport reports.
  virtual awaitable<Result<size_t>> Read(void* buf, size_t n) = 0;
  // How many bytes the stream announced, when it did (a Content-Length); only a hint for
  // buffer sizes, never trusted as the length.
  virtual std::optional<uint64_t> size_hint() const { return std::nullopt; }
};

}  // namespace wharf

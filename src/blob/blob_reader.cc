#include "blob/blob_reader.h"

namespace wharf {

awaitable<Status> ChunkReader::Read(uint64_t offset, uint64_t len, ByteSink sink) {
  co_return co_await ReadChunks(ctx_, chunks_, offset, len, sink);
}

}  // namespace wharf

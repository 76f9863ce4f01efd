// Small helpers shared by the sqlite_*.cc files of SqliteMetaStore. Internal.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/status.h"
#include "meta/meta_store.h"

// WHARF_RETURN_IF_ERROR for functions returning Result<T> (works for Status too).
#define WHARF_META_RETURN_IF_ERROR(expr)                                      \
  do {                                                                        \
    ::wharf::Status wharf_meta_st_ = (expr);                                  \
    if (!wharf_meta_st_.ok()) return ::wharf::Err(std::move(wharf_meta_st_)); \
  } while (0)

namespace wharf::sqlite {

// A digest read back from the database; unparsable text means the file is damaged.
inline Result<Digest> StoredDigest(const std::string& text) {
  Result<Digest> d = Digest::Parse(text);
  if (!d) return Err(Corruption(fmt::format("stored digest unparsable: {}", d.error())));
  return d;
}

// kInvalidArgument unless every chunk has an id and the sizes sum to `size`.
inline Status CheckChunks(const std::vector<ChunkRef>& chunks, uint64_t size) {
  uint64_t sum = 0;
  for (const ChunkRef& c : chunks) {
    if (c.id.empty()) return InvalidArgument("chunk with an empty id");
    sum += c.size;
  }
  if (sum != size) {
    return InvalidArgument(fmt::format("chunk sizes sum to {}, record says {}", sum, size));
  }
  return Status::Ok();
}

// SQLite's LIMIT takes a signed 64-bit value.
inline int64_t SqlLimit(size_t n) {
  return n > static_cast<size_t>(INT64_MAX - 1) ? INT64_MAX - 1 : static_cast<int64_t>(n);
}

}  // namespace wharf::sqlite

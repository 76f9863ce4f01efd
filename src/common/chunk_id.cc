#include "common/chunk_id.h"

#include "common/fs.h"

namespace wharf {

bool ValidChunkId(std::string_view id) {
  if (id.size() != kChunkIdLength) return false;
  for (char c : id) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (!hex) return false;
  }
  return true;
}

std::string NewChunkId() { return RandomHex(kChunkIdLength / 2); }

}  // namespace wharf

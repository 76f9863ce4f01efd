// Chunk ids: the names chunkservers store chunks under.
//
// A chunk id is exactly 32 lowercase hex characters (128 random bits), chosen by the gateway.
// Ids become file names on disk, so every id that arrives from the network goes through
// ValidChunkId() before it touches a path.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wharf {

inline constexpr size_t kChunkIdLength = 32;

// True iff `id` is exactly 32 characters of [0-9a-f]. Rejects everything else: empty,
// uppercase, separators, NUL bytes, non-ASCII.
bool ValidChunkId(std::string_view id);

// A fresh random chunk id from the OS random source. Thread-safe.
std::string NewChunkId();

}  // namespace wharf

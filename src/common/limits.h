// Size limits shared by several components (one definition, so that headers of different
// components that each need a limit can be included together).
#pragma once

#include <cstddef>

namespace wharf {

// Manifests larger than this are refused by the registry and by every MetaStore
// (distribution uses the same 4 MiB limit).
inline constexpr size_t kMaxManifestBytes = 4 << 20;

// An upload session keeps at most this many bytes past its last chunk in the metadata store
// (UploadSession::tail: small appends coalesced into one chunk).
inline constexpr size_t kMaxUploadTailBytes = 1 << 20;

}  // namespace wharf

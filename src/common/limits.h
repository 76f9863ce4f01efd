// Size limits shared by several components (one definition, so that headers of different
// components that each need a limit can be included together).
#pragma once

#include <cstddef>

namespace wharf {

// Manifests larger than this are refused by the registry and by every MetaStore
// (distribution uses the same 4 MiB limit).
inline constexpr size_t kMaxManifestBytes = 4 << 20;

}  // namespace wharf

#include "common/version.h"

#ifndef WHARF_VERSION
#error "WHARF_VERSION is set by src/common/CMakeLists.txt"
#endif

namespace wharf {

std::string_view WharfVersion() { return WHARF_VERSION; }

}  // namespace wharf

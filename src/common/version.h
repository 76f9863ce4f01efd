// The version of this build of wharf (the CMake project version): `wharf --version`, the
// `X-Wharf-Version` header of the daemons' /v1/status, and the metrics' build info.
#pragma once

#include <string_view>

namespace wharf {

std::string_view WharfVersion();

}  // namespace wharf

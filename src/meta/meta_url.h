// The metadata store's url as it may be shown: in logs, `wharf status`, error lines.
#pragma once

#include <string>
#include <string_view>

namespace wharf {

// `url` with any password replaced by "***": the user-info password of a postgres:// url
// (postgres://user:secret@host/db) and `password=` query parameters. Other urls unchanged.
std::string RedactMetaUrl(std::string_view url);

}  // namespace wharf

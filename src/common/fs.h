// Small durable-file helpers over POSIX. Blocking: call them off the event loop.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf {

// Writes `data` to `path` durably: temp file in the same directory, write, fsync, rename,
// fsync of the directory. Readers see the old or the new content, never a mix.
Status WriteFileAtomic(const std::string& path, std::string_view data);
Result<std::string> ReadFile(const std::string& path);
Status FsyncDir(const std::string& dir);
// mkdir -p
Status MakeDirs(const std::string& path);
// Lowercase hex of n random bytes from the OS.
std::string RandomHex(size_t n_bytes);

}  // namespace wharf

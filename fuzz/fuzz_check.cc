#include "fuzz_check.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace wharf::fuzz {

const std::string& ScratchDir() {
  // Never destroyed: the atexit handler below runs after static destructors registered later.
  static const std::string* dir = [] {
    auto* path =
        new std::string((std::filesystem::temp_directory_path() / "wharf-fuzz-XXXXXX").string());
    FUZZ_CHECK(mkdtemp(path->data()) != nullptr);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return path;
  }();
  return *dir;
}

std::string WriteScratchFile(const std::string& name, std::string_view bytes) {
  std::string path = ScratchDir() + "/" + name;
  // A new file each time: ext4 flushes a file truncated and rewritten in place on close
  // (auto_da_alloc), which made file-reading targets wait on the disk for every input.
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  FUZZ_CHECK(out.good());
  return path;
}

}  // namespace wharf::fuzz

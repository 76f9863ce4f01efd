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
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  FUZZ_CHECK(out.good());
  return path;
}

}  // namespace wharf::fuzz

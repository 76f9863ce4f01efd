// The replay driver linked into every fuzz target in a normal (non-libFuzzer) build, so that
// ctest runs each committed corpus as a regression test.
//
//   <target>_fuzz DIR_OR_FILE...
//
// Feeds the empty input, then every regular file under each argument (directories are walked
// recursively, in sorted order so a failure is reproducible) to LLVMFuzzerTestOneInput, each
// in a heap buffer of exactly its size (so an ASan build catches reads past the end). A crash,
// an abort from a broken invariant or a sanitizer report fails the test; so does a corpus with
// no files, which would otherwise pass without testing anything.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

namespace fs = std::filesystem;

// Every regular file at or under `root`, sorted.
std::vector<fs::path> FilesUnder(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    out.push_back(root);
    return out;
  }
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) out.push_back(it->path());
  }
  if (ec) std::fprintf(stderr, "replay: cannot walk %s: %s\n", root.c_str(), ec.message().c_str());
  std::sort(out.begin(), out.end());
  return out;
}

void Run(const std::vector<uint8_t>& bytes) {
  // A copy of exactly the input's size: an empty vector's data() may be null, and a read one
  // past the end of a larger buffer would go unnoticed.
  std::unique_ptr<uint8_t[]> buf(new uint8_t[bytes.size() + (bytes.empty() ? 1 : 0)]);
  std::copy(bytes.begin(), bytes.end(), buf.get());
  LLVMFuzzerTestOneInput(buf.get(), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  Run({});
  size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    for (const fs::path& path : FilesUnder(argv[i])) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
        return 1;
      }
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
      std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
      Run(bytes);
      ++files;
    }
  }
  if (files == 0) {
    std::fprintf(stderr, "replay: no input files found\n");
    return 1;
  }
  std::fprintf(stderr, "replay: %zu inputs ok\n", files);
  return 0;
}

// Shared helpers of the fuzz targets (fuzz/<target>_fuzz.cc).
//
// A target checks invariants of what a parser returns, not only that it does not crash.
// FUZZ_CHECK aborts on a broken one, which libFuzzer reports as a crash (saving the input to
// build-fuzz/crashes/) and the ctest replay as a failed test.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace wharf::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits "first line\nrest" at the first '\n'; without one, everything is `rest`.
inline void SplitFirstLine(std::string_view in, std::string_view* first, std::string_view* rest) {
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) {
    *first = {};
    *rest = in;
  } else {
    *first = in.substr(0, nl);
    *rest = in.substr(nl + 1);
  }
}

// A private directory for targets whose parser reads a file, removed at exit. Created once per
// process; each input overwrites the same file, so runs stay independent.
const std::string& ScratchDir();

// Writes `bytes` to ScratchDir()/name (replacing it) and returns its path; aborts on failure.
std::string WriteScratchFile(const std::string& name, std::string_view bytes);

}  // namespace wharf::fuzz

#include "cli/main.h"

#include <iostream>
#include <string>

namespace wharf::cli {
int Main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: wharf <master|chunkserver|gateway|up|status|put|get|rm> [flags]\n";
    return 2;
  }
  std::cerr << "wharf: unknown command '" << argv[1] << "'\n";
  return 2;
}
}  // namespace wharf::cli

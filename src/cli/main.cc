#include "cli/main.h"

#include <malloc.h>

#include <iostream>
#include <map>
#include <string>

#include "cli/commands.h"
#include "common/version.h"

namespace wharf::cli {
namespace {

constexpr const char* kUsage =
    R"(usage: wharf <command> [flags]    (wharf <command> --help for its flags)

daemons:
  master       the topology tracker: heartbeats in, cluster map and placement out
  chunkserver  a storage member of one group
  gateway      the registry and file API (stateless; any number)
  up           a whole cluster in one process (master, two groups of two chunkservers, gateway)

tools:
  version      print the version (also: wharf --version)
  status       print the cluster like fdfs_monitor
  member rm    decommission a member (refused while it is heard from, unless --force)
  put          store a file through a gateway; prints its id
  get          fetch a stored file by id (stdout, or -o FILE)
  rm           delete a stored file by id
  gc           one garbage collection pass (--dry-run: print what it would free)
)";

}  // namespace

int Main(int argc, char** argv) {
  // Chunk buffers (16 MiB) come and go on several threads. A fixed mmap threshold makes glibc
  // hand them straight back to the kernel on free (its dynamic threshold would otherwise grow
  // past 16 MiB and keep them in per-thread arenas), so resident memory follows what is live.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_ARENA_MAX, 4);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "version") {
    std::cout << "wharf " << WharfVersion() << "\n";
    return 0;
  }
  Args args(argv + 2, argv + argc);
  static const std::map<std::string, int (*)(Args)> kCommands = {
      {"master", RunMaster},
      {"chunkserver", RunChunkserver},
      {"status", RunStatus},
      {"up", RunUp},
      {"gateway", RunGateway},
      {"put", RunPut},
      {"get", RunGet},
      {"rm", RunRm},
      {"member", RunMember},
      {"gc", RunGc},
      // Hidden: writes docs/configuration.md from the flag tables.
      {"config-reference", RunConfigReference},
  };
  auto it = kCommands.find(cmd);
  if (it == kCommands.end()) {
    std::cerr << "wharf: unknown command '" << cmd << "' (see wharf --help)\n";
    return 2;
  }
  return it->second(std::move(args));
}

}  // namespace wharf::cli

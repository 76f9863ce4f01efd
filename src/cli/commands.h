// The wharf subcommands. Each takes the arguments after its name and returns an exit code.
#pragma once

#include <string>
#include <vector>

namespace wharf::cli {

using Args = std::vector<std::string>;

int RunMaster(Args args);
int RunChunkserver(Args args);
int RunStatus(Args args);
int RunUp(Args args);


}  // namespace wharf::cli

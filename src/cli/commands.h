// The wharf subcommands. Each takes the arguments after its name and returns an exit code.
#pragma once

#include <string>
#include <vector>

namespace wharf::cli {

using Args = std::vector<std::string>;

int RunMaster(Args args);
int RunChunkserver(Args args);
int RunStatus(Args args);
// `wharf member rm ID`: decommission a member on every master (cmd_status.cc).
int RunMember(Args args);
int RunUp(Args args);
int RunGateway(Args args);
// The file API of a gateway (cmd_files.cc).
int RunPut(Args args);
int RunGet(Args args);
int RunRm(Args args);
// `wharf gc`: one garbage collection pass (cmd_gc.cc).
int RunGc(Args args);
// `wharf config-reference` (hidden): prints docs/configuration.md (config_reference.cc).
int RunConfigReference(Args args);
// The markdown it prints, from the daemons' flag tables (daemon_flags.h).
std::string ConfigReferenceMarkdown();

}  // namespace wharf::cli

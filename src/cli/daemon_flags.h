// The flag tables of the daemons: each role's CLI::App is built by one Add*Flags function,
// used both by the role's Run function (commands.h) and by `wharf config-reference`, which
// walks the same apps to write docs/configuration.md. A flag added here is documented there.
#pragma once

#include <string>
#include <vector>

#include "chunkserver/chunkserver.h"
#include "cli/common_flags.h"
#include "cli/gateway_flags.h"
#include "cli/local_cluster.h"
#include "master/master_server.h"

namespace wharf::cli {

struct MasterFlags {
  CommonFlags common;
  std::string chunk_size = "16MiB";
  std::string policy = "most_free";
  std::vector<std::string> peers;
  std::string cluster_key;
  MasterOptions o;
};
void AddMasterFlags(CLI::App& app, MasterFlags* f);
// Parses the text flags into f->o. kInvalidArgument naming the flag. Loads no file.
Status FinishMasterFlags(MasterFlags* f);

struct ChunkserverFlags {
  CommonFlags common;
  std::string reserve = "10%";
  std::string heartbeat = "2";
  std::string scrub_interval = "3600";
  std::string scrub_rate = "64MiB";
  std::string max_chunk = "1GiB";
  std::string sync = "group";
  std::string direct_io = "on";
  std::string repair_interval = "30";
  std::string repair_grace = "60";
  std::string tombstone_ttl = "24h";
  std::string repair_rate = "64MiB";
  std::vector<std::string> masters;
  std::string cluster_key;
  ChunkserverOptions o;
};
void AddChunkserverFlags(CLI::App& app, ChunkserverFlags* f);
Status FinishChunkserverFlags(ChunkserverFlags* f);

struct GatewayCommandFlags {
  CommonFlags common;
  GatewayFlags gateway;
  std::string cluster_key;
  GatewayOptions o;
};
void AddGatewayCommandFlags(CLI::App& app, GatewayCommandFlags* f);

struct UpFlags {
  CommonFlags common;
  GatewayFlags gateway;  // every gateway flag (gateway_flags.h) but --master
  std::string reserve = "1GiB";
  std::string repair_interval = "30";
  std::string local_reads = "on";
  std::string sync = "group";
  std::string direct_io = "on";
  LocalClusterOptions o;
};
void AddUpFlags(CLI::App& app, UpFlags* f);
// The gateway flags into f->o.gateway, --reserve and --chunk-size into f->o.
Status FinishUpFlags(UpFlags* f);

}  // namespace wharf::cli

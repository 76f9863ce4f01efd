// LocalCluster: a whole small cluster in one process — a master, two groups of two
// chunkservers and a gateway, each on its own event loop thread. `wharf up` runs one; C++
// integration tests start one on free ports in a temp dir.
//
//   <data_dir>/
//     master/          the master's persisted member list (members.json)
//     g1-a/ g1-b/      chunkservers of group g1 (one data directory each)
//     g2-a/ g2-b/      chunkservers of group g2
//     meta.db          the gateway's metadata store (SQLite), unless meta_url names another
//     cluster.key      the cluster's shared secret (mode 0600), made at the first start
//
//   LocalClusterOptions o;
//   o.data_dir = tmp; o.base_port = 0; o.gateway.listen = "127.0.0.1:0";
//   LocalCluster cluster(o);
//   if (Status st = cluster.Start(); !st.ok()) ...   // nothing started, nothing created
//   ... cluster.gateway_address() ...
//   cluster.Stop();
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chunkserver/local_chunk_store.h"
#include "common/asio.h"
#include "common/status.h"
#include "common/units.h"
#include "gateway/gateway.h"

namespace wharf {

class MasterServer;
class Chunkserver;
class ClusterKey;

struct LocalClusterOptions {
  std::string data_dir = "./wharf-data";
  // Address the master and the chunkservers bind (an IP address or "localhost").
  std::string host = "127.0.0.1";
  // The master's port; the chunkservers take the next four. 0 = any free ports.
  int base_port = 7700;
  // Free space each chunkserver keeps.
  Reserve reserve{.percent = false, .value = 0, .bytes = 1ull << 30};
  // How each chunkserver makes a write durable (LocalChunkStore::Options::sync).
  LocalChunkStore::Options::Sync sync = LocalChunkStore::Options::Sync::kGroup;
  // Each chunkserver writes large chunks with O_DIRECT (ChunkserverOptions::direct_io).
  bool direct_io = true;
  // The master's and the gateway's (gateway.chunk_size is overridden with it).
  uint64_t chunk_size = 16u << 20;
  std::chrono::milliseconds heartbeat{1000};
  // How often each chunkserver compares its inventory with its peer's (anti-entropy).
  std::chrono::milliseconds repair_interval{std::chrono::seconds(30)};
  // The cluster key file every daemon signs and verifies internal requests with; "" =
  // <data_dir>/cluster.key, created (random, mode 0600) when absent.
  std::string cluster_key_file;
  // The gateway reads the chunkservers' chunks from their stores directly (short-circuit
  // local reads, cluster/local_read.h) instead of over loopback HTTP. Writes go over HTTP.
  bool local_reads = true;
  // Every option of the gateway, as `wharf gateway` takes them (cli/gateway_flags.h), except
  // what the cluster sets itself: masters (this cluster's master), chunk_size and
  // cluster_key. gateway.listen: port 0 = any free port; gateway.meta_url "" =
  // sqlite:<data_dir>/meta.db.
  GatewayOptions gateway;

  // kInvalidArgument naming the first bad option. Touches nothing.
  Status Validate() const;
};

// The options the cluster's gateway runs with: o.gateway, with the cluster's master
// (`master`, HOST:PORT), its chunk size and the default meta.db. The cluster key is set apart.
GatewayOptions GatewayOptionsFor(const LocalClusterOptions& o, const std::string& master);

class LocalCluster {
 public:
  // A chunkserver of the cluster.
  struct Member {
    std::string group;
    std::string id;  // "g1-a" ...
    std::string address;
  };

  explicit LocalCluster(LocalClusterOptions options);
  ~LocalCluster();  // Stop()
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Validates every option before it starts anything or creates any directory (errors of
  // Validate()); then starts the master, the chunkservers and the gateway and runs each on
  // its own thread. If a daemon fails to start (a port in use, a locked data directory...),
  // what was started is stopped again and its error returned. Call once.
  Status Start();
  // The gateway reads its TLS files again (SIGHUP). Ok without TLS.
  Status ReloadTls();
  // Stops every daemon and joins the threads. Idempotent.
  void Stop();
  // Waits until the gateway sees a writable group (its /healthz would answer 200), at most
  // `timeout`. Ok, or the gateway's last health error. After a successful Start().
  Status WaitUntilWritable(std::chrono::milliseconds timeout);

  // Bound addresses ("127.0.0.1:40123"), valid after a successful Start().
  std::string master_address() const;
  std::string gateway_address() const;
  // The key file in use, valid after a successful Start().
  const std::string& cluster_key_file() const { return key_file_; }
  const std::vector<Member>& members() const { return members_; }
  const LocalClusterOptions& options() const { return options_; }

 private:
  struct Daemon;  // an event loop, its work guard and its thread

  Status StartDaemons();

  const LocalClusterOptions options_;
  // Event loops outlive the daemons that run on them (members are destroyed in reverse).
  std::vector<std::unique_ptr<Daemon>> loops_;  // [0] master, [1..4] chunkservers, [5] gateway
  std::unique_ptr<MasterServer> master_;
  std::vector<std::unique_ptr<Chunkserver>> chunkservers_;
  std::unique_ptr<Gateway> gateway_;
  Status gateway_fatal_;  // the gateway refused to go on (on its loop; read there)
  std::vector<Member> members_;
  std::string key_file_;
  std::shared_ptr<const ClusterKey> key_;
  bool running_ = false;  // the threads run
  bool stopped_ = false;
};

}  // namespace wharf

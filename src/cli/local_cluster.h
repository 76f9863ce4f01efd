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
//   o.data_dir = tmp; o.base_port = 0; o.gateway_listen = "127.0.0.1:0";
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

#include "common/asio.h"
#include "common/status.h"
#include "common/units.h"
#include "gateway/auth_config.h"

namespace wharf {

class MasterServer;
class Chunkserver;
class Gateway;
class ClusterKey;

struct LocalClusterOptions {
  std::string data_dir = "./wharf-data";
  // Address the master and the chunkservers bind (an IP address or "localhost").
  std::string host = "127.0.0.1";
  // The master's port; the chunkservers take the next four. 0 = any free ports.
  int base_port = 7700;
  // HOST:PORT of the gateway (registry and file API); port 0 = any free port.
  std::string gateway_listen = "127.0.0.1:5000";
  // Free space each chunkserver keeps.
  Reserve reserve{.percent = false, .value = 0, .bytes = 1ull << 30};
  uint64_t chunk_size = 16u << 20;
  std::chrono::milliseconds heartbeat{1000};
  // The gateway's deadline for each call to a member (GatewayOptions::member_timeout).
  std::chrono::milliseconds member_timeout{5000};
  // The gateway's metadata store (OpenMetaStore); empty: sqlite:<data_dir>/meta.db.
  std::string meta_url;
  // The gateway's request log: off | stderr | FILE (http/access_log.h).
  std::string access_log = "stderr";
  // The gateway's access control (--htpasswd, --access, --token-*, --read-only).
  GatewayAuthOptions gateway_auth;
  // The gateway's public base URL and trusted proxies (GatewayOptions).
  std::string public_url;
  std::vector<std::string> trusted_proxies;
  bool allow_foreign_layers = true;
  // The cluster key file every daemon signs and verifies internal requests with; "" =
  // <data_dir>/cluster.key, created (random, mode 0600) when absent.
  std::string cluster_key_file;
  // The gateway's TLS files (GatewayOptions): "" = plain HTTP.
  std::string tls_cert, tls_key, tls_client_ca;
  // The gateway's garbage collector (GatewayOptions::gc_grace, gc_untagged_after).
  std::chrono::seconds gc_grace{3600};
  std::optional<std::chrono::seconds> gc_untagged_after;

  // kInvalidArgument naming the first bad option. Touches nothing.
  Status Validate() const;
};

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
  std::vector<Member> members_;
  std::string key_file_;
  std::shared_ptr<const ClusterKey> key_;
  bool running_ = false;  // the threads run
  bool stopped_ = false;
};

}  // namespace wharf

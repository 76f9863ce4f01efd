// The master daemon: Topology behind HTTP.
//
//   POST   /v1/heartbeat        a chunkserver's HeartbeatReport (JSON) -> a HeartbeatReply
//                               {"version": N, "roster": [...], "removed": [...]}
//   GET    /v1/map              the full cluster map (gateways)
//   GET    /v1/status           the status shape (`wharf status`)
//   GET    /v1/roster           every member this master knows and the decommissioned ones
//                               (members.json's format, topology.h), for peer masters
//   GET    /v1/placement?size=N[&policy=most_free|round_robin|named][&group=ID]
//                               -> {"group": "g1", "version": N, "members": [{"id","addr"}]}
//   DELETE /v1/members/{id}[?force=1]
//                               forget a decommissioned member (`wharf member rm`): 409 while
//                               the member is not offline, unless forced
//   GET    /v1/namespace, PUT /v1/namespace
//                               the metadata store the cluster serves (master_namespace.cc)
//   GET    /healthz, /metrics
//
// Masters are equal peers (FastDFS trackers): each is fed by every chunkserver; nothing is
// shared between them but the roster and the namespace id: --peer lists the other masters,
// which this one polls for their /v1/roster (merged into its own, so a master that lost its
// data dir learns every member its peers know), asks for the namespace, and so that /metrics
// tells an operator when a peer is down.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/asio.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "master/namespace_registry.h"
#include "master/placement.h"
#include "master/topology.h"

namespace wharf {

struct MasterOptions {
  std::string listen = "127.0.0.1:7000";
  // HOST:PORT names chunkservers, gateways and tools reach this master by when they are not
  // the address a connection arrives on (a DNS name, a NAT'd address): signed internal
  // requests must name the master they were sent to (http/cluster_auth.h).
  std::vector<std::string> advertise;
  std::string data_dir;
  std::vector<std::string> peers;
  uint64_t chunk_size = 16u << 20;
  PlacementPolicy policy = PlacementPolicy::kMostFree;
  std::string named_group;
  double offline_after_intervals = 3;
  // Set: every route but /healthz and /metrics needs the cluster-key proof
  // (http/cluster_auth.h); unset, the master is open to anyone who reaches it.
  std::shared_ptr<const ClusterKey> cluster_key;
};

class MasterServer {
 public:
  // Runs on `ex` (one event loop thread).
  MasterServer(asio::any_io_executor ex, MasterOptions options);
  ~MasterServer();
  // Loads persisted members and binds the listen address. kInvalidArgument, kUnavailable,
  // kIOError, kCorruption.
  Status Start();
  void Stop();
  std::string address() const { return server_ ? server_->local_address() : ""; }

 private:
  // The route table every request goes through (http/router.h).
  void BuildRouter();
  awaitable<void> HandleHeartbeat(Exchange& ex);
  awaitable<void> HandleMap(Exchange& ex);  // /v1/map and /v1/status
  awaitable<void> HandleForgetMember(Exchange& ex);
  awaitable<void> HandlePlacement(Exchange& ex);
  awaitable<void> HandleRoster(Exchange& ex);
  awaitable<void> ProbePeers();
  // master_namespace.cc
  awaitable<void> HandleNamespace(Exchange& ex);
  awaitable<std::optional<std::string>> PeerNamespace(const std::string& peer);
  awaitable<Status> ClaimNamespace(std::string id);
  awaitable<void> AdoptPeerNamespace();
  awaitable<void> CheckPeerNamespaces();

  asio::any_io_executor ex_;
  MasterOptions options_;
  Topology topology_;
  NamespaceRegistry namespace_;
  std::unique_ptr<HttpClient> peer_client_;  // to peer masters; short timeouts
  std::unique_ptr<Router> router_;           // outlives server_
  std::unique_ptr<Server> server_;
  std::atomic<uint64_t> round_robin_{0};
  std::atomic<bool> stopped_{false};
  Logger log_;
};

}  // namespace wharf

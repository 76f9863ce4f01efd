// The gateway (Speedy's ImageServer): stateless; any number behind a load balancer. It serves
// the OCI Distribution API (/v2/...) and the file API (/files) on one port, keeps metadata in
// the MetaStore and content in the chunk cluster through a ChunkCluster (the ClusterClient in a
// daemon), and runs the GarbageCollector.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "blob/blob_service.h"
#include "cluster/chunk_cluster.h"
#include "cluster/cluster_client.h"
#include "common/asio.h"
#include "common/log.h"
#include "common/log_throttle.h"
#include "gateway/auth_config.h"
#include "gateway/garbage_collector.h"
#include "gateway/gateway_stats.h"
#include "gateway/public_url.h"
#include "gateway/site_evictor.h"
#include "http/access_log.h"
#include "http/router.h"
#include "http/server.h"
#include "meta/lookup_cache.h"
#include "meta/meta_store.h"
#include "upstream/proxy.h"
#include "upstream/replication.h"
#include "upstream/site_cache.h"
#include "upstream/site_queue.h"

namespace wharf {

struct GatewayOptions {
  std::string listen = "127.0.0.1:5000";
  std::vector<std::string> masters;
  std::string meta_url;  // sqlite:PATH or postgres://... (meta/meta_store.h OpenMetaStore)
  uint64_t chunk_size = 16u << 20;
  size_t max_inflight_chunks = 4;  // per upload: chunks being hashed/written at once
  // The bound on the bytes of every in-flight buffer of the gateway together: the chunk
  // buffers of uploads, the read buffers of pulls, request body read buffers and manifest
  // bodies (common/memory_budget.h). Spent: requests wait for memory (their sockets are not
  // read meanwhile) instead of the gateway growing. Gateways of one process share it.
  uint64_t memory_budget = 512u << 20;
  // The minimum rate of a request body (ServerOptions::min_body_rate; 0: none): a client
  // holding a connection (and a chunk buffer) while sending slower is cut.
  uint64_t min_body_rate = 1024;
  std::chrono::milliseconds min_body_rate_window{std::chrono::seconds(10)};
  // A write finding no writable group waits this long for one before answering 503.
  std::chrono::milliseconds writable_wait{5000};
  // The deadline of every call to a chunkserver or master (ClusterClientOptions::member_timeout):
  // a hung member is dropped from a write, and a read from it is hedged after a quarter of it.
  std::chrono::milliseconds member_timeout{5000};
  // A chunk read asks another member too when the first has not answered after this
  // (ClusterClientOptions::read_hedge): 0: member_timeout / 4; negative: never.
  std::chrono::milliseconds read_hedge{0};
  PlacementPolicy policy = PlacementPolicy::kMostFree;
  std::string named_group;
  uint64_t max_manifest_bytes = 4u << 20;
  // The memory of hot metadata reads (meta/lookup_cache.h): linked blobs and manifests by
  // digest, and tags when `tags` (this gateway is its store's only writer). ttl 0: off.
  LookupCacheOptions lookup_cache;
  std::chrono::seconds upload_expiry{24 * 3600};
  // No progress for this long: a request died mid-body (its gateway crashed); what it left is
  // collected (GarbageCollectorOptions::upload_stale). Sessions are touched as bytes arrive
  // every quarter of the shorter of the two (at most every 30 s).
  std::chrono::seconds upload_stale{600};
  std::chrono::milliseconds gc_interval{std::chrono::seconds(10)};
  int sweep_every = 6;                    // inventory sweep every this many GC passes
  std::chrono::seconds sweep_grace{600};  // unknown chunks younger than this are left alone
  std::chrono::seconds gc_grace{3600};    // unreferenced blob links younger than this stay
  // How often the stats loop sets the capacity gauges from the cached cluster map and counts
  // what the metadata store holds (GatewayStats; a table scan, so never per scrape).
  std::chrono::milliseconds stats_interval{std::chrono::seconds(5)};
  // Untagged manifests pushed longer ago than this are collected; nullopt: kept.
  std::optional<std::chrono::seconds> gc_untagged_after;
  // Unix seconds: the one clock of the metadata store (which stamps upload sessions) and the
  // garbage collector (which expires them). Empty: the system clock. Tests inject a fake.
  std::function<int64_t()> now_unix;
  std::string access_log = "stderr";  // off | stderr | FILE (http/access_log.h)
  // Who may do what (gateway/auth_config.h). Nothing configured: the gateway is open.
  GatewayAuthOptions auth;
  // The base of the absolute URLs the gateway sends (gateway/public_url.h): "" = from the
  // request's Host; X-Forwarded-* are believed only from these addresses or networks.
  std::string public_url;
  std::vector<std::string> trusted_proxies;
  // Manifests may name foreign (non-distributable) layers with URLs without their blobs here.
  bool allow_foreign_layers = true;
  // Set: the gateway's requests to masters and chunkservers carry the cluster-key proof.
  std::shared_ptr<const ClusterKey> cluster_key;
  // Set by `wharf up` only (no flag of `wharf gateway`): the chunkservers in this process,
  // read from their stores directly (ClusterClientOptions::local_members).
  std::shared_ptr<LocalMembers> local_members;
  // TLS (http/tls.h): PEM files; "" = plain HTTP. tls_client_ca: ask for and verify client
  // certificates (their subject lands in RequestContext::tls_client_subject).
  std::string tls_cert, tls_key, tls_client_ca;
  // The background-work lease (MetaStore::AcquireLease): garbage collection and upload expiry
  // run in the one gateway of the store holding it, renewed every ttl/3; when the holder dies,
  // another takes over within about ttl + ttl/3.
  std::chrono::seconds background_lease_ttl{5};
  // This gateway's name in the lease and the admin view. "": <hostname>:<port>.
  std::string instance_name;
  // Called on the executor when the gateway must not go on: its metadata store is not the one
  // the cluster serves (the masters refused its namespace claim before any accepted it). Empty:
  // the error is logged and the gateway stops.
  std::function<void(const Status&)> on_fatal;
  // Site mode (upstream/site_cache.h): "" = off; else the shared upstream registry's URL. Pushes
  // are written through to it before they are acknowledged, misses are fetched from it.
  std::string site_upstream;
  std::string site_upstream_ca;             // PEM CAs for an https upstream ("" = the system's)
  std::string site_upstream_user;           // "" = anonymous
  std::string site_upstream_password;       // or, when empty, the first line of:
  std::string site_upstream_password_file;  // read at Start
  // A tag is resolved upstream again when its last lookup is older than this.
  std::chrono::milliseconds site_tag_ttl{std::chrono::seconds(30)};
  // `--site-write async`: a push is acknowledged once stored here and queued in the metadata
  // store; upstream::SiteQueue ships it (false: written through before the acknowledgement).
  bool site_write_async = false;
  int site_queue_workers = 4;  // items shipped at once
  // Pull-through cache (upstream/proxy.h): pulls of NAME/rest are served from here or fetched
  // from NAME's upstreams (in order: failover); pushes to NAME/... answer 405 UNSUPPORTED.
  std::vector<upstream::ProxyUpstreamOptions> proxies;
  std::chrono::milliseconds proxy_tag_ttl{std::chrono::seconds(30)};
  bool proxy_serve_stale = false;  // with every upstream down, a tag's last lookup is served
  // Replication rules (upstream/replication.h): read at Start; "" = none.
  std::string replicate_file;
  // Watermark eviction of the site cache (gateway/site_evictor.h), in percent of the cluster's
  // free space: under `low`, the least recently pulled blobs are evicted until free space is
  // back at `high`. 0: off (the default). A pass runs every min(gc_interval, 5s).
  double site_cache_low_percent = 0;
  double site_cache_high_percent = 0;
};

// What every handler gets. Lives as long as the Gateway; used on the gateway's executor.
// MetaStore calls block: run them with Offload() (common/async.h).
struct GatewayContext {
  asio::any_io_executor ex;
  ChunkCluster* cluster = nullptr;
  MetaStore* meta = nullptr;
  LookupCache* lookup = nullptr;  // null when off; answers on the loop, MetaStore fills it
  const GatewayOptions* options = nullptr;
  Logger log;
  BlobService* blobs = nullptr;    // every content write and read of the handlers
  MemoryBudget* memory = nullptr;  // GatewayOptions::memory_budget (manifest bodies take from it)
  // Access control; null when the gateway is open (every caller may do everything).
  const GatewayAuth* auth = nullptr;
  PublicUrl urls;  // absolute URLs for Location headers
  // Capacity, stored totals and the GC's last round (the status page reads them).
  const GatewayStats* stats = nullptr;
};

// The least memory budget that holds what one upload and one pull need with `chunk_size`
// chunks; kInvalidArgument (naming the flags) from CheckMemoryBudget for a smaller one.
uint64_t MinMemoryBudget(uint64_t chunk_size);
Status CheckMemoryBudget(uint64_t budget, uint64_t chunk_size);

// "<hostname>:<port of bound_address>": a gateway's default name in the lease.
std::string DefaultInstanceName(const std::string& bound_address);

class Gateway {
 public:
  Gateway(asio::any_io_executor ex, GatewayOptions options);
  ~Gateway();
  // Opens the metadata store, binds, starts the cluster map refresh and the garbage collector.
  Status Start();
  void Stop();
  std::string address() const;
  // Ok once the cluster map has a writable group and the masters confirmed that the cluster
  // serves this gateway's metadata store.
  Status Health() const;
  // Reads the TLS certificate and key again (SIGHUP): new connections get them, open ones keep
  // theirs. Ok without TLS; on error the old certificate stays.
  Status ReloadTls();

 private:
  // The route table and filter chain every request goes through (http/router.h).
  void BuildRouter();
  // gateway_background.cc: the work that is not a request.
  // Runs a GarbageCollector round every gc_interval while this gateway holds the lease.
  awaitable<void> CollectGarbageLoop();
  // Every stats_interval: capacity gauges from the cluster map, stored totals from the store.
  awaitable<void> StatsLoop();
  // Claims the cluster's namespace for store_id_ with the masters: every second until they
  // confirm it, then every kNamespaceRecheck. A refusal before the first confirmation is fatal.
  awaitable<void> NamespaceLoop();
  // Takes or renews the background lease every background_lease_ttl / 3.
  awaitable<void> LeaseLoop();
  // Site mode with watermarks: every min(gc_interval, 5s) writes the recorded pulls, and, while
  // this gateway holds the lease, runs an eviction pass.
  awaitable<void> SiteEvictionLoop();
  void Fatal(const Status& st);
  // admin_api.cc: GET /admin/gc (and the dispatch of /admin/queue).
  awaitable<void> HandleAdminGc(Exchange& ex);
  // admin_queue.cc: GET /admin/queue.
  awaitable<void> HandleAdminQueue(Exchange& ex);
  // The pull-through cache of options_.proxies (their password files read).
  Status StartProxy();
  // The replication rules of options_.replicate_file; their push jobs queued by every write.
  Status StartReplication();
  // admin_queue.cc: GET /admin/replication.
  awaitable<void> HandleAdminReplication(Exchange& ex);
  // Re-reads changed htpasswd and policy files every kAuthReloadInterval.
  awaitable<void> ReloadAuthLoop();

  GatewayOptions options_;
  asio::any_io_executor ex_;
  std::unique_ptr<LookupCache> lookup_;  // outlives meta_, which fills it
  std::unique_ptr<MetaStore> meta_;
  std::unique_ptr<ClusterClient> cluster_;
  std::unique_ptr<upstream::SiteCache> site_;         // site mode only; outlives blobs_' use of it
  std::unique_ptr<upstream::SiteQueue> site_queue_;   // --site-write async only
  std::unique_ptr<upstream::ProxyRouter> proxy_;      // --proxy only; in front of site_
  std::unique_ptr<upstream::Replicator> replicator_;  // --replicate only
  std::unique_ptr<SiteEvictor> evictor_;              // site mode with watermarks only
  std::unique_ptr<BlobService> blobs_;
  std::shared_ptr<AccessLog> access_log_;  // null when off
  std::unique_ptr<Router> router_;         // outlives server_
  std::unique_ptr<Server> server_;
  std::shared_ptr<TlsContext> tls_;  // null without TLS
  std::unique_ptr<GarbageCollector> gc_;
  std::unique_ptr<GatewayAuth> auth_;  // null when open
  GatewayStats stats_;
  LogThrottle stats_log_;  // a store that is down would log every stats_interval
  GatewayContext ctx_;
  bool stopped_ = false;
  std::string instance_;  // the lease holder name
  std::string store_id_;  // MetaStore::StoreId, read at Start
  bool namespace_confirmed_ = false;
  LeaseInfo lease_;  // as of the last AcquireLease
  struct Round {
    int64_t finished_unix = 0;
    double seconds = 0;
    GcReport report;
  };
  std::optional<Round> last_round_;  // the last round this gateway ran
};

}  // namespace wharf

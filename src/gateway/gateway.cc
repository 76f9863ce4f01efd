#include "gateway/gateway.h"

#include <fmt/format.h>

#include <fstream>

#include "common/async.h"
#include "common/buffer_pool.h"
#include "common/metrics.h"
#include "common/units.h"
#include "gateway/auth_filter.h"
#include "gateway/auth_token.h"
#include "gateway/blob_serve.h"
#include "gateway/file_api.h"
#include "gateway/registry_handlers.h"
#include "gateway/status_page.h"
#include "http/status_http.h"
#include "http/tls.h"
#include "meta/instrumented_meta_store.h"
#include "meta/meta_url.h"

namespace wharf {

uint64_t MinMemoryBudget(uint64_t chunk_size) { return 2 * chunk_size + 2 * kVerifiedTailBytes; }

Status CheckMemoryBudget(uint64_t budget, uint64_t chunk_size) {
  const uint64_t least = MinMemoryBudget(chunk_size);
  if (budget < least) {
    return InvalidArgument(fmt::format(
        "--memory-budget {} is too small for --chunk-size {}: an upload needs room for two "
        "chunks and a pull for its read buffer (at least {})",
        FormatBytes(budget), FormatBytes(chunk_size), FormatBytes(least)));
  }
  return Status::Ok();
}

Gateway::Gateway(asio::any_io_executor ex, GatewayOptions options)
    : options_(std::move(options)), ex_(ex) {}

Gateway::~Gateway() {
  Stop();
  // Off the event loop by now (the loop has returned): give the lease up so that another
  // gateway takes it at once instead of after its expiry.
  if (meta_ && lease_.held) (void)meta_->ReleaseLease("background", instance_);
  // The pulls not written yet (site eviction's last use).
  if (meta_ && evictor_) (void)meta_->TouchBlobs(blobs_->TakePulls(), SystemNowUnix());
}

Status Gateway::Start() {
  if (options_.masters.empty()) return InvalidArgument("at least one --master is required");
  if (options_.meta_url.empty())
    return InvalidArgument("--meta is required (sqlite:PATH or postgres://...)");
  if (options_.chunk_size < 4096) return InvalidArgument("--chunk-size must be at least 4KiB");
  if (Status st = CheckMemoryBudget(options_.memory_budget, options_.chunk_size); !st.ok()) {
    return st;
  }
  if (auto hp = SplitHostPort(options_.listen); !hp) return hp.error();
  for (const auto& m : options_.masters) {
    if (auto hp = SplitHostPort(m); !hp) return hp.error();
  }
  WHARF_ASSIGN_OR_RETURN(ctx_.urls, PublicUrl::Make(options_.public_url, options_.trusted_proxies,
                                                    /*tls=*/!options_.tls_cert.empty()));
  WHARF_ASSIGN_OR_RETURN(access_log_, AccessLog::Open(options_.access_log));
  if (options_.auth.enabled()) {
    WHARF_ASSIGN_OR_RETURN(auth_, GatewayAuth::Load(options_.auth));
  }
  GarbageCollector::Clock clock = options_.now_unix ? options_.now_unix : &SystemNowUnix;
  MetaStoreOptions mo;
  mo.now_unix = clock;
  auto opened = OpenMetaStore(options_.meta_url, mo);
  if (!opened) {
    return Status(opened.error().code(),
                  "--meta " + RedactMetaUrl(options_.meta_url) + ": " + opened.error().message());
  }
  auto store = std::move(*opened);
  lookup_ = std::make_unique<LookupCache>(options_.lookup_cache);
  // Times every call that reaches the store; the lookup cache answers in front of it.
  meta_ = MakeCachingMetaStore(std::make_unique<InstrumentedMetaStore>(std::move(store)), *lookup_);
  // Read once, before the loop runs: the identity never changes.
  auto store_id = meta_->StoreId();
  if (!store_id) {
    return Status(store_id.error().code(),
                  "--meta " + RedactMetaUrl(options_.meta_url) +
                      ": reading its identity: " + store_id.error().message());
  }
  store_id_ = *store_id;
  ClusterClientOptions co;
  co.masters = options_.masters;
  co.cluster_key = options_.cluster_key;
  co.policy = options_.policy;
  co.named_group = options_.named_group;
  co.member_timeout = options_.member_timeout;
  co.read_hedge = options_.read_hedge;
  BudgetedPools& memory = BudgetedPools::Get("gateway", options_.memory_budget);
  co.read_buffers = &memory.PoolFor(kVerifiedTailBytes);
  co.local_members = options_.local_members;
  cluster_ = std::make_unique<ClusterClient>(ex_, co);
  GarbageCollectorOptions gco;
  gco.upload_expiry = options_.upload_expiry;
  gco.upload_stale = options_.upload_stale;
  gco.sweep_every = options_.sweep_every;
  gco.sweep_grace = options_.sweep_grace;
  gco.grace = options_.gc_grace;
  gco.untagged_after = options_.gc_untagged_after;
  gco.may_sweep = [this] { return namespace_confirmed_; };
  gc_ = std::make_unique<GarbageCollector>(cluster_.get(), meta_.get(), gco, clock);
  ctx_.ex = ex_;
  ctx_.cluster = cluster_.get();
  ctx_.meta = meta_.get();
  ctx_.lookup = lookup_->enabled() ? lookup_.get() : nullptr;
  ctx_.options = &options_;
  ctx_.log = GetLogger("gateway");
  ctx_.memory = &memory.budget();
  BlobContext bc = BlobContextOf(ctx_);
  bc.chunk_buffers = &memory.PoolFor(options_.chunk_size);
  if (!options_.site_upstream.empty()) {
    upstream::SiteOptions site;
    site.upstream.url = options_.site_upstream;
    site.upstream.ca_file = options_.site_upstream_ca;
    site.upstream.user = options_.site_upstream_user;
    site.upstream.password = options_.site_upstream_password;
    if (site.upstream.password.empty() && !options_.site_upstream_password_file.empty()) {
      auto pw = upstream::ReadPasswordFile(options_.site_upstream_password_file);
      if (!pw) {
        return InvalidArgument("--site-upstream-password-file: cannot read " +
                               options_.site_upstream_password_file);
      }
      site.upstream.password = std::move(*pw);
    }
    site.tag_ttl = options_.site_tag_ttl;
    auto cache = upstream::SiteCache::Create(ex_, site, GetLogger("site"));
    if (!cache) return InvalidArgument("--site-upstream: " + cache.error().message());
    site_ = std::move(*cache);
    ctx_.log->info("site mode upstream={} tag_ttl_ms={} write={}", options_.site_upstream,
                   options_.site_tag_ttl.count(), options_.site_write_async ? "async" : "sync");
  }
  if (!options_.proxies.empty()) WHARF_RETURN_IF_ERROR(StartProxy());
  ReadThroughSource* read_through = proxy_ ? static_cast<ReadThroughSource*>(proxy_.get())
                                           : static_cast<ReadThroughSource*>(site_.get());
  blobs_ = std::make_unique<BlobService>(bc, read_through);
  if (site_) {
    site_->Attach(blobs_.get());
    // Through the proxy router, what it fetched for a proxied name is not written through.
    blobs_->SetWriteThrough(proxy_ ? static_cast<WriteThrough*>(proxy_.get()) : site_.get());
  }
  if (proxy_) proxy_->Attach(blobs_.get());
  ctx_.blobs = blobs_.get();
  ctx_.auth = auth_.get();
  ctx_.stats = &stats_;
  BuildRouter();
  ServerOptions so;
  so.component = "gateway";
  so.memory_budget = &memory.budget();
  so.min_body_rate = options_.min_body_rate;
  so.min_body_rate_window = options_.min_body_rate_window;
  if (!options_.tls_cert.empty() || !options_.tls_key.empty() || !options_.tls_client_ca.empty()) {
    WHARF_ASSIGN_OR_RETURN(tls_, TlsContext::Load({.cert = options_.tls_cert,
                                                   .key = options_.tls_key,
                                                   .client_ca = options_.tls_client_ca}));
    so.tls = tls_;
  }
  server_ = std::make_unique<Server>(ex_, so, router_->AsHandler());
  WHARF_RETURN_IF_ERROR(server_->Listen(options_.listen));
  instance_ = options_.instance_name.empty() ? DefaultInstanceName(server_->local_address())
                                             : options_.instance_name;
  if (options_.background_lease_ttl.count() < 1) {
    return InvalidArgument("the background lease ttl must be at least 1s");
  }
  if (site_ && options_.site_write_async) {
    upstream::SiteQueueOptions qo;
    qo.target = options_.site_upstream;
    qo.holder = instance_;
    qo.workers = options_.site_queue_workers;
    site_queue_ =
        std::make_unique<upstream::SiteQueue>(ex_, qo, meta_.get(), site_.get(), GetLogger("site"));
    // Before serving: what a killed predecessor of this name left running is pending again.
    auto recovered = site_queue_->Recover();
    if (!recovered) {
      return Status(recovered.error().code(),
                    "site queue: taking back its items: " + recovered.error().message());
    }
    site_->SetQueue(site_queue_.get());
  }
  if (site_ && options_.site_cache_low_percent > 0) {
    SiteEvictionOptions eo;
    eo.low_percent = options_.site_cache_low_percent;
    eo.high_percent = options_.site_cache_high_percent;
    ClusterClient* cluster = cluster_.get();
    evictor_ = std::make_unique<SiteEvictor>([cluster] { return cluster->map(); }, meta_.get(),
                                             blobs_.get(), eo, clock, GetLogger("site"));
  }
  if (!options_.replicate_file.empty()) WHARF_RETURN_IF_ERROR(StartReplication());
  cluster_->Start();
  server_->Start();
  if (site_queue_) site_queue_->Start();
  if (replicator_) WHARF_RETURN_IF_ERROR(replicator_->Start());
  if (evictor_) asio::co_spawn(ex_, SiteEvictionLoop(), asio::detached);
  asio::co_spawn(ex_, NamespaceLoop(), asio::detached);
  asio::co_spawn(ex_, LeaseLoop(), asio::detached);
  asio::co_spawn(ex_, CollectGarbageLoop(), asio::detached);
  asio::co_spawn(ex_, StatsLoop(), asio::detached);
  if (auth_) {
    asio::co_spawn(ex_, ReloadAuthLoop(), asio::detached);
  } else {
    ctx_.log->warn(
        "gateway is open: no --htpasswd, --access or --token-* given, so anyone who reaches "
        "addr={} may push, overwrite tags and delete images and files",
        server_->local_address());
  }
  if (options_.auth.read_only) ctx_.log->warn("gateway is read-only: writes answer 405");
  ctx_.log->info(
      "gateway listening addr={} tls={} client_certs={} masters={} meta={} store_id={} name={} "
      "chunk_size={} memory_budget={} min_body_rate={}",
      server_->local_address(), tls_ != nullptr, tls_ && tls_->verifies_clients(),
      options_.masters.size(), RedactMetaUrl(options_.meta_url), store_id_, instance_,
      options_.chunk_size, options_.memory_budget, options_.min_body_rate);
  return Status::Ok();
}

Status Gateway::ReloadTls() {
  if (!tls_) return Status::Ok();
  Status st = tls_->Reload();
  if (st.ok()) {
    ctx_.log->info("tls certificate reloaded cert={}", options_.tls_cert);
  } else {
    ctx_.log->error("tls reload failed, the old certificate stays err={}", st);
  }
  return st;
}

void Gateway::Stop() {
  stopped_ = true;
  if (site_queue_) site_queue_->Stop();
  if (replicator_) replicator_->Stop();
  if (gc_) gc_->Stop();
  if (cluster_) cluster_->Stop();
  if (server_) server_->Stop();
}

Status Gateway::StartProxy() {
  upstream::ProxyOptions po;
  po.upstreams = options_.proxies;
  po.tag_ttl = options_.proxy_tag_ttl;
  po.serve_stale = options_.proxy_serve_stale;
  for (upstream::ProxyUpstreamOptions& p : po.upstreams) {
    if (!p.password.empty() || p.password_file.empty()) continue;
    auto pw = upstream::ReadPasswordFile(p.password_file);
    if (!pw) {
      return InvalidArgument("--proxy-password-file " + p.name + "=" + p.password_file +
                             ": cannot read it");
    }
    p.password = std::move(*pw);
  }
  auto router = upstream::ProxyRouter::Create(ex_, po, site_.get(), GetLogger("proxy"));
  if (!router) return router.error();
  proxy_ = std::move(*router);
  for (const upstream::ProxyUpstreamOptions& p : po.upstreams) {
    ctx_.log->info("pull-through cache name={} upstreams={} tag_ttl_ms={} serve_stale={}", p.name,
                   fmt::join(p.urls, ","), po.tag_ttl.count(), po.serve_stale);
  }
  return Status::Ok();
}

Status Gateway::StartReplication() {
  const std::string& path = options_.replicate_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("--replicate " + path + ": cannot read it");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto config = upstream::ParseReplicationConfig(text);
  if (!config) return InvalidArgument("--replicate " + path + ": " + config.error().message());
  // What a push is written through first: the site's upstream (through the proxy router when
  // there is one), then the replication jobs are queued.
  WriteThrough* inner = nullptr;
  if (site_) inner = proxy_ ? static_cast<WriteThrough*>(proxy_.get()) : site_.get();
  auto r = upstream::Replicator::Create(ex_, std::move(*config), meta_.get(), instance_, inner,
                                        GetLogger("replication"));
  if (!r) return InvalidArgument("--replicate " + path + ": " + r.error().message());
  replicator_ = std::move(*r);
  replicator_->Attach(blobs_.get());
  blobs_->SetWriteThrough(replicator_.get());
  return Status::Ok();
}

std::string Gateway::address() const { return server_ ? server_->local_address() : ""; }

Status Gateway::Health() const {
  if (!cluster_ || !cluster_->map()) return Unavailable("no cluster map yet");
  if (!cluster_->writable()) return Unavailable("no writable group in the cluster");
  if (!namespace_confirmed_) {
    return Unavailable("the masters have not confirmed that the cluster serves metadata store " +
                       store_id_);
  }
  return Status::Ok();
}

void Gateway::BuildRouter() {
  // Unknown paths and methods get 404 "no such endpoint"; the registry and file API answer
  // every method of their paths themselves (405 UNSUPPORTED in the registry's error table).
  router_ = std::make_unique<Router>(Router::Options{.component = "gateway", .answer_405 = false});
  if (access_log_) router_->AddFilter(std::make_shared<AccessLogFilter>(access_log_));
  if (options_.auth.read_only) router_->AddFilter(std::make_shared<ReadOnlyFilter>());
  if (auth_) router_->AddFilter(std::make_shared<AuthFilter>(auth_.get(), &ctx_.urls));
  AddOpsRoutes(*router_, [this] { return Health(); });
  if (auth_ && auth_->issuer()) {
    router_->Add({"token", {}, PathMatch::Exact("/v2/token"), [this](Exchange& ex) {
                    ex.AddHeader("Docker-Distribution-API-Version", "registry/2.0");
                    return HandleToken(*auth_, ex);
                  }});
  }
  router_->Add({"registry", {}, PathMatch::Subtree("/v2"), [this](Exchange& ex) {
                  return HandleRegistry(ctx_, ex);
                }});
  router_->Add({"files", {}, PathMatch::Subtree("/files"), [this](Exchange& ex) {
                  return HandleFiles(ctx_, ex);
                }});
  router_->Add({"ui", {}, PathMatch::Subtree("/ui"), [this](Exchange& ex) {
                  return HandleStatusPage(ctx_, ex);
                }});
  router_->Add({"admin", {}, PathMatch::Subtree("/admin"), [this](Exchange& ex) {
                  return HandleAdminGc(ex);
                }});
}

awaitable<void> Gateway::ReloadAuthLoop() {
  constexpr std::chrono::seconds kAuthReloadInterval{2};
  GatewayAuth* auth = auth_.get();
  auto reload = [auth] { auth->ReloadChangedFiles(); };
  while (!stopped_) {
    co_await SleepFor(kAuthReloadInterval);
    if (stopped_) break;
    co_await Offload(reload);
  }
}

awaitable<void> Gateway::StatsLoop() {
  static auto& failures = Metrics().Counter("wharf_gateway_stats_failures_total",
                                            "Counts of the stored totals that failed.");
  MetaStore* meta = meta_.get();
  auto count = [meta] { return meta->GetStoredTotals(); };
  while (!stopped_) {
    if (std::optional<ClusterMap> map = cluster_->map()) stats_.UpdateCluster(*map);
    Result<StoredTotals> totals = co_await Offload(count);
    if (totals) {
      stats_.UpdateTotals(*totals, options_.now_unix ? options_.now_unix() : SystemNowUnix());
      if (uint64_t n = stats_log_.Reset(); n > 0) {
        ctx_.log->info("counting stored totals works again after failures={}", n);
      }
    } else {
      failures.Inc();
      if (auto n = stats_log_.Admit()) {
        ctx_.log->warn("counting stored totals failed err={}{}", totals.error(), Held(*n));
      }
    }
    co_await SleepFor(options_.stats_interval);
  }
}

}  // namespace wharf

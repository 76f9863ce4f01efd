#include "gateway/gateway.h"

#include "common/async.h"
#include "common/metrics.h"
#include "gateway/blob_serve.h"
#include "gateway/file_api.h"
#include "gateway/registry_handlers.h"
#include "http/status_http.h"
#include "meta/instrumented_meta_store.h"

namespace wharf {

Gateway::Gateway(asio::any_io_executor ex, GatewayOptions options)
    : options_(std::move(options)), ex_(ex) {}

Gateway::~Gateway() { Stop(); }

Status Gateway::Start() {
  if (options_.masters.empty()) return InvalidArgument("at least one --master is required");
  if (options_.meta_url.empty()) return InvalidArgument("--meta is required (sqlite:PATH)");
  if (options_.chunk_size < 4096) return InvalidArgument("--chunk-size must be at least 4KiB");
  if (auto hp = SplitHostPort(options_.listen); !hp) return hp.error();
  for (const auto& m : options_.masters) {
    if (auto hp = SplitHostPort(m); !hp) return hp.error();
  }
  WHARF_ASSIGN_OR_RETURN(access_log_, AccessLog::Open(options_.access_log));
  GarbageCollector::Clock clock = options_.now_unix ? options_.now_unix : &SystemNowUnix;
  MetaStoreOptions mo;
  mo.now_unix = clock;
  WHARF_ASSIGN_OR_RETURN(auto store, OpenMetaStore(options_.meta_url, mo));
  meta_ = std::make_unique<InstrumentedMetaStore>(std::move(store));  // times every call
  ClusterClientOptions co;
  co.masters = options_.masters;
  co.policy = options_.policy;
  co.named_group = options_.named_group;
  cluster_ = std::make_unique<ClusterClient>(ex_, co);
  GarbageCollectorOptions gco;
  gco.upload_expiry = options_.upload_expiry;
  gco.sweep_every = options_.sweep_every;
  gco.sweep_grace = options_.sweep_grace;
  gco.grace = options_.gc_grace;
  gco.untagged_after = options_.gc_untagged_after;
  gc_ = std::make_unique<GarbageCollector>(cluster_.get(), meta_.get(), gco, clock);
  ctx_.ex = ex_;
  ctx_.cluster = cluster_.get();
  ctx_.meta = meta_.get();
  ctx_.options = &options_;
  ctx_.log = GetLogger("gateway");
  blobs_ = std::make_unique<BlobService>(BlobContextOf(ctx_));
  ctx_.blobs = blobs_.get();
  BuildRouter();
  ServerOptions so;
  so.component = "gateway";
  server_ = std::make_unique<Server>(ex_, so, router_->AsHandler());
  WHARF_RETURN_IF_ERROR(server_->Listen(options_.listen));
  cluster_->Start();
  server_->Start();
  asio::co_spawn(ex_, CollectGarbageLoop(), asio::detached);
  ctx_.log->info("gateway listening addr={} masters={} meta={} chunk_size={}",
                 server_->local_address(), options_.masters.size(), options_.meta_url,
                 options_.chunk_size);
  return Status::Ok();
}

void Gateway::Stop() {
  stopped_ = true;
  if (gc_) gc_->Stop();
  if (cluster_) cluster_->Stop();
  if (server_) server_->Stop();
}

std::string Gateway::address() const { return server_ ? server_->local_address() : ""; }

Status Gateway::Health() const {
  if (!cluster_ || !cluster_->map()) return Unavailable("no cluster map yet");
  if (!cluster_->writable()) return Unavailable("no writable group in the cluster");
  return Status::Ok();
}

void Gateway::BuildRouter() {
  // Unknown paths and methods get 404 "no such endpoint"; the registry and file API answer
  // every method of their paths themselves (405 UNSUPPORTED in the registry's error table).
  router_ = std::make_unique<Router>(Router::Options{.component = "gateway", .answer_405 = false});
  if (access_log_) router_->AddFilter(std::make_shared<AccessLogFilter>(access_log_));
  AddOpsRoutes(*router_, [this] { return Health(); });
  router_->Add({"registry", {}, PathMatch::Subtree("/v2"), [this](Exchange& ex) {
                  return HandleRegistry(ctx_, ex);
                }});
  router_->Add({"files", {}, PathMatch::Subtree("/files"), [this](Exchange& ex) {
                  return HandleFiles(ctx_, ex);
                }});
}

awaitable<void> Gateway::CollectGarbageLoop() {
  while (!stopped_) {
    co_await SleepFor(options_.gc_interval);
    co_await gc_->RunOnce();
  }
}

}  // namespace wharf

#include "gateway/gateway.h"

#include <nlohmann/json.hpp>

#include "common/async.h"
#include "common/metrics.h"
#include "gateway/file_api.h"
#include "gateway/registry_handlers.h"
#include "http/status_http.h"

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
  WHARF_ASSIGN_OR_RETURN(meta_, OpenMetaStore(options_.meta_url));
  ClusterClientOptions co;
  co.masters = options_.masters;
  co.policy = options_.policy;
  co.named_group = options_.named_group;
  cluster_ = std::make_unique<ClusterClient>(ex_, co);
  ctx_.ex = ex_;
  ctx_.cluster = cluster_.get();
  ctx_.meta = meta_.get();
  ctx_.options = &options_;
  ctx_.log = GetLogger("gateway");
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

// Reclaims space: expired upload sessions give up their chunks, and garbage chunks are
// deleted from every member of their group. A chunk stays in the ledger until every member
// confirmed, so a member that was down when its object was deleted is cleaned when it returns.
awaitable<void> Gateway::CollectGarbageLoop() {
  static auto& reclaimed = Metrics().Counter("wharf_gateway_gc_chunks_reclaimed_total",
                                             "Garbage chunks deleted from every member.");
  static auto& deferred = Metrics().Counter("wharf_gateway_gc_chunks_deferred_total",
                                            "Garbage chunks a member could not delete yet.");
  static auto& expired = Metrics().Counter("wharf_gateway_gc_uploads_expired_total",
                                           "Upload sessions expired and released.");
  MetaStore* meta = meta_.get();
  for (uint64_t pass = 1; !stopped_; ++pass) {
    co_await SleepFor(options_.gc_interval);
    if (options_.sweep_every > 0 && pass % options_.sweep_every == 0) co_await SweepInventories();
    int64_t cutoff =
        std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::system_clock::now().time_since_epoch() - options_.upload_expiry)
            .count();
    auto list_expired = [meta, cutoff] { return meta->ListExpiredUploads(cutoff, 100); };
    auto stale = co_await Offload(list_expired);
    if (stale) {
      for (const auto& id : *stale) {
        auto drop = [meta, id] { return meta->DeleteUpload(id); };
        if ((co_await Offload(drop)).ok()) expired.Inc();
      }
    }
    if (!cluster_->map()) continue;
    constexpr size_t kPage = 256;
    const size_t want = std::min<size_t>(kPage + deferred_.size(), 20000);
    auto list_garbage = [meta, want] { return meta->ListGarbageChunks(want); };
    auto garbage = co_await Offload(list_garbage);
    if (!garbage) {
      ctx_.log->warn("gc: listing garbage failed err={}", garbage.error());
      continue;
    }
    if (garbage->size() < want) {
      // The whole garbage list is in hand: forget deferrals of chunks no longer listed.
      std::set<std::string> listed;
      for (const auto& ref : *garbage) listed.insert(ref.id);
      std::erase_if(deferred_, [&listed](const std::string& id) { return !listed.count(id); });
    }
    const auto map = cluster_->map();
    std::vector<std::string> gone;
    size_t tried = 0;
    for (const auto& ref : *garbage) {
      if (tried >= kPage) break;
      const GroupInfo* g = map->FindGroup(ref.group);
      bool reachable = g != nullptr;
      for (const auto& m : g ? g->members : std::vector<MemberInfo>{}) {
        reachable = reachable && m.state != MemberState::kOffline;
      }
      if (!reachable) {
        if (deferred_.insert(ref.id).second) deferred.Inc();
        continue;
      }
      ++tried;
      Status st = co_await cluster_->DeleteChunk(ref);
      if (st.ok()) {
        gone.push_back(ref.id);
        deferred_.erase(ref.id);
      } else {
        if (deferred_.insert(ref.id).second) deferred.Inc();
        ctx_.log->debug("gc: chunk not deleted everywhere yet chunk={} err={}", ref.id, st);
      }
    }
    if (!gone.empty()) {
      auto forget = [meta, gone] { return meta->ForgetChunks(gone); };
      Status st = co_await Offload(forget);
      if (st.ok()) reclaimed.Inc(gone.size());
    }
  }
}

awaitable<void> Gateway::SweepInventories() {
  static auto& swept = Metrics().Counter("wharf_gateway_sweep_chunks_deleted_total",
                                         "Chunks on a member that the ledger did not know.");
  auto map = cluster_->map();
  if (!map) co_return;
  MetaStore* meta = meta_.get();
  const int64_t cutoff =
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch() - options_.sweep_grace)
          .count();
  for (const auto& g : map->groups) {
    for (const auto& m : g.members) {
      if (m.state != MemberState::kActive && m.state != MemberState::kReadonly) continue;
      std::string after;
      for (int page = 0; page < 10000 && !stopped_; ++page) {
        std::string target = "/v1/chunks?limit=1000";
        if (!after.empty()) target += "&after=" + after;
        auto r = co_await cluster_->http().Request(m.addr, http::verb::get, target);
        if (!r || r->status != 200) break;
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j["chunks"].is_array()) break;
        for (const auto& c : j["chunks"]) {
          if (!c.is_object() || !c["id"].is_string() || !c["mtime"].is_number_integer()) continue;
          std::string id = c["id"].get<std::string>();
          if (c["mtime"].get<int64_t>() > cutoff) continue;
          auto state_of = [meta, id] { return meta->GetChunkState(id); };
          auto state = co_await Offload(state_of);
          if (!state || *state != ChunkState::kUnknown) continue;
          auto del =
              co_await cluster_->http().Request(m.addr, http::verb::delete_, "/v1/chunks/" + id);
          if (del && del->status == 204) {
            swept.Inc();
            ctx_.log->info("sweep deleted unknown chunk chunk={} member={}", id, m.id);
          }
        }
        if (!j["next"].is_string()) break;
        after = j["next"].get<std::string>();
      }
    }
  }
}

}  // namespace wharf

#include "master/master_server.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/async.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "common/version.h"
#include "http/cluster_auth.h"
#include "http/status_http.h"

namespace wharf {
namespace {

using json = nlohmann::json;

Topology::Options TopologyOptions(const MasterOptions& o) {
  Topology::Options t;
  t.data_dir = o.data_dir;
  t.chunk_size = o.chunk_size;
  t.offline_after_intervals = o.offline_after_intervals;
  // Seeded from the wall clock so that versions keep growing across master restarts.
  t.first_version = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
  return t;
}

}  // namespace

MasterServer::MasterServer(asio::any_io_executor ex, MasterOptions options)
    : ex_(ex),
      options_(std::move(options)),
      topology_(TopologyOptions(options_)),
      namespace_(options_.data_dir),
      log_(GetLogger("master")) {}

MasterServer::~MasterServer() { Stop(); }

Status MasterServer::Start() {
  if (options_.data_dir.empty()) return InvalidArgument("--data is required");
  WHARF_RETURN_IF_ERROR(MakeDirs(options_.data_dir));
  WHARF_RETURN_IF_ERROR(topology_.Load());
  WHARF_RETURN_IF_ERROR(namespace_.Load());
  peer_client_ = std::make_unique<HttpClient>(
      ex_,
      ClientOptions{std::chrono::seconds(1), std::chrono::seconds(2), 2, options_.cluster_key});
  ServerOptions so;
  so.component = "master";
  BuildRouter();
  server_ = std::make_unique<Server>(ex_, so, router_->AsHandler());
  WHARF_RETURN_IF_ERROR(server_->Listen(options_.listen));
  // The cluster-key filter, now that the bound address (its names) is known; before serving.
  if (options_.cluster_key) {
    ClusterAuthFilter::Options ao;
    ao.component = "master";
    std::vector<std::string> advertised = options_.advertise;
    advertised.push_back(options_.listen);
    ao.verifier.names = ReceiverNames(server_->local_address(), advertised);
    router_->AddFilter(std::make_shared<ClusterAuthFilter>(options_.cluster_key, ao));
  }
  server_->Start();
  if (!options_.peers.empty()) asio::co_spawn(ex_, ProbePeers(), asio::detached);
  log_->info("master listening addr={} data={} peers={}", server_->local_address(),
             options_.data_dir, options_.peers.size());
  return Status::Ok();
}

void MasterServer::Stop() {
  stopped_ = true;
  if (server_) server_->Stop();
}

// Decommissioning a member that is still heard from would leave its group writable on fewer
// copies while the member may come back with data: refuse unless it has been silent long
// enough to be offline (?force=1 overrides). kNotFound for an unknown member.
static Status CheckSilent(const ClusterMap& map, const std::string& id) {
  for (const auto& g : map.groups) {
    const MemberInfo* m = g.FindMember(id);
    if (m == nullptr) continue;
    if (m->state == MemberState::kOffline) return Status::Ok();
    return Conflict(fmt::format(
        "member {} of group {} is {} (heard from recently): stop it and wait until it is "
        "offline, or force the removal",
        id, g.id, MemberStateName(m->state)));
  }
  return NotFound(fmt::format("unknown member {}", id));
}

void MasterServer::BuildRouter() {
  using V = http::verb;
  // A known path with another method is answered like an unknown path: 404.
  router_ = std::make_unique<Router>(Router::Options{.component = "master", .answer_405 = false});
  // /healthz: 503 while the member list cannot be saved.
  AddOpsRoutes(*router_, [this] { return topology_.PersistHealth(); });
  router_->Add({"heartbeat", {V::post}, PathMatch::Exact("/v1/heartbeat"), [this](Exchange& ex) {
                  return HandleHeartbeat(ex);
                }});
  router_->Add({"map", {V::get, V::head}, PathMatch::Exact("/v1/map"), [this](Exchange& ex) {
                  return HandleMap(ex);
                }});
  router_->Add({"status", {V::get, V::head}, PathMatch::Exact("/v1/status"), [this](Exchange& ex) {
                  return HandleMap(ex);
                }});
  router_->Add({"roster", {V::get}, PathMatch::Exact("/v1/roster"), [this](Exchange& ex) {
                  return HandleRoster(ex);
                }});
  router_->Add({"placement", {V::get}, PathMatch::Exact("/v1/placement"), [this](Exchange& ex) {
                  return HandlePlacement(ex);
                }});
  router_->Add({"namespace",
                {V::get, V::head, V::put},
                PathMatch::Exact("/v1/namespace"),
                [this](Exchange& ex) { return HandleNamespace(ex); }});
  router_->Add(
      {"forget_member", {V::delete_}, PathMatch::Prefix("/v1/members/"), [this](Exchange& ex) {
         return HandleForgetMember(ex);
       }});
}

awaitable<void> MasterServer::HandleMap(Exchange& ex) {
  ClusterMap map = topology_.Snapshot();  // publishes the map's gauges when it changed
  ex.AddHeader("X-Wharf-Version", std::string(WharfVersion()));
  (void)co_await ex.Respond(http::status::ok, map.ToJson(ex.path() == "/v1/map").dump());
}

awaitable<void> MasterServer::HandleForgetMember(Exchange& ex) {
  std::string id(ex.path().substr(std::string_view("/v1/members/").size()));
  const bool force = ex.query("force").value_or("") == "1";
  Status st = force ? Status::Ok() : CheckSilent(topology_.Snapshot(), id);
  if (st.ok()) {
    auto forget = [this, id] { return topology_.ForgetMember(id); };
    st = co_await Offload(forget);
  }
  if (st.ok()) {
    log_->warn("member forgotten id={} force={} remote={}", id, force, ex.remote());
    (void)co_await ex.Respond(http::status::no_content);
  } else {
    co_await RespondError(ex, st);
  }
}

awaitable<void> MasterServer::HandleHeartbeat(Exchange& ex) {
  // The topology counts what it accepts and rejects; only what never reaches it (a body that
  // is not a report) is counted here.
  static auto& rejected = Metrics().Counter("wharf_master_heartbeats_rejected_total",
                                            "Heartbeats rejected (malformed or conflicting).");
  auto body = co_await ex.ReadAll(64 * 1024);
  if (!body) {
    (void)co_await ex.Respond(http::status::bad_request, ErrorJsonBody(body.error()));
    co_return;
  }
  json j = json::parse(*body, nullptr, false);
  auto report = HeartbeatReport::FromJson(j);
  Status st = report ? Status::Ok() : report.error();
  if (!st.ok()) rejected.Inc();
  if (st.ok()) {
    // Heartbeat() may write members.json: off the event loop.
    auto record = [this, r = *report] { return topology_.Heartbeat(r); };
    st = co_await Offload(record);
  }
  if (!st.ok()) {
    log_->warn("heartbeat rejected remote={} err={}", ex.remote(), st);
    co_await RespondError(ex, st);
    co_return;
  }
  ClusterMap map = topology_.Snapshot();
  HeartbeatReply reply;
  reply.version = map.version;
  topology_.RosterOf(report->group, &reply.roster, &reply.removed);
  (void)co_await ex.Respond(http::status::ok, reply.ToJson().dump());
}

awaitable<void> MasterServer::HandleRoster(Exchange& ex) {
  (void)co_await ex.Respond(http::status::ok, topology_.ExportRoster().dump());
}

awaitable<void> MasterServer::HandlePlacement(Exchange& ex) {
  PlacementRequest req;
  req.policy = options_.policy;
  req.group = options_.named_group;
  req.round_robin_counter = &round_robin_;
  req.chunk_bytes = options_.chunk_size;
  if (auto p = ex.query("policy")) {
    auto parsed = ParsePlacementPolicy(*p);
    if (!parsed) {
      co_await RespondError(ex, parsed.error());
      co_return;
    }
    req.policy = *parsed;
  }
  if (auto g = ex.query("group")) req.group = *g;
  if (auto s = ex.query("size")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(s->c_str(), &end, 10);
    if (s->empty() || *end != '\0' || (*s)[0] == '-') {
      co_await RespondError(ex, InvalidArgument("size must be a byte count"));
      co_return;
    }
    req.chunk_bytes = v;
  }
  ClusterMap map = topology_.Snapshot();
  auto group = ChooseGroup(map, req);
  if (!group) {
    co_await RespondError(ex, group.error());
    co_return;
  }
  json members = json::array();
  for (const auto& m : map.FindGroup(*group)->members) {
    members.push_back({{"id", m.id}, {"addr", m.addr}});
  }
  json reply = {{"group", *group}, {"version", map.version}, {"members", members}};
  (void)co_await ex.Respond(http::status::ok, reply.dump());
}

awaitable<void> MasterServer::ProbePeers() {
  HttpClient client(ex_, ClientOptions{std::chrono::seconds(2), std::chrono::seconds(5), 2,
                                       options_.cluster_key});
  auto& up = Metrics().Gauge("wharf_master_peers_up", "Peer masters answering /healthz.");
  while (!stopped_) {
    int n = 0;
    for (const auto& peer : options_.peers) {
      auto r = co_await client.Request(peer, http::verb::get, "/healthz");
      if (r && r->status == 200) {
        ++n;
        // The union of the rosters: what the peer knows that this master does not (it may
        // have lost its data dir) joins as offline members.
        auto roster = co_await client.Request(peer, http::verb::get, "/v1/roster");
        if (roster && roster->status == 200) {
          auto merge = [this, text = std::move(roster->body)] {
            return topology_.MergePeerRoster(text);
          };
          Status st = co_await Offload(merge);
          if (!st.ok()) log_->warn("peer roster refused peer={} err={}", peer, st);
        }
      } else {
        log_->debug("peer master unreachable peer={}", peer);
      }
    }
    up.Set(n);
    co_await CheckPeerNamespaces();
    co_await SleepFor(std::chrono::seconds(5));
  }
}

}  // namespace wharf

// MasterServer: which metadata store the cluster serves (master/namespace_registry.h).
//
//   GET /v1/namespace            -> {"store_id": "ms-..."} or {"store_id": null}
//   PUT /v1/namespace[?peer=1]   {"store_id": "ms-..."} -> 200 {"store_id": "ms-..."} when it is
//                                (now) the cluster's, 409 CONFLICT when another one is
//
// A master with no id yet asks its peers first and adopts theirs, so that a gateway claiming
// through one master of a pair is judged by the pair; an id it sets is passed on to the peers
// (?peer=1: from a peer, neither asked back nor passed on). The peer probe adopts a peer's id
// too, and counts peers that keep another one (wharf_master_namespace_peer_conflicts).
#include <nlohmann/json.hpp>

#include "common/async.h"
#include "common/metrics.h"
#include "http/status_http.h"
#include "master/master_server.h"

namespace wharf {
namespace {

using json = nlohmann::json;

std::string NamespaceBody(const std::optional<std::string>& id) {
  json j = {{"store_id", id ? json(*id) : json(nullptr)}};
  return j.dump();
}

}  // namespace

awaitable<std::optional<std::string>> MasterServer::PeerNamespace(const std::string& peer) {
  auto r = co_await peer_client_->Request(peer, http::verb::get, "/v1/namespace");
  if (!r || r->status != 200) co_return std::nullopt;
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) co_return std::nullopt;
  auto id = j.find("store_id");
  if (id == j.end() || !id->is_string() || !ValidStoreId(id->get<std::string>())) {
    co_return std::nullopt;
  }
  co_return id->get<std::string>();
}

awaitable<Status> MasterServer::ClaimNamespace(std::string id) {
  auto claim = [this, id] { return namespace_.Claim(id); };
  auto set = co_await Offload(claim);
  if (!set) co_return set.error();
  co_return Status::Ok();
}

awaitable<void> MasterServer::AdoptPeerNamespace() {
  if (namespace_.store_id()) co_return;
  for (const auto& peer : options_.peers) {
    auto theirs = co_await PeerNamespace(peer);
    if (!theirs) continue;
    Status st = co_await ClaimNamespace(*theirs);
    if (st.ok()) log_->info("namespace adopted from peer peer={} store_id={}", peer, *theirs);
    co_return;
  }
}

awaitable<void> MasterServer::HandleNamespace(Exchange& ex) {
  if (ex.method() == http::verb::get || ex.method() == http::verb::head) {
    (void)co_await ex.Respond(http::status::ok, NamespaceBody(namespace_.store_id()));
    co_return;
  }
  auto body = co_await ex.ReadAll(4096);
  if (!body) {
    co_await RespondError(ex, body.error());
    co_return;
  }
  json j = json::parse(*body, nullptr, false);
  auto field = j.is_object() ? j.find("store_id") : j.end();
  if (j.is_discarded() || !j.is_object() || field == j.end() || !field->is_string() ||
      !ValidStoreId(field->get<std::string>())) {
    co_await RespondError(ex, InvalidArgument("body must be {\"store_id\": \"<store id>\"}"));
    co_return;
  }
  const std::string id = field->get<std::string>();
  const bool from_peer = ex.query("peer").value_or("") == "1";
  const bool was_set = namespace_.store_id().has_value();
  if (!from_peer) co_await AdoptPeerNamespace();
  Status st = co_await ClaimNamespace(id);
  if (!st.ok()) {
    if (st.code() == Code::kConflict) {
      log_->warn("namespace claim refused remote={} store_id={} err={}", ex.remote(), id, st);
    }
    co_await RespondError(ex, st);
    co_return;
  }
  if (!from_peer && !was_set) {
    const std::string peer_body = json({{"store_id", id}}).dump();
    for (const auto& peer : options_.peers) {
      auto r =
          co_await peer_client_->Request(peer, http::verb::put, "/v1/namespace?peer=1", peer_body);
      if (r && r->status == 409) {
        log_->error("peer master serves another metadata store peer={} store_id={}", peer, id);
      }
    }
  }
  (void)co_await ex.Respond(http::status::ok, NamespaceBody(namespace_.store_id()));
}

awaitable<void> MasterServer::CheckPeerNamespaces() {
  co_await AdoptPeerNamespace();
  const auto mine = namespace_.store_id();
  int conflicts = 0;
  if (mine) {
    for (const auto& peer : options_.peers) {
      auto theirs = co_await PeerNamespace(peer);
      if (theirs && *theirs != *mine) {
        ++conflicts;
        log_->error("peer master serves another metadata store peer={} theirs={} ours={}", peer,
                    *theirs, *mine);
      }
    }
  }
  Metrics()
      .Gauge("wharf_master_namespace_peer_conflicts",
             "Peer masters that keep another metadata store id than this one.")
      .Set(conflicts);
}

}  // namespace wharf

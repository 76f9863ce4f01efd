// MasterClient: the one piece of code that asks "any master" for the cluster map. Masters are
// equal peers (FastDFS trackers), so it tries each in turn and the first valid answer wins; the
// master that answered moves to the front, so a dead first master costs its timeout once, not
// on every fetch.
//
// Threading: like the HttpClient it uses, one executor; many coroutines on it may call it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "http/client.h"
#include "master/cluster_map.h"

namespace wharf {

class MasterClient {
 public:
  // `http` must outlive this client.
  MasterClient(HttpClient& http, std::vector<std::string> masters);

  // GET /v1/map from the first master that answers 200 with a valid map. `request_id`, when not
  // empty, is sent as X-Request-Id (it must stay alive until the awaitable completes).
  // kUnavailable when no master is configured or none answered; the last master's error
  // (kInvalidArgument for a malformed map) otherwise.
  awaitable<Result<ClusterMap>> FetchMap(std::string_view request_id = {});

  // Claims the cluster's namespace for metadata store `store_id` (master/namespace_registry.h)
  // with EVERY master, not just one: a pair of masters must both keep it. Ok when at least one
  // accepted and none refused; kConflict ("master M serves metadata store X, not Y") when one
  // refused; kUnavailable when none answered.
  awaitable<Status> ClaimNamespace(std::string store_id);

  // The store id of the first master that answers: "" when it has none yet. kUnavailable when
  // none answered.
  awaitable<Result<std::string>> FetchNamespace();

  // In the order they will be tried next.
  const std::vector<std::string>& masters() const { return masters_; }

 private:
  HttpClient& http_;
  std::vector<std::string> masters_;
};

// The header list carrying `request_id` (empty when it is empty).
HeaderList RequestIdHeader(std::string_view request_id);

}  // namespace wharf

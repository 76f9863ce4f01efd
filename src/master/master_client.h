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

  // In the order they will be tried next.
  const std::vector<std::string>& masters() const { return masters_; }

 private:
  HttpClient& http_;
  std::vector<std::string> masters_;
};

// The header list carrying `request_id` (empty when it is empty).
HeaderList RequestIdHeader(std::string_view request_id);

}  // namespace wharf

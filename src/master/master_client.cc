#include "master/master_client.h"

#include <algorithm>

namespace wharf {

MasterClient::MasterClient(HttpClient& http, std::vector<std::string> masters)
    : http_(http), masters_(std::move(masters)) {}

HeaderList RequestIdHeader(std::string_view request_id) {
  HeaderList headers;
  if (!request_id.empty()) headers.emplace_back("X-Request-Id", std::string(request_id));
  return headers;
}

awaitable<Result<ClusterMap>> MasterClient::FetchMap(std::string_view request_id) {
  Status last = Unavailable("no master configured");
  const HeaderList headers = RequestIdHeader(request_id);
  for (size_t i = 0; i < masters_.size(); ++i) {
    const std::string m = masters_[i];
    auto r = co_await http_.Request(m, http::verb::get, "/v1/map", {}, headers);
    if (!r) {
      last = r.error();
      continue;
    }
    if (r->status != 200) {
      last = Unavailable("master " + m + " answered " + std::to_string(r->status));
      continue;
    }
    auto map = ClusterMap::Parse(r->body);
    if (!map) {
      last = map.error();
      continue;
    }
    if (i != 0) std::rotate(masters_.begin(), masters_.begin() + i, masters_.begin() + i + 1);
    co_return std::move(*map);
  }
  co_return Err(last);
}

}  // namespace wharf

#include "master/master_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

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

namespace {

// The "store_id" of a /v1/namespace answer: "" for null; nullopt for anything else.
std::optional<std::string> StoreIdOf(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto id = j.find("store_id");
  if (id == j.end()) return std::nullopt;
  if (id->is_null()) return std::string();
  if (!id->is_string()) return std::nullopt;
  return id->get<std::string>();
}

}  // namespace

awaitable<Status> MasterClient::ClaimNamespace(std::string store_id) {
  const std::string body = nlohmann::json({{"store_id", store_id}}).dump();
  Status last = Unavailable("no master configured");
  int accepted = 0;
  const std::vector<std::string> masters = masters_;  // FetchMap may reorder masters_ meanwhile
  for (const std::string& m : masters) {
    auto r = co_await http_.Request(m, http::verb::put, "/v1/namespace", body);
    if (!r) {
      last = r.error();
      continue;
    }
    if (r->status == 409) {
      auto theirs = co_await http_.Request(m, http::verb::get, "/v1/namespace");
      std::optional<std::string> id;
      if (theirs && theirs->status == 200) id = StoreIdOf(theirs->body);
      co_return Conflict(fmt::format("master {} serves metadata store {}, not {}", m,
                                     id && !id->empty() ? *id : "(another)", store_id));
    }
    if (r->status != 200) {
      last = Unavailable(fmt::format("master {} answered {} to the namespace claim", m, r->status));
      continue;
    }
    ++accepted;
  }
  if (accepted == 0) co_return last;
  co_return Status::Ok();
}

awaitable<Result<std::string>> MasterClient::FetchNamespace() {
  Status last = Unavailable("no master configured");
  const std::vector<std::string> masters = masters_;
  for (const std::string& m : masters) {
    auto r = co_await http_.Request(m, http::verb::get, "/v1/namespace");
    if (!r) {
      last = r.error();
      continue;
    }
    auto id = r->status == 200 ? StoreIdOf(r->body) : std::nullopt;
    if (!id) {
      last = Unavailable(fmt::format("master {} answered {} to /v1/namespace", m, r->status));
      continue;
    }
    co_return *id;
  }
  co_return Err(last);
}

}  // namespace wharf

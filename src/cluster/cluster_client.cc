#include "cluster/cluster_client.h"

#include "common/async.h"
#include "common/checksum.h"
#include "common/metrics.h"

namespace wharf {

ClusterClient::ClusterClient(asio::any_io_executor ex, ClusterClientOptions options)
    : ex_(ex),
      options_(std::move(options)),
      http_(ex, ClientOptions{std::chrono::seconds(3), std::chrono::seconds(60), 64}),
      log_(GetLogger("cluster")) {}

ClusterClient::~ClusterClient() = default;

void ClusterClient::Start() { asio::co_spawn(ex_, RefreshLoop(), asio::detached); }
void ClusterClient::Stop() { stopped_ = true; }

bool ClusterClient::writable() const {
  if (!map_) return false;
  for (const auto& g : map_->groups) {
    if (g.writable) return true;
  }
  return false;
}

awaitable<Status> ClusterClient::Refresh() {
  static auto& failures = Metrics().Counter("wharf_gateway_map_refresh_failures_total",
                                            "Cluster map fetches that failed on every master.");
  Status last = Unavailable("no master configured");
  // Rotate the starting master so that a dead first master costs one timeout at most once.
  for (size_t i = 0; i < options_.masters.size(); ++i) {
    const std::string& m = options_.masters[i];
    auto r = co_await http_.Request(m, http::verb::get, "/v1/map");
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
    if (i != 0)
      std::rotate(options_.masters.begin(), options_.masters.begin() + i,
                  options_.masters.begin() + i + 1);
    map_ = std::move(*map);
    co_return Status::Ok();
  }
  failures.Inc();
  co_return last;
}

awaitable<void> ClusterClient::RefreshLoop() {
  while (!stopped_) {
    Status st = co_await Refresh();
    if (!st.ok()) {
      if (auto held = refresh_log_.Admit()) {
        log_->warn("cluster map refresh failed err={}{}", st, Held(*held));
      }
    } else if (uint64_t failures = refresh_log_.Reset(); failures > 0) {
      log_->info("cluster map refresh works again after {} failures", failures);
    }
    auto wait = st.ok() ? options_.refresh : std::chrono::milliseconds(500);
    for (auto waited = std::chrono::milliseconds(0); waited < wait && !refresh_now_ && !stopped_;
         waited += std::chrono::milliseconds(100)) {
      co_await SleepFor(std::chrono::milliseconds(100));
    }
    refresh_now_ = false;
  }
}

Result<const GroupInfo*> ClusterClient::ChooseGroup(
    uint64_t size, const std::set<std::string, std::less<>>& exclude) {
  if (!map_) return Err(Unavailable("no cluster map yet (no master reachable)"));
  PlacementRequest req;
  req.policy = options_.policy;
  req.group = options_.named_group;
  req.chunk_bytes = size;
  req.exclude = exclude;
  req.round_robin_counter = &round_robin_;
  WHARF_ASSIGN_OR_RETURN(std::string id, wharf::ChooseGroup(*map_, req));
  return map_->FindGroup(id);
}

awaitable<Status> ClusterClient::PutChunkToGroup(const GroupInfo& group, const ChunkRef& ref,
                                                 std::string_view data) {
  static auto& replica_failures =
      Metrics().Counter("wharf_gateway_replica_write_failures_total",
                        "Chunk writes a group member refused or missed.");
  std::vector<awaitable<Status>> writes;
  HeaderList headers = {{"X-Wharf-Checksum", FormatChecksum(ref.checksum)}};
  std::string target = "/v1/chunks/" + ref.id;
  for (const auto& m : group.members) {
    writes.push_back([](HttpClient& http, std::string addr, std::string target,
                        std::string_view body, HeaderList headers) -> awaitable<Status> {
      auto r = co_await http.Request(addr, http::verb::put, target, body, headers, 64 * 1024);
      if (!r) co_return r.error();
      if (r->status != 200 && r->status != 201) {
        co_return Unavailable("member " + addr + " answered " + std::to_string(r->status) + " " +
                              r->body);
      }
      co_return Status::Ok();
    }(http_, m.addr, target, data, headers));
  }
  auto results = co_await WhenAll(std::move(writes));
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      replica_failures.Inc();
      refresh_now_ = true;
      log_->warn("replica write failed chunk={} group={} member={} err={}", ref.id, group.id,
                 group.members[i].id, results[i]);
      co_return results[i];
    }
  }
  co_return Status::Ok();
}

std::vector<MemberInfo> ClusterClient::ReadOrder(const std::string& group) {
  std::vector<MemberInfo> active, others;
  if (map_) {
    if (const GroupInfo* g = map_->FindGroup(group)) {
      for (const auto& m : g->members) {
        (m.state == MemberState::kActive ? active : others).push_back(m);
      }
    }
  }
  // Spread reads over the active members.
  if (!active.empty()) {
    std::rotate(active.begin(), active.begin() + (read_spread_++ % active.size()), active.end());
  }
  std::stable_partition(others.begin(), others.end(),
                        [](const MemberInfo& m) { return m.state == MemberState::kReadonly; });
  active.insert(active.end(), others.begin(), others.end());
  return active;
}

awaitable<Result<std::string>> ClusterClient::GetChunk(const ChunkRef& ref, uint64_t offset,
                                                       uint64_t len) {
  static auto& failovers = Metrics().Counter("wharf_gateway_read_failovers_total",
                                             "Chunk reads that had to try another member.");
  static auto& corrupt = Metrics().Counter("wharf_gateway_read_checksum_mismatch_total",
                                           "Chunk copies that failed their checksum.");
  if (offset > ref.size || len > ref.size - offset) co_return Err(RangeInvalid("chunk range"));
  const bool whole = offset == 0 && len == ref.size;
  auto members = ReadOrder(ref.group);
  if (members.empty()) co_return Err(Unavailable("group " + ref.group + " unknown to the map"));
  Status last = Unavailable("no member of group " + ref.group + " could serve chunk " + ref.id);
  bool all_corrupt = true;
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) failovers.Inc();
    HeaderList headers;
    if (!whole && len > 0) {
      headers.emplace_back(
          "Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + len - 1));
    }
    auto r = co_await http_.Request(members[i].addr, http::verb::get, "/v1/chunks/" + ref.id, {},
                                    headers, ref.size + 1024);
    if (!r || (r->status != 200 && r->status != 206)) {
      all_corrupt = false;
      last = r ? Unavailable("member " + members[i].addr + " answered " + std::to_string(r->status))
               : r.error();
      refresh_now_ = refresh_now_ || !r;
      continue;
    }
    if (r->body.size() != len) {
      all_corrupt = false;
      last = Unavailable("member " + members[i].addr + " returned a short chunk");
      continue;
    }
    if (whole && ChecksumOf(r->body) != ref.checksum) {
      corrupt.Inc();
      log_->error("chunk copy failed its checksum chunk={} member={}", ref.id, members[i].id);
      last = Corruption("chunk " + ref.id + " failed its checksum on " + members[i].id);
      continue;
    }
    all_corrupt = false;
    co_return std::move(r->body);
  }
  if (all_corrupt) co_return Err(Corruption("every copy of chunk " + ref.id + " is corrupt"));
  co_return Err(last);
}

awaitable<Status> ClusterClient::DeleteChunk(const ChunkRef& ref) {
  if (!map_) co_return Unavailable("no cluster map");
  const GroupInfo* g = map_->FindGroup(ref.group);
  if (!g) co_return Unavailable("group " + ref.group + " unknown to the map");
  Status result;
  for (const auto& m : g->members) {
    auto r = co_await http_.Request(m.addr, http::verb::delete_, "/v1/chunks/" + ref.id);
    if (!r || (r->status != 204 && r->status != 404)) {
      result = r ? Unavailable("member " + m.addr + " answered " + std::to_string(r->status))
                 : r.error();
    }
  }
  co_return result;
}

}  // namespace wharf

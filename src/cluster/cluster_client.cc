#include "cluster/cluster_client.h"

#include <algorithm>

#include "common/async.h"
#include "common/metrics.h"

namespace wharf {

ClusterClient::ClusterClient(asio::any_io_executor ex, ClusterClientOptions options)
    : ex_(ex),
      options_(std::move(options)),
      http_(ex, ClientOptions{options_.member_timeout, options_.member_timeout, 64,
                              options_.cluster_key}),
      masters_(http_, options_.masters),
      chunks_(http_),
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

awaitable<Status> ClusterClient::Refresh(std::string_view request_id) {
  static auto& failures = Metrics().Counter("wharf_gateway_map_refresh_failures_total",
                                            "Cluster map fetches that failed on every master.");
  auto map = co_await masters_.FetchMap(request_id);
  if (!map) {
    failures.Inc();
    co_return map.error();
  }
  map_ = std::move(*map);
  co_return Status::Ok();
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
    // Sooner while nothing is writable (members starting, a group filled): writes are
    // waiting for the first map that shows a writable group.
    auto wait = !st.ok()     ? std::chrono::milliseconds(500)
                : writable() ? options_.refresh
                             : std::chrono::milliseconds(200);
    for (auto waited = std::chrono::milliseconds(0); waited < wait && !refresh_now_ && !stopped_;
         waited += std::chrono::milliseconds(100)) {
      co_await SleepFor(std::chrono::milliseconds(100));
    }
    refresh_now_ = false;
  }
}

void ClusterClient::Suspect(const MemberInfo& m) {
  static auto& suspects = Metrics().Counter(
      "wharf_gateway_member_suspects_total",
      "Times a member failed or was slow and was put last for reads and writes for a while.");
  suspects.Inc();
  refresh_now_ = true;
  suspect_until_[m.addr] = std::chrono::steady_clock::now() + options_.suspect_for;
}

bool ClusterClient::IsSuspect(const std::string& addr) {
  auto it = suspect_until_.find(addr);
  if (it == suspect_until_.end()) return false;
  if (it->second > std::chrono::steady_clock::now()) return true;
  suspect_until_.erase(it);
  return false;
}

std::vector<MemberInfo> ClusterClient::ReadMembers(const ChunkRef& ref) {
  std::vector<MemberInfo> members;
  if (map_) {
    if (const GroupInfo* g = map_->FindGroup(ref.group)) members = ReadOrder(*g, read_spread_++);
  }
  std::stable_partition(members.begin(), members.end(),
                        [this](const MemberInfo& m) { return !IsSuspect(m.addr); });
  return members;
}

ReadPolicy ClusterClient::Policy() {
  ReadPolicy p;
  if (options_.read_hedge.count() > 0) {
    p.hedge = options_.read_hedge;
  } else if (options_.read_hedge.count() == 0) {
    p.hedge = options_.member_timeout / 4;
  }  // else never: ReadPolicy::hedge 0
  p.on_failure = [this](const MemberInfo& m) { Suspect(m); };
  p.buffers = options_.read_buffers;
  return p;
}

Result<GroupInfo> ClusterClient::ChooseGroup(uint64_t size,
                                             const std::set<std::string, std::less<>>& exclude,
                                             std::string_view /*request_id: no network call*/) {
  if (!map_) return Err(Unavailable("no cluster map yet (no master reachable)"));
  // A group with a suspect member is chosen only when no other will do.
  std::set<std::string, std::less<>> avoid = exclude;
  for (const auto& g : map_->groups) {
    for (const auto& m : g.members) {
      if (IsSuspect(m.addr)) avoid.insert(g.id);
    }
  }
  if (avoid.size() > exclude.size()) {
    if (auto g = ChooseGroupAmong(size, avoid)) return g;
  }
  return ChooseGroupAmong(size, exclude);
}

Result<GroupInfo> ClusterClient::ChooseGroupAmong(
    uint64_t size, const std::set<std::string, std::less<>>& exclude) {
  PlacementRequest req;
  req.policy = options_.policy;
  req.group = options_.named_group;
  req.chunk_bytes = size;
  req.exclude = exclude;
  req.round_robin_counter = &round_robin_;
  WHARF_ASSIGN_OR_RETURN(std::string id, wharf::ChooseGroup(*map_, req));
  const GroupInfo* g = map_->FindGroup(id);
  if (g == nullptr) return Err(Internal("placement chose a group not in the map: " + id));
  return *g;
}

awaitable<Status> ClusterClient::PutChunkToGroup(GroupInfo group, ChunkRef ref,
                                                 std::string_view data,
                                                 std::string_view request_id) {
  static auto& replica_failures =
      Metrics().Counter("wharf_gateway_replica_write_failures_total",
                        "Chunk writes a group member refused or missed.");
  std::vector<awaitable<Status>> writes;
  for (const auto& m : group.members) {
    writes.push_back(chunks_.Put(m.addr, ref.id, ref.checksum, data, request_id));
  }
  auto results = co_await WhenAll(std::move(writes));
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      replica_failures.Inc();
      Suspect(group.members[i]);
      log_->warn("replica write failed chunk={} group={} member={} err={}", ref.id, group.id,
                 group.members[i].id, results[i]);
      co_return results[i];
    }
  }
  co_return Status::Ok();
}

awaitable<Result<std::string>> ClusterClient::GetChunk(ChunkRef ref, uint64_t offset, uint64_t len,
                                                       std::string_view request_id) {
  std::vector<MemberInfo> members = ReadMembers(ref);
  ChunkClient* chunks = &chunks_;
  const uint64_t max_body = ref.size + 1024;
  const std::string id = ref.id;
  const std::string rid(request_id);  // a hedged read may outlive this call
  MemberRead read = [chunks, id, max_body, rid](const MemberInfo& m, uint64_t off, uint64_t n,
                                                bool whole) {
    return chunks->Get(m.addr, id, off, whole ? 0 : n, max_body, rid);
  };
  co_return co_await ReadWithFailover(std::move(members), std::move(ref), offset, len, read,
                                      Policy());
}

std::shared_ptr<PreparedRead> ClusterClient::PrepareRead(const ChunkRef& ref) {
  LocalMembers* local = options_.local_members.get();
  if (local == nullptr) return nullptr;
  for (auto& m : ReadMembers(ref)) {  // the first local member in read order
    if (local->Serves(m.id)) {
      return PrepareLocalCopy(ex_, std::move(m), ref, options_.local_members,
                              options_.read_buffers);
    }
  }
  return nullptr;
}

awaitable<Status> ClusterClient::StreamChunk(ChunkRef ref, uint64_t offset, uint64_t len,
                                             ChunkSink sink, std::string_view request_id,
                                             std::shared_ptr<PreparedRead> prepared) {
  std::vector<MemberInfo> members = ReadMembers(ref);
  if (LocalMembers* local = options_.local_members.get()) {
    // Members in this process first (their copies cost no network), each in read order.
    std::vector<MemberInfo> here, remote;
    for (auto& m : members) (local->Serves(m.id) ? here : remote).push_back(std::move(m));
    members = std::move(remote);
    if (!here.empty()) {
      LocalReadResult r = co_await StreamLocalCopies(std::move(here), ref, offset, len, local, sink,
                                                     options_.read_buffers, std::move(prepared));
      if (r.final || members.empty()) co_return r.status;
      ReadFailoverCounter().Inc();  // from the last local member to the first remote one
    }
  }
  ChunkClient* chunks = &chunks_;
  const std::string id = ref.id;
  const std::string rid(request_id);
  MemberOpen open = [chunks, id, rid](const MemberInfo& m) {
    return chunks->OpenGet(m.addr, id, rid);
  };
  co_return co_await StreamWithFailover(std::move(members), std::move(ref), offset, len, open, sink,
                                        Policy());
}

awaitable<Status> ClusterClient::DeleteChunk(ChunkRef ref, std::string_view request_id) {
  if (!map_) co_return Unavailable("no cluster map");
  const GroupInfo* g = map_->FindGroup(ref.group);
  if (!g) co_return Unavailable("group " + ref.group + " unknown to the map");
  const std::vector<MemberInfo> members = g->members;  // the map may be replaced meanwhile
  Status result;
  for (const auto& m : members) {
    auto r = co_await chunks_.Delete(m.addr, ref.id, request_id);
    if (!r) result = r.error();
  }
  co_return result;
}

awaitable<Result<InventoryPage>> ClusterClient::ListMemberChunks(MemberInfo member,
                                                                 std::string after, size_t limit,
                                                                 std::string_view request_id) {
  co_return co_await chunks_.List(member.addr, std::move(after), limit, request_id);
}

awaitable<Result<bool>> ClusterClient::DeleteMemberChunk(MemberInfo member, std::string id,
                                                         std::string_view request_id) {
  co_return co_await chunks_.Delete(member.addr, std::move(id), request_id);
}

}  // namespace wharf

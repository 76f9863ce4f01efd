#include "fakes/fake_chunk_cluster.h"

#include <algorithm>
#include <stdexcept>

#include "common/async.h"
#include "common/checksum.h"

namespace wharf {

void FakeChunkCluster::AddGroup(const std::string& group,
                                const std::vector<std::string>& member_ids) {
  auto& ids = groups_[group];
  for (const auto& id : member_ids) {
    ids.push_back(id);
    members_[id].group = group;
  }
  std::sort(ids.begin(), ids.end());
}

FakeMemberFaults& FakeChunkCluster::faults(const std::string& member_id) {
  auto it = members_.find(member_id);
  if (it == members_.end()) throw std::logic_error("unknown fake member " + member_id);
  return it->second.faults;
}

std::optional<std::string> FakeChunkCluster::Copy(const std::string& member_id,
                                                  const std::string& chunk_id) const {
  auto m = members_.find(member_id);
  if (m == members_.end()) return std::nullopt;
  auto c = m->second.copies.find(chunk_id);
  if (c == m->second.copies.end()) return std::nullopt;
  return c->second.data;
}

size_t FakeChunkCluster::CopyCount(const std::string& member_id) const {
  auto m = members_.find(member_id);
  return m == members_.end() ? 0 : m->second.copies.size();
}

void FakeChunkCluster::PutCopyForTest(const std::string& member_id, const std::string& chunk_id,
                                      std::string data, int64_t mtime_unix) {
  members_.at(member_id).copies[chunk_id] = StoredCopy{std::move(data), mtime_unix};
}

uint64_t FakeChunkCluster::calls(const std::string& member_id) const {
  auto m = members_.find(member_id);
  return m == members_.end() ? 0 : m->second.calls;
}

void FakeChunkCluster::NoteRequestId(std::string_view request_id) {
  if (!request_id.empty()) request_ids_.emplace_back(request_id);
}

awaitable<Status> FakeChunkCluster::Refresh(std::string_view request_id) {
  NoteRequestId(request_id);
  co_return has_map_ ? Status::Ok() : Unavailable("fake: no master");
}

std::optional<ClusterMap> FakeChunkCluster::map() const {
  if (!has_map_) return std::nullopt;
  ClusterMap map;
  map.version = 1;
  for (const auto& [group, ids] : groups_) {
    GroupInfo g;
    g.id = group;
    g.writable = true;
    for (const auto& id : ids) {
      const Member& m = members_.at(id);
      MemberInfo info;
      info.id = id;
      info.addr = "fake-" + id + ":1";
      info.state = m.faults.offline ? MemberState::kOffline : MemberState::kActive;
      info.capacity = 1ull << 40;
      info.free = 1ull << 40;
      info.chunks = m.copies.size();
      g.writable = g.writable && !m.faults.offline;
      g.members.push_back(std::move(info));
    }
    map.groups.push_back(std::move(g));
  }
  return map;
}

bool FakeChunkCluster::writable() const {
  auto m = map();
  if (!m) return false;
  return std::any_of(m->groups.begin(), m->groups.end(),
                     [](const GroupInfo& g) { return g.writable; });
}

Result<GroupInfo> FakeChunkCluster::ChooseGroup(uint64_t /*size*/,
                                                const std::set<std::string, std::less<>>& exclude,
                                                std::string_view request_id) {
  NoteRequestId(request_id);
  auto m = map();
  if (!m) return Err(Unavailable("fake: no map"));
  for (auto& g : m->groups) {
    if (g.writable && !exclude.count(g.id)) return std::move(g);
  }
  return Err(Unavailable("fake: no writable group"));
}

awaitable<Status> FakeChunkCluster::Reach(std::string member_id) {
  auto it = members_.find(member_id);
  if (it == members_.end()) co_return Unavailable("fake: unknown member " + member_id);
  ++it->second.calls;
  const FakeMemberFaults f = it->second.faults;
  if (f.offline || f.unreachable) co_return Unavailable("fake: member " + member_id + " is down");
  if (f.delay.count() > 0) co_await SleepFor(f.delay);
  co_return Status::Ok();
}

awaitable<Status> FakeChunkCluster::PutOne(std::string member_id, ChunkRef ref,
                                           std::string_view data) {
  WHARF_CO_RETURN_IF_ERROR(co_await Reach(member_id));
  Member& m = members_.at(member_id);
  if (m.faults.fail_put) co_return Unavailable("fake: member " + member_id + " refused the put");
  if (m.faults.fail_mid_chunk) {
    m.partial[ref.id] = std::string(data.substr(0, data.size() / 2));
    co_return Unavailable("fake: member " + member_id + " failed mid-chunk");
  }
  m.copies[ref.id] = StoredCopy{std::string(data), ++clock_};
  co_return Status::Ok();
}

awaitable<Status> FakeChunkCluster::PutChunkToGroup(GroupInfo group, ChunkRef ref,
                                                    std::string_view data,
                                                    std::string_view request_id) {
  NoteRequestId(request_id);
  ++puts_in_flight_;
  max_puts_in_flight_ = std::max(max_puts_in_flight_, puts_in_flight_);
  std::vector<awaitable<Status>> puts;
  for (const auto& m : group.members) puts.push_back(PutOne(m.id, ref, data));
  auto results = co_await WhenAll(std::move(puts));
  --puts_in_flight_;
  Status result;
  for (const auto& st : results) {
    if (!st.ok()) {
      result = st;
      break;
    }
  }
  put_attempts_.push_back(PutAttempt{group.id, ref.id, result.ok()});
  co_return result;
}

awaitable<Result<std::string>> FakeChunkCluster::ReadOne(std::string member_id,
                                                         std::string chunk_id, uint64_t offset,
                                                         uint64_t len, bool whole) {
  WHARF_CO_RETURN_IF_ERROR(co_await Reach(member_id));
  const Member& m = members_.at(member_id);
  auto it = m.copies.find(chunk_id);
  if (it == m.copies.end()) co_return Err(Unavailable("fake: member answered 404"));
  std::string data = it->second.data;
  if (m.faults.corrupt && !data.empty()) data[data.size() / 2] ^= 0x5a;
  if (whole) co_return data;
  if (offset > data.size()) co_return Err(Unavailable("fake: member answered 416"));
  co_return data.substr(offset, len);
}

awaitable<Result<std::string>> FakeChunkCluster::GetChunk(ChunkRef ref, uint64_t offset,
                                                          uint64_t len,
                                                          std::string_view request_id) {
  NoteRequestId(request_id);
  std::vector<MemberInfo> members;
  if (auto m = map()) {
    if (const GroupInfo* g = m->FindGroup(ref.group)) members = ReadOrder(*g, read_spread_++);
  }
  FakeChunkCluster* self = this;
  const std::string id = ref.id;
  MemberRead read = [self, id](const MemberInfo& m, uint64_t off, uint64_t n, bool whole) {
    return self->ReadOne(m.id, id, off, n, whole);
  };
  co_return co_await ReadWithFailover(std::move(members), std::move(ref), offset, len, read,
                                      ReadPolicy{});
}

awaitable<Status> FakeChunkCluster::DeleteChunk(ChunkRef ref, std::string_view request_id) {
  NoteRequestId(request_id);
  auto g = groups_.find(ref.group);
  if (g == groups_.end()) co_return Unavailable("fake: group " + ref.group + " unknown");
  const std::vector<std::string> ids = g->second;
  Status result;
  for (const auto& id : ids) {
    Status st = co_await Reach(id);
    if (!st.ok()) {
      result = st;
      continue;
    }
    members_.at(id).copies.erase(ref.id);
  }
  co_return result;
}

awaitable<Result<InventoryPage>> FakeChunkCluster::ListMemberChunks(MemberInfo member,
                                                                    std::string after, size_t limit,
                                                                    std::string_view request_id) {
  NoteRequestId(request_id);
  WHARF_CO_RETURN_IF_ERROR(co_await Reach(member.id));
  const Member& m = members_.at(member.id);
  InventoryPage page;
  for (auto it = m.copies.upper_bound(after); it != m.copies.end(); ++it) {
    if (page.chunks.size() == limit) {
      page.next = page.chunks.back().id;
      break;
    }
    page.chunks.push_back(InventoryEntry{it->first, it->second.data.size(),
                                         ChecksumOf(it->second.data), it->second.mtime_unix});
  }
  co_return page;
}

awaitable<Result<bool>> FakeChunkCluster::DeleteMemberChunk(MemberInfo member, std::string id,
                                                            std::string_view request_id) {
  NoteRequestId(request_id);
  WHARF_CO_RETURN_IF_ERROR(co_await Reach(member.id));
  co_return members_.at(member.id).copies.erase(id) > 0;
}

}  // namespace wharf

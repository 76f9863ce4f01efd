#include "master/topology.h"

#include <fmt/format.h>

#include <utility>

#include "common/fs.h"
#include "common/json_fields.h"
#include "common/metrics.h"

namespace wharf {
namespace {

using json_fields::GetArray;
using json_fields::GetString;
using json_fields::GetUint;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kMembersFileFormat = 1;
constexpr char kMembersFile[] = "members.json";

CounterMetric& HeartbeatsTotal() {
  static auto& c = Metrics().Counter("wharf_master_heartbeats_total", "Heartbeats accepted.");
  return c;
}
CounterMetric& HeartbeatsRejectedTotal() {
  static auto& c = Metrics().Counter("wharf_master_heartbeats_rejected_total",
                                     "Heartbeats rejected (malformed or conflicting).");
  return c;
}
CounterMetric& PersistErrorsTotal() {
  static auto& c = Metrics().Counter("wharf_master_persist_errors_total",
                                     "Failed writes of the persisted member list.");
  return c;
}

// The map's gauges, set here only (each series once: wharf_master_members has one series per
// state, so its sum is the number of members).
void PublishGauges(const ClusterMap& map) {
  size_t writable = 0;
  std::map<MemberState, size_t> by_state{{MemberState::kSyncing, 0},
                                         {MemberState::kActive, 0},
                                         {MemberState::kReadonly, 0},
                                         {MemberState::kOffline, 0}};
  for (const GroupInfo& g : map.groups) {
    writable += g.writable ? 1 : 0;
    for (const MemberInfo& m : g.members) by_state[m.state]++;
    Metrics()
        .Gauge("wharf_master_group_chunks_under_replicated",
               "Chunk copies the group's members lack, as they report them (0 in steady state).",
               {{"group", g.id}})
        .Set(g.under_replicated);
  }
  Metrics().Gauge("wharf_master_groups", "Groups known.").Set(map.groups.size());
  Metrics().Gauge("wharf_master_groups_writable", "Groups taking writes.").Set(writable);
  for (const auto& [state, n] : by_state) {
    Metrics()
        .Gauge("wharf_master_members", "Members by published state.",
               {{"state", std::string(MemberStateName(state))}})
        .Set(n);
  }
  Metrics()
      .Gauge("wharf_master_members_offline", "Members offline.")
      .Set(by_state[MemberState::kOffline]);
}

// One persisted member of members.json.
struct PersistedMember {
  std::string group;
  std::string id;
  std::string addr;
};

Result<PersistedMember> PersistedMemberFromJson(const json& j) {
  PersistedMember m;
  WHARF_ASSIGN_OR_RETURN(m.group, GetString(j, "group"));
  if (Status st = ValidateId("group", m.group); !st.ok()) return Err(st);
  WHARF_ASSIGN_OR_RETURN(m.id, GetString(j, "id"));
  if (Status st = ValidateId("id", m.id); !st.ok()) return Err(st);
  WHARF_ASSIGN_OR_RETURN(m.addr, GetString(j, "addr"));
  if (Status st = ValidateAddr(m.addr); !st.ok()) return Err(st);
  return m;
}

struct PersistedRemoved {
  std::string group;
  std::string id;
  int64_t at_ms = 0;
};

struct MembersFile {
  std::vector<PersistedMember> members;
  std::vector<PersistedRemoved> removed;
};

// At most this many entries in a members file or a peer's roster: far more than any cluster,
// and a bound on what a hostile peer can make this master hold.
constexpr size_t kMaxFileEntries = 100000;

Result<MembersFile> ParseMembersFile(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err(InvalidArgument("not valid JSON"));
  WHARF_ASSIGN_OR_RETURN(uint64_t format, GetUint(j, "format"));
  if (format != kMembersFileFormat) {
    return Err(InvalidArgument(fmt::format("unknown format {}", format)));
  }
  WHARF_ASSIGN_OR_RETURN(const json* members, GetArray(j, "members"));
  if (members->size() > kMaxFileEntries) return Err(InvalidArgument("too many members"));
  MembersFile out;
  for (const json& mj : *members) {
    WHARF_ASSIGN_OR_RETURN(PersistedMember m, PersistedMemberFromJson(mj));
    out.members.push_back(std::move(m));
  }
  if (j.contains("removed")) {
    WHARF_ASSIGN_OR_RETURN(const json* removed, GetArray(j, "removed"));
    if (removed->size() > kMaxFileEntries) return Err(InvalidArgument("too many removed"));
    for (const json& rj : *removed) {
      PersistedRemoved r;
      WHARF_ASSIGN_OR_RETURN(r.group, GetString(rj, "group"));
      if (Status st = ValidateId("group", r.group); !st.ok()) return Err(st);
      WHARF_ASSIGN_OR_RETURN(r.id, GetString(rj, "id"));
      if (Status st = ValidateId("id", r.id); !st.ok()) return Err(st);
      WHARF_ASSIGN_OR_RETURN(uint64_t at, GetUint(rj, "at_ms", 0));
      r.at_ms = static_cast<int64_t>(std::min<uint64_t>(at, INT64_MAX));
      out.removed.push_back(std::move(r));
    }
  }
  return out;
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status Topology::Options::Validate() const {
  if (chunk_size == 0) return InvalidArgument("master chunk size must be > 0");
  if (!(readonly_after_intervals > 0) || !(offline_after_intervals > readonly_after_intervals)) {
    return InvalidArgument("master needs 0 < readonly_after_intervals < offline_after_intervals");
  }
  return Status::Ok();
}

Topology::Topology(Options options, Clock clock)
    : options_(std::move(options)),
      clock_(std::move(clock)),
      log_(GetLogger("master")),
      version_(options_.first_version > 0 ? options_.first_version - 1 : 0) {}

Status Topology::Load() {
  if (options_.data_dir.empty()) return Status::Ok();
  const std::string path = options_.data_dir + "/" + kMembersFile;
  auto text = ReadFile(path);
  if (!text) {
    if (text.error().code() == Code::kNotFound) return Status::Ok();
    return text.error();
  }
  auto parsed = ParseMembersFile(*text);
  if (!parsed) return Corruption(fmt::format("{}: {}", path, parsed.error().message()));
  std::lock_guard lock(mutex_);
  for (PersistedMember& pm : parsed->members) {
    auto [it, inserted] = members_.try_emplace(pm.id);
    if (!inserted) continue;  // already heard from, or a duplicate line: keep the first
    it->second.group = std::move(pm.group);
    it->second.addr = std::move(pm.addr);
  }
  for (PersistedRemoved& r : parsed->removed) {
    if (members_.count(r.id)) continue;  // came back as a new member since
    removed_[r.id] = Removed{std::move(r.group), r.at_ms};
  }
  log_->info("loaded members path={} members={} removed={}", path, parsed->members.size(),
             parsed->removed.size());
  return Status::Ok();
}

Status Topology::Heartbeat(const HeartbeatReport& report) {
  if (Status st = report.Validate(); !st.ok()) {
    HeartbeatsRejectedTotal().Inc();
    return st;
  }
  std::lock_guard lock(mutex_);
  auto [it, inserted] = members_.try_emplace(report.id);
  Member& m = it->second;
  if (!inserted && m.group != report.group) {
    HeartbeatsRejectedTotal().Inc();
    log_->warn("heartbeat conflict id={} group={} claimed_group={} addr={}", report.id, m.group,
               report.group, report.addr);
    return Conflict(
        fmt::format("member {} belongs to group {}, not {}", report.id, m.group, report.group));
  }
  bool changed = inserted || m.addr != report.addr;
  if (inserted) {
    log_->info("new member id={} group={} addr={}", report.id, report.group, report.addr);
    if (removed_.erase(report.id) == 0) {
      // A new member replaces the oldest decommissioned one of its group, if any: the group
      // is back to the size it had.
      auto oldest = removed_.end();
      for (auto r = removed_.begin(); r != removed_.end(); ++r) {
        if (r->second.group != report.group) continue;
        if (oldest == removed_.end() || r->second.at_ms < oldest->second.at_ms) oldest = r;
      }
      if (oldest != removed_.end()) removed_.erase(oldest);
    }
  } else if (changed) {
    log_->info("member address changed id={} old={} new={}", report.id, m.addr, report.addr);
  }
  m.group = report.group;
  m.addr = report.addr;
  m.heard = true;
  m.last_heartbeat = clock_();
  m.last = report;
  m.last.roster.clear();  // not kept: merged below
  for (const RosterEntry& e : report.roster) {
    if (e.id != report.id) changed |= AddRosterEntryLocked(report.group, e);
  }
  HeartbeatsTotal().Inc();
  if (changed || persist_pending_) PersistLocked().IgnoreError();  // logged and counted
  return Status::Ok();
}

MemberState Topology::StateLocked(const Member& m, SteadyClock::time_point now) const {
  if (!m.heard) return MemberState::kOffline;
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(now - m.last_heartbeat).count();
  const double interval_ms = static_cast<double>(m.last.interval_ms);
  if (elapsed_ms >= options_.offline_after_intervals * interval_ms) return MemberState::kOffline;
  if (elapsed_ms > options_.readonly_after_intervals * interval_ms) return MemberState::kReadonly;
  return m.last.state;
}

ClusterMap Topology::Snapshot() {
  std::lock_guard lock(mutex_);
  const SteadyClock::time_point now = clock_();
  std::map<std::string, GroupInfo> groups;
  for (const auto& [id, m] : members_) {  // by id, so members come out sorted
    GroupInfo& g = groups[m.group];
    g.id = m.group;
    MemberInfo info{.id = id, .addr = m.addr, .state = StateLocked(m, now)};
    if (m.heard) {
      info.capacity = m.last.capacity;
      info.free = m.last.free;
      info.reserve = m.last.reserve;
      info.chunks = m.last.chunks;
      info.busy = m.last.busy;
      info.missing = m.last.missing;
    }
    g.members.push_back(std::move(info));
  }
  ClusterMap map;
  for (const auto& [id, r] : removed_) {
    auto g = groups.find(r.group);
    if (g != groups.end()) g->second.removed.push_back(id);  // by id: sorted
  }
  for (auto& [id, g] : groups) {
    bool all_active = true;
    for (const MemberInfo& m : g.members) {
      all_active &= m.state == MemberState::kActive;
      if (m.state != MemberState::kOffline) g.under_replicated += m.missing;
    }
    g.writable = all_active && g.MinAvailable() >= options_.chunk_size;
    map.groups.push_back(std::move(g));
  }
  std::string content = map.ToJson(/*full=*/true).dump();
  if (content != last_published_) {
    ++version_;
    last_published_ = std::move(content);
    PublishGauges(map);
  }
  map.version = version_;
  return map;
}

Status Topology::PersistHealth() {
  std::lock_guard lock(mutex_);
  if (persist_error_.ok()) return Status::Ok();
  return Unavailable(fmt::format("cannot save {}/{}: {}", options_.data_dir, kMembersFile,
                                 persist_error_.ToString()));
}

Status Topology::ForgetMember(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = members_.find(id);
  if (it == members_.end()) return NotFound(fmt::format("unknown member {}", id));
  log_->info("forgetting member id={} group={} addr={}", id, it->second.group, it->second.addr);
  removed_[id] = Removed{it->second.group, WallMs()};
  members_.erase(it);
  return PersistLocked();
}

bool Topology::AddRosterEntryLocked(const std::string& group, const RosterEntry& entry) {
  if (removed_.count(entry.id)) return false;  // decommissioned: a stale roster
  auto it = members_.find(entry.id);
  if (it != members_.end()) {
    if (it->second.group != group) {
      log_->warn("roster names a member of another group id={} group={} roster_group={}", entry.id,
                 it->second.group, group);
    }
    return false;
  }
  log_->info("member learned from a roster id={} group={} addr={} (offline until it reports)",
             entry.id, group, entry.addr);
  Member& m = members_[entry.id];
  m.group = group;
  m.addr = entry.addr;
  return true;
}

void Topology::RosterOf(const std::string& group, std::vector<RosterEntry>* roster,
                        std::vector<std::string>* removed) {
  std::lock_guard lock(mutex_);
  for (const auto& [id, m] : members_) {
    if (m.group == group && roster->size() < kMaxRosterEntries) {
      roster->push_back({id, m.addr});
    }
  }
  for (const auto& [id, r] : removed_) {
    if (r.group == group && removed->size() < kMaxRosterEntries) removed->push_back(id);
  }
}

json Topology::ExportRoster() {
  std::lock_guard lock(mutex_);
  return RosterDocLocked();
}

Status Topology::MergePeerRoster(std::string_view text) {
  auto parsed = ParseMembersFile(text);
  if (!parsed) return InvalidArgument("peer roster: " + parsed.error().message());
  std::lock_guard lock(mutex_);
  const SteadyClock::time_point now = clock_();
  bool changed = false;
  for (const PersistedRemoved& r : parsed->removed) {
    auto known = removed_.find(r.id);
    if (known != removed_.end() && known->second.at_ms >= r.at_ms) continue;
    auto it = members_.find(r.id);
    if (it != members_.end()) {
      // Heard from since (or not known as removed): it is a member here, the peer is stale.
      if (StateLocked(it->second, now) != MemberState::kOffline) continue;
      log_->info("member decommissioned on a peer master, forgetting id={} group={}", r.id,
                 it->second.group);
      members_.erase(it);
    }
    removed_[r.id] = Removed{r.group, r.at_ms};
    changed = true;
  }
  for (const PersistedMember& pm : parsed->members) {
    changed |= AddRosterEntryLocked(pm.group, RosterEntry{pm.id, pm.addr});
  }
  if (changed || persist_pending_) PersistLocked().IgnoreError();  // logged and counted
  return Status::Ok();
}

json Topology::RosterDocLocked() const {
  json members = json::array();
  for (const auto& [id, m] : members_) {
    members.push_back({{"group", m.group}, {"id", id}, {"addr", m.addr}});
  }
  json removed = json::array();
  for (const auto& [id, r] : removed_) {
    removed.push_back({{"group", r.group}, {"id", id}, {"at_ms", r.at_ms}});
  }
  return {{"format", kMembersFileFormat},
          {"members", std::move(members)},
          {"removed", std::move(removed)}};
}

Status Topology::PersistLocked() {
  if (options_.data_dir.empty()) return Status::Ok();
  const json doc = RosterDocLocked();
  const std::string path = options_.data_dir + "/" + kMembersFile;
  Status st = MakeDirs(options_.data_dir);
  if (st.ok()) st = WriteFileAtomic(path, doc.dump(2) + "\n");
  persist_pending_ = !st.ok();
  persist_error_ = st;
  if (!st.ok()) {
    PersistErrorsTotal().Inc();
    log_->warn("persisting members failed path={} err={} (will retry)", path, st);
  }
  return st;
}

}  // namespace wharf

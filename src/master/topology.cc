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

Result<std::vector<PersistedMember>> ParseMembersFile(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err(InvalidArgument("not valid JSON"));
  WHARF_ASSIGN_OR_RETURN(uint64_t format, GetUint(j, "format"));
  if (format != kMembersFileFormat) {
    return Err(InvalidArgument(fmt::format("unknown format {}", format)));
  }
  WHARF_ASSIGN_OR_RETURN(const json* members, GetArray(j, "members"));
  std::vector<PersistedMember> out;
  for (const json& mj : *members) {
    WHARF_ASSIGN_OR_RETURN(PersistedMember m, PersistedMemberFromJson(mj));
    out.push_back(std::move(m));
  }
  return out;
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
  for (PersistedMember& pm : *parsed) {
    auto [it, inserted] = members_.try_emplace(pm.id);
    if (!inserted) continue;  // already heard from, or a duplicate line: keep the first
    it->second.group = std::move(pm.group);
    it->second.addr = std::move(pm.addr);
  }
  log_->info("loaded members path={} members={}", path, parsed->size());
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
  } else if (changed) {
    log_->info("member address changed id={} old={} new={}", report.id, m.addr, report.addr);
  }
  m.group = report.group;
  m.addr = report.addr;
  m.heard = true;
  m.last_heartbeat = clock_();
  m.last = report;
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
    }
    g.members.push_back(std::move(info));
  }
  ClusterMap map;
  for (auto& [id, g] : groups) {
    bool all_active = true;
    for (const MemberInfo& m : g.members) all_active &= m.state == MemberState::kActive;
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
  members_.erase(it);
  return PersistLocked();
}

Status Topology::PersistLocked() {
  if (options_.data_dir.empty()) return Status::Ok();
  json members = json::array();
  for (const auto& [id, m] : members_) {
    members.push_back({{"group", m.group}, {"id", id}, {"addr", m.addr}});
  }
  json doc = {{"format", kMembersFileFormat}, {"members", std::move(members)}};
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

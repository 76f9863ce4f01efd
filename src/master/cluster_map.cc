#include "master/cluster_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "common/json_fields.h"

namespace wharf {
namespace {

using json_fields::GetArray;
using json_fields::GetBool;
using json_fields::GetString;
using json_fields::GetUint;
using nlohmann::json;

constexpr size_t kMaxIdLength = 64;
constexpr size_t kMaxAddrLength = 255;

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsAddrChar(char c) { return IsIdChar(c) || c == ':' || c == '[' || c == ']'; }

json MemberToJson(const MemberInfo& m, bool full) {
  json j = {{"id", m.id},
            {"addr", m.addr},
            {"state", MemberStateName(m.state)},
            {"capacity", m.capacity},
            {"free", m.free},
            {"chunks", m.chunks},
            {"missing", m.missing}};
  if (full) {
    j["reserve"] = m.reserve;
    j["busy"] = m.busy;
  }
  return j;
}

Result<MemberInfo> MemberFromJson(const json& j) {
  MemberInfo m;
  WHARF_ASSIGN_OR_RETURN(m.id, GetString(j, "id"));
  if (Status st = ValidateId("member id", m.id); !st.ok()) return Err(st);
  WHARF_ASSIGN_OR_RETURN(m.addr, GetString(j, "addr"));
  if (Status st = ValidateAddr(m.addr); !st.ok()) return Err(st);
  WHARF_ASSIGN_OR_RETURN(std::string state, GetString(j, "state"));
  WHARF_ASSIGN_OR_RETURN(m.state, ParseMemberState(state));
  WHARF_ASSIGN_OR_RETURN(m.capacity, GetUint(j, "capacity"));
  WHARF_ASSIGN_OR_RETURN(m.free, GetUint(j, "free"));
  WHARF_ASSIGN_OR_RETURN(m.chunks, GetUint(j, "chunks"));
  WHARF_ASSIGN_OR_RETURN(m.reserve, GetUint(j, "reserve", 0));
  WHARF_ASSIGN_OR_RETURN(m.busy, GetUint(j, "busy", 0));
  WHARF_ASSIGN_OR_RETURN(m.missing, GetUint(j, "missing", 0));
  return m;
}

Result<GroupInfo> GroupFromJson(const json& j, std::set<std::string>* member_ids) {
  GroupInfo g;
  WHARF_ASSIGN_OR_RETURN(g.id, GetString(j, "id"));
  if (Status st = ValidateId("group id", g.id); !st.ok()) return Err(st);
  WHARF_ASSIGN_OR_RETURN(g.writable, GetBool(j, "writable"));
  WHARF_ASSIGN_OR_RETURN(g.under_replicated, GetUint(j, "under_replicated", 0));
  if (j.contains("removed")) {
    WHARF_ASSIGN_OR_RETURN(const json* removed, GetArray(j, "removed"));
    for (const json& id : *removed) {
      if (!id.is_string()) return Err(InvalidArgument("removed ids must be strings"));
      std::string s = id.get<std::string>();
      if (Status st = ValidateId("removed member id", s); !st.ok()) return Err(st);
      g.removed.push_back(std::move(s));
    }
    std::sort(g.removed.begin(), g.removed.end());
  }
  WHARF_ASSIGN_OR_RETURN(const json* members, GetArray(j, "members"));
  for (const json& mj : *members) {
    auto m = MemberFromJson(mj);
    if (!m) {
      return Err(InvalidArgument(fmt::format("group {}: {}", g.id, m.error().message())));
    }
    if (!member_ids->insert(m->id).second) {
      return Err(InvalidArgument(fmt::format("duplicate member id {}", m->id)));
    }
    g.members.push_back(std::move(*m));
  }
  std::sort(g.members.begin(), g.members.end(),
            [](const MemberInfo& a, const MemberInfo& b) { return a.id < b.id; });
  return g;
}

}  // namespace

std::string_view MemberStateName(MemberState state) {
  switch (state) {
    case MemberState::kSyncing:
      return "syncing";
    case MemberState::kActive:
      return "active";
    case MemberState::kReadonly:
      return "readonly";
    case MemberState::kOffline:
      return "offline";
  }
  return "offline";
}

Result<MemberState> ParseMemberState(std::string_view name) {
  for (MemberState s : {MemberState::kSyncing, MemberState::kActive, MemberState::kReadonly,
                        MemberState::kOffline}) {
    if (name == MemberStateName(s)) return s;
  }
  return Err(InvalidArgument(fmt::format("unknown member state \"{}\"",
                                         name.substr(0, std::min<size_t>(name.size(), 32)))));
}

Status ValidateId(std::string_view what, std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength || !std::all_of(id.begin(), id.end(), IsIdChar)) {
    return InvalidArgument(
        fmt::format("{} must be 1..{} characters of [A-Za-z0-9._-]", what, kMaxIdLength));
  }
  return Status::Ok();
}

Status ValidateAddr(std::string_view addr) {
  Status bad =
      InvalidArgument(fmt::format("addr must be host:port, at most {} characters", kMaxAddrLength));
  if (addr.size() > kMaxAddrLength || !std::all_of(addr.begin(), addr.end(), IsAddrChar)) {
    return bad;
  }
  size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad;
  std::string_view port = addr.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return bad;
  }
  return Status::Ok();
}

uint64_t GroupInfo::MinAvailable() const {
  if (members.empty()) return 0;
  uint64_t min = UINT64_MAX;
  for (const MemberInfo& m : members) min = std::min(min, m.Available());
  return min;
}

uint64_t GroupInfo::Busy() const {
  uint64_t sum = 0;
  for (const MemberInfo& m : members) {
    sum = m.busy > UINT64_MAX - sum ? UINT64_MAX : sum + m.busy;  // saturate, hostile maps
  }
  return sum;
}

const MemberInfo* GroupInfo::FindMember(std::string_view member_id) const {
  for (const MemberInfo& m : members) {
    if (m.id == member_id) return &m;
  }
  return nullptr;
}

json ClusterMap::ToJson(bool full) const {
  json groups_j = json::array();
  for (const GroupInfo& g : groups) {
    json members_j = json::array();
    for (const MemberInfo& m : g.members) members_j.push_back(MemberToJson(m, full));
    groups_j.push_back({{"id", g.id},
                        {"writable", g.writable},
                        {"under_replicated", g.under_replicated},
                        {"removed", g.removed},
                        {"members", std::move(members_j)}});
  }
  return {{"version", version}, {"groups", std::move(groups_j)}};
}

Result<ClusterMap> ClusterMap::FromJson(const json& j) {
  ClusterMap map;
  WHARF_ASSIGN_OR_RETURN(map.version, GetUint(j, "version"));
  WHARF_ASSIGN_OR_RETURN(const json* groups, GetArray(j, "groups"));
  std::set<std::string> group_ids;
  std::set<std::string> member_ids;
  for (const json& gj : *groups) {
    WHARF_ASSIGN_OR_RETURN(GroupInfo g, GroupFromJson(gj, &member_ids));
    if (!group_ids.insert(g.id).second) {
      return Err(InvalidArgument(fmt::format("duplicate group id {}", g.id)));
    }
    map.groups.push_back(std::move(g));
  }
  std::sort(map.groups.begin(), map.groups.end(),
            [](const GroupInfo& a, const GroupInfo& b) { return a.id < b.id; });
  return map;
}

Result<ClusterMap> ClusterMap::Parse(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err(InvalidArgument("cluster map is not valid JSON"));
  return FromJson(j);
}

const GroupInfo* ClusterMap::FindGroup(std::string_view group_id) const {
  for (const GroupInfo& g : groups) {
    if (g.id == group_id) return &g;
  }
  return nullptr;
}

}  // namespace wharf

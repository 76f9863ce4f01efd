#include "master/heartbeat.h"

#include <fmt/format.h>

#include <set>

#include "common/json_fields.h"

namespace wharf {

using json_fields::GetArray;
using json_fields::GetString;
using json_fields::GetUint;
using nlohmann::json;

Result<std::vector<RosterEntry>> RosterFromJson(const json& j, std::string_view key) {
  std::vector<RosterEntry> out;
  if (!j.is_object() || !j.contains(std::string(key))) return out;
  WHARF_ASSIGN_OR_RETURN(const json* arr, GetArray(j, key));
  if (arr->size() > kMaxRosterEntries) {
    return Err(InvalidArgument(fmt::format("{}: more than {} entries", key, kMaxRosterEntries)));
  }
  std::set<std::string> seen;
  for (const json& e : *arr) {
    RosterEntry r;
    WHARF_ASSIGN_OR_RETURN(r.id, GetString(e, "id"));
    if (Status st = ValidateId("roster id", r.id); !st.ok()) return Err(st);
    WHARF_ASSIGN_OR_RETURN(r.addr, GetString(e, "addr"));
    if (Status st = ValidateAddr(r.addr); !st.ok()) return Err(st);
    if (!seen.insert(r.id).second) {
      return Err(InvalidArgument(fmt::format("{}: duplicate id {}", key, r.id)));
    }
    out.push_back(std::move(r));
  }
  return out;
}

json RosterToJson(const std::vector<RosterEntry>& roster) {
  json out = json::array();
  for (const RosterEntry& r : roster) out.push_back({{"id", r.id}, {"addr", r.addr}});
  return out;
}

Status HeartbeatReport::Validate() const {
  WHARF_RETURN_IF_ERROR(ValidateId("group", group));
  WHARF_RETURN_IF_ERROR(ValidateId("id", id));
  WHARF_RETURN_IF_ERROR(ValidateAddr(addr));
  if (state == MemberState::kOffline) {
    return InvalidArgument("state must be syncing, active or readonly");
  }
  if (interval_ms == 0 || interval_ms > kMaxIntervalMs) {
    return InvalidArgument(fmt::format("interval_ms must be in 1..{}", kMaxIntervalMs));
  }
  if (roster.size() > kMaxRosterEntries) {
    return InvalidArgument(fmt::format("roster: more than {} entries", kMaxRosterEntries));
  }
  std::set<std::string_view> seen;
  for (const RosterEntry& r : roster) {
    WHARF_RETURN_IF_ERROR(ValidateId("roster id", r.id));
    WHARF_RETURN_IF_ERROR(ValidateAddr(r.addr));
    if (!seen.insert(r.id).second) return InvalidArgument("roster: duplicate id " + r.id);
  }
  return Status::Ok();
}

Result<HeartbeatReport> HeartbeatReport::FromJson(const json& j) {
  HeartbeatReport r;
  WHARF_ASSIGN_OR_RETURN(r.group, GetString(j, "group"));
  WHARF_ASSIGN_OR_RETURN(r.id, GetString(j, "id"));
  WHARF_ASSIGN_OR_RETURN(r.addr, GetString(j, "addr"));
  WHARF_ASSIGN_OR_RETURN(std::string state, GetString(j, "state"));
  WHARF_ASSIGN_OR_RETURN(r.state, ParseMemberState(state));
  WHARF_ASSIGN_OR_RETURN(r.capacity, GetUint(j, "capacity"));
  WHARF_ASSIGN_OR_RETURN(r.free, GetUint(j, "free"));
  WHARF_ASSIGN_OR_RETURN(r.reserve, GetUint(j, "reserve"));
  WHARF_ASSIGN_OR_RETURN(r.chunks, GetUint(j, "chunks", 0));
  WHARF_ASSIGN_OR_RETURN(r.busy, GetUint(j, "busy", 0));
  WHARF_ASSIGN_OR_RETURN(r.interval_ms, GetUint(j, "interval_ms"));
  WHARF_ASSIGN_OR_RETURN(r.missing, GetUint(j, "missing", 0));
  WHARF_ASSIGN_OR_RETURN(r.roster, RosterFromJson(j, "roster"));
  if (Status st = r.Validate(); !st.ok()) return Err(st);
  return r;
}

json HeartbeatReport::ToJson() const {
  return {{"group", group},       {"id", id},
          {"addr", addr},         {"state", MemberStateName(state)},
          {"capacity", capacity}, {"free", free},
          {"reserve", reserve},   {"chunks", chunks},
          {"busy", busy},         {"interval_ms", interval_ms},
          {"missing", missing},   {"roster", RosterToJson(roster)}};
}

Result<HeartbeatReply> HeartbeatReply::Parse(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Err(InvalidArgument("heartbeat reply is not a JSON object"));
  }
  HeartbeatReply r;
  WHARF_ASSIGN_OR_RETURN(r.version, GetUint(j, "version"));
  WHARF_ASSIGN_OR_RETURN(r.roster, RosterFromJson(j, "roster"));
  if (j.contains("removed")) {
    WHARF_ASSIGN_OR_RETURN(const json* removed, GetArray(j, "removed"));
    if (removed->size() > kMaxRosterEntries) {
      return Err(InvalidArgument(fmt::format("removed: more than {} ids", kMaxRosterEntries)));
    }
    for (const json& id : *removed) {
      if (!id.is_string()) return Err(InvalidArgument("removed: ids must be strings"));
      std::string s = id.get<std::string>();
      if (Status st = ValidateId("removed id", s); !st.ok()) return Err(st);
      r.removed.push_back(std::move(s));
    }
  }
  return r;
}

json HeartbeatReply::ToJson() const {
  return {{"version", version}, {"roster", RosterToJson(roster)}, {"removed", removed}};
}

}  // namespace wharf

#include "master/heartbeat.h"

#include <fmt/format.h>

#include "common/json_fields.h"

namespace wharf {

using json_fields::GetString;
using json_fields::GetUint;
using nlohmann::json;

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
  if (Status st = r.Validate(); !st.ok()) return Err(st);
  return r;
}

json HeartbeatReport::ToJson() const {
  return {{"group", group},       {"id", id},
          {"addr", addr},         {"state", MemberStateName(state)},
          {"capacity", capacity}, {"free", free},
          {"reserve", reserve},   {"chunks", chunks},
          {"busy", busy},         {"interval_ms", interval_ms}};
}

}  // namespace wharf

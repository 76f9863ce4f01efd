#include "chunkserver/member_roster.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/json_fields.h"

namespace wharf {

using json_fields::GetString;
using json_fields::GetUint;
using nlohmann::json;

namespace {
constexpr uint64_t kRosterFileFormat = 1;
}  // namespace

MemberRoster::MemberRoster(std::string group, std::string self_id, std::string self_addr)
    : group_(std::move(group)), self_id_(std::move(self_id)) {
  entries_.push_back({self_id_, std::move(self_addr)});
}

Status MemberRoster::ParseFile(std::string_view text, bool* ignored) {
  *ignored = false;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("not a JSON object");
  WHARF_ASSIGN_OR_RETURN(uint64_t format, GetUint(j, "format"));
  if (format != kRosterFileFormat) {
    return InvalidArgument(fmt::format("unknown format {}", format));
  }
  WHARF_ASSIGN_OR_RETURN(std::string group, GetString(j, "group"));
  WHARF_RETURN_IF_ERROR(ValidateId("group", group));
  WHARF_ASSIGN_OR_RETURN(std::vector<RosterEntry> members, RosterFromJson(j, "members"));
  if (group != group_) {
    *ignored = true;
    return Status::Ok();
  }
  for (const RosterEntry& e : members) {
    if (e.id != self_id_) Upsert(e);  // our own address is the one we run with
  }
  return Status::Ok();
}

std::string MemberRoster::ToFile() const {
  json doc = {
      {"format", kRosterFileFormat}, {"group", group_}, {"members", RosterToJson(entries_)}};
  return doc.dump(2) + "\n";
}

bool MemberRoster::Upsert(const RosterEntry& entry) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), entry.id,
                             [](const RosterEntry& e, const std::string& id) { return e.id < id; });
  if (it != entries_.end() && it->id == entry.id) {
    if (it->addr == entry.addr) return false;
    it->addr = entry.addr;
    return true;
  }
  if (entries_.size() >= kMaxRosterEntries) return false;  // a heartbeat carries no more
  entries_.insert(it, entry);
  return true;
}

bool MemberRoster::Merge(const HeartbeatReply& reply) {
  bool changed = false;
  for (const std::string& id : reply.removed) {
    if (id == self_id_) continue;
    auto n = std::erase_if(entries_, [&id](const RosterEntry& e) { return e.id == id; });
    changed |= n > 0;
  }
  for (const RosterEntry& e : reply.roster) {
    if (e.id == self_id_) continue;
    if (std::find(reply.removed.begin(), reply.removed.end(), e.id) != reply.removed.end()) {
      continue;
    }
    changed |= Upsert(e);
  }
  return changed;
}

void MemberRoster::SetSelfAddr(std::string addr) { Upsert({self_id_, std::move(addr)}); }

}  // namespace wharf

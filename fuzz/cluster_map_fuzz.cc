// ClusterMap::Parse over any bytes (master/cluster_map.h): what a gateway does with a master's
// reply. A map that parses is valid (ids, addresses, sorted, no duplicates) and round-trips
// through both of its JSON shapes.
#include <cstdint>
#include <set>

#include "fuzz_check.h"
#include "master/cluster_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto map = wharf::ClusterMap::Parse(wharf::fuzz::AsText(data, size));
  if (!map) {
    FUZZ_CHECK(map.error().code() == wharf::Code::kInvalidArgument);
    return 0;
  }
  std::set<std::string> member_ids;
  for (size_t i = 0; i < map->groups.size(); ++i) {
    const wharf::GroupInfo& g = map->groups[i];
    FUZZ_CHECK(wharf::ValidateId("group", g.id).ok());
    if (i > 0) FUZZ_CHECK(map->groups[i - 1].id < g.id);
    FUZZ_CHECK(map->FindGroup(g.id) == &g);
    for (size_t k = 0; k < g.members.size(); ++k) {
      const wharf::MemberInfo& m = g.members[k];
      FUZZ_CHECK(wharf::ValidateId("id", m.id).ok() && wharf::ValidateAddr(m.addr).ok());
      if (k > 0) FUZZ_CHECK(g.members[k - 1].id < m.id);
      FUZZ_CHECK(member_ids.insert(m.id).second);
      FUZZ_CHECK(g.FindMember(m.id) == &m);
    }
  }
  auto full = wharf::ClusterMap::Parse(map->ToJson(/*full=*/true).dump());
  FUZZ_CHECK(full && *full == *map);
  // The status shape drops reserve and busy, and nothing else.
  auto status = wharf::ClusterMap::Parse(map->ToJson(/*full=*/false).dump());
  FUZZ_CHECK(status.has_value());
  wharf::ClusterMap stripped = *map;
  for (auto& g : stripped.groups) {
    for (auto& m : g.members) m.reserve = m.busy = 0;
  }
  FUZZ_CHECK(*status == stripped);
  return 0;
}

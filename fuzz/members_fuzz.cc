// Topology::Load over any members.json (master/topology.h): the file lives on the master's
// disk, which may be damaged or hand-edited. A file that loads lists members that are all
// offline until they heartbeat, in groups that take no writes. The same bytes go through
// Topology::MergePeerRoster (a peer master's /v1/roster has this format).
#include <cstdint>
#include <set>

#include "common/log.h"
#include "fuzz_check.h"
#include "master/cluster_map.h"
#include "master/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = wharf::SetLogLevel("off");
  (void)quiet;
  wharf::fuzz::WriteScratchFile("members.json", wharf::fuzz::AsText(data, size));
  wharf::Topology::Options options;
  options.data_dir = wharf::fuzz::ScratchDir();
  options.chunk_size = 1;
  wharf::Topology topology(options);
  wharf::Status st = topology.Load();
  // A peer master's GET /v1/roster is the same document: merged iff it would load.
  wharf::Topology::Options no_disk = options;
  no_disk.data_dir = "";
  wharf::Topology merged(no_disk);
  wharf::Status merge = merged.MergePeerRoster(wharf::fuzz::AsText(data, size));
  FUZZ_CHECK(merge.ok() == st.ok());
  FUZZ_CHECK(merge.ok() || merge.code() == wharf::Code::kInvalidArgument);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == wharf::Code::kCorruption);
    return 0;
  }
  wharf::ClusterMap map = topology.Snapshot();
  std::set<std::string> ids;
  for (const wharf::GroupInfo& g : map.groups) {
    FUZZ_CHECK(wharf::ValidateId("group", g.id).ok());
    FUZZ_CHECK(!g.writable && !g.members.empty());
    for (const wharf::MemberInfo& m : g.members) {
      FUZZ_CHECK(m.state == wharf::MemberState::kOffline);
      FUZZ_CHECK(wharf::ValidateId("id", m.id).ok() && wharf::ValidateAddr(m.addr).ok());
      FUZZ_CHECK(ids.insert(m.id).second);  // a member is in one group only
    }
  }
  auto back = wharf::ClusterMap::Parse(map.ToJson(/*full=*/true).dump());
  FUZZ_CHECK(back && *back == map);
  return 0;
}

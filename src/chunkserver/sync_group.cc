#include "chunkserver/sync_group.h"

#include <map>
#include <utility>

namespace wharf {

std::shared_ptr<SyncGroup> SyncGroup::For(const void* env, uint64_t device) {
  static std::mutex mu;
  static auto* groups = new std::map<std::pair<const void*, uint64_t>, std::weak_ptr<SyncGroup>>;
  std::lock_guard lock(mu);
  std::weak_ptr<SyncGroup>& slot = (*groups)[{env, device}];
  if (auto g = slot.lock()) return g;
  for (auto it = groups->begin(); it != groups->end();) {  // drop the groups no store uses
    it = it->second.expired() && &it->second != &slot ? groups->erase(it) : std::next(it);
  }
  auto g = std::make_shared<SyncGroup>();
  slot = g;
  return g;
}

}  // namespace wharf

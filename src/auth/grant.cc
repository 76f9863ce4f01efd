#include "auth/grant.h"

namespace wharf::auth {

std::vector<AccessEntry> GrantedAccess(const AccessPolicy& policy, const Principal& who,
                                       const std::vector<Scope>& scopes) {
  std::vector<AccessEntry> out;
  for (const auto& scope : scopes) {
    if (scope.type != "repository") continue;
    std::set<Action> allowed = policy.AllowedActions(who, scope.name);
    AccessEntry entry{scope.type, scope.name, {}};
    auto add = [&](Action a) {
      std::string name(ActionName(a));
      if (IsGlobalAction(a) || !allowed.contains(a)) return;
      if (std::find(entry.actions.begin(), entry.actions.end(), name) == entry.actions.end()) {
        entry.actions.push_back(name);
      }
    };
    for (const auto& requested : scope.actions) {
      if (requested == "*") {
        for (Action a : allowed) add(a);
      } else if (auto a = ParseAction(requested)) {
        add(*a);
      }
    }
    if (!entry.actions.empty()) out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace wharf::auth

// What the gateway's token endpoint puts in a token's `access` claim: the requested scopes cut
// down to what the access policy allows the caller (distribution's token servers do the same:
// a scope asked for but not allowed is simply absent, and the registry then answers 403).
#pragma once

#include <vector>

#include "auth/policy.h"
#include "auth/scope.h"
#include "auth/token.h"

namespace wharf::auth {

// For each "repository" scope (any class), the requested actions that `policy` allows `who`
// ("*" asks for every repository action allowed), in the requested order; a scope left with no
// action is dropped, and so are scopes of other types (the catalog is filtered per caller).
std::vector<AccessEntry> GrantedAccess(const AccessPolicy& policy, const Principal& who,
                                       const std::vector<Scope>& scopes);

}  // namespace wharf::auth

// Docker token scopes and the WWW-Authenticate challenges, as distribution writes them.
//
//   scope  = type ["(" class ")"] ":" name ":" action *("," action)
//   e.g.     repository:team/app:pull,push   repository(plugin):vendor/x:pull
//            registry:catalog:*
//
// A name is a repository path without a registry host (so it holds no ':'); the type is
// lowercase letters; actions are lowercase letters or "*". A request may carry several
// `scope=` parameters, and one parameter several scopes separated by spaces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wharf::auth {

constexpr size_t kMaxScopeBytes = 1024;
constexpr size_t kMaxScopes = 64;

struct Scope {
  std::string type;   // "repository", "registry"
  std::string klass;  // "" or "plugin" from "repository(plugin)"
  std::string name;
  std::vector<std::string> actions;
  bool operator==(const Scope&) const = default;
};

// kInvalidArgument for anything outside the grammar, kTooLarge over kMaxScopeBytes.
Result<Scope> ParseScope(std::string_view text);
// Every scope of every `scope=` value (space-separated within a value), in order; scopes for
// one resource are merged (actions in first-seen order, no duplicates). At most kMaxScopes.
Result<std::vector<Scope>> ParseScopes(const std::vector<std::string_view>& values);
std::string FormatScope(const Scope& scope);

// Go's %q of a string: in double quotes, with \" \\ and control bytes escaped.
std::string GoQuote(std::string_view s);

// `Basic realm="<realm>"`.
std::string BasicChallenge(std::string_view realm);
// `Bearer realm="<realm>",service="<service>"` then `,scope="<scopes space-separated>"` when
// there are scopes, then `,error="<error>"` when error is not empty ("invalid_token",
// "insufficient_scope"): distribution's accesscontroller.go challengeParams.
std::string BearerChallenge(std::string_view realm, std::string_view service,
                            const std::vector<Scope>& scopes, std::string_view error = "");

}  // namespace wharf::auth

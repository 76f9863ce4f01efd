// Who may do what: the access policy file behind --access (YAML).
//
//   # Groups name sets of users. A user is an htpasswd user, a token's subject, or a verified
//   # client certificate's subject written "cert:<subject>" (e.g. "cert:CN=ci-bot").
//   groups:
//     developers: [alice, bob]
//     ci: ["cert:CN=ci-bot"]
//   # Users may also list their groups here (merged with the lists above).
//   users:
//     carol: {groups: [developers]}
//   rules:
//     # Repository patterns: exact names, "*" within a segment (matches no '/'),
//     # "**" as a whole segment (one or more segments: "team/**" is team/a and team/a/b,
//     # not team itself; "**" alone is every repository).
//     - repositories: ["team/*", "shared/**"]
//       groups: [developers]
//       actions: [pull, push]
//     - repositories: ["**"]
//       users: [alice]
//       actions: [pull, push, delete]
//     - repositories: ["public/**"]
//       anonymous: true            # also callers without credentials
//       actions: [pull]
//     - repositories: ["**"]
//       authenticated: true        # every caller who proved an identity
//       actions: [pull]
//     # File API actions are not tied to repositories: a rule granting them needs none.
//     - groups: [ci]
//       actions: [files:read, files:write, files:delete]
//     # Nor is admin: the gateway's /admin/ views (GET /admin/gc).
//     - users: [alice]
//       actions: [admin]
//
// A caller's actions on a repository are the union of every rule that names the caller (as a
// user, through a group, as anonymous or authenticated) and whose patterns match. Nothing is
// allowed that no rule grants. Unknown keys, actions, malformed patterns and references to
// undefined groups are load errors (a typo never silently opens or closes access).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "auth/reloading_file.h"
#include "common/status.h"

namespace YAML {
class Node;
}

namespace wharf::auth {

enum class Action { kPull, kPush, kDelete, kFilesRead, kFilesWrite, kFilesDelete, kAdmin };
std::string_view ActionName(Action a);  // "pull", ..., "files:read", "admin"
Result<Action> ParseAction(std::string_view name);
bool IsFileAction(Action a);
// An action not tied to a repository: the file API's, and "admin" (the /admin/ views).
bool IsGlobalAction(Action a);

// Who is calling. anonymous: no credentials (name empty). A certificate subject is named
// "cert:<subject>" by the caller.
struct Principal {
  std::string name;
  static Principal Anonymous() { return {}; }
  static Principal User(std::string name) { return {std::move(name)}; }
  bool anonymous() const { return name.empty(); }
};

// True when `name` matches `pattern` (the rules' pattern language above). Exposed for tests.
bool MatchRepositoryPattern(std::string_view pattern, std::string_view name);
// kInvalidArgument, "<where>: ...", unless `pattern` is one of that language (no empty
// segment, "**" only as a whole segment, 1..255 characters).
Status ValidateRepositoryPattern(std::string_view where, std::string_view pattern);
// True when `text` matches `pattern`, where '*' matches any run of characters (a tag filter).
bool MatchGlob(std::string_view pattern, std::string_view text);

// Immutable once parsed; thread-safe.
class AccessPolicy {
 public:
  // kInvalidArgument naming what is wrong ("rules[2].actions: unknown action 'pul'").
  static Result<AccessPolicy> Parse(std::string_view yaml);

  // For file actions `repository` is ignored.
  bool Allowed(const Principal& who, std::string_view repository, Action action) const;
  std::set<Action> AllowedActions(const Principal& who, std::string_view repository) const;
  // Whether some rule grants `who` the repository action `action` on some pattern (on at
  // least one repository name, existing or not).
  bool GrantsAnywhere(const Principal& who, Action action) const;
  // The repositories of `names` that `who` may pull, in their order (for _catalog, and the
  // same for any list of repository names).
  std::vector<std::string> Filter(const Principal& who,
                                  const std::vector<std::string>& names) const;

 private:
  struct Rule {
    std::vector<std::string> patterns;
    std::set<std::string> users;
    std::set<std::string> groups;
    bool anonymous = false;
    bool authenticated = false;
    std::set<Action> actions;
  };
  static Result<AccessPolicy> ParseRoot(const YAML::Node& root);
  static Result<Rule> ParseRule(const YAML::Node& node, const std::string& where);
  bool Applies(const Rule& rule, const Principal& who, const std::set<std::string>& groups) const;
  std::set<std::string> GroupsOf(const Principal& who) const;

  std::vector<Rule> rules_;
  std::vector<std::pair<std::string, std::set<std::string>>> groups_;  // group -> members
};

// The access policy file, re-read on change (see ReloadingFile).
using AccessPolicyFile = ReloadingFile<AccessPolicy>;

}  // namespace wharf::auth

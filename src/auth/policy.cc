#include "auth/policy.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace wharf::auth {
namespace {

constexpr std::pair<Action, std::string_view> kActions[] = {
    {Action::kPull, "pull"},
    {Action::kPush, "push"},
    {Action::kDelete, "delete"},
    {Action::kFilesRead, "files:read"},
    {Action::kFilesWrite, "files:write"},
    {Action::kFilesDelete, "files:delete"},
    {Action::kAdmin, "admin"},
};

Status Bad(std::string_view where, std::string_view why) {
  return InvalidArgument(fmt::format("{}: {}", where, why));
}

// Wildcard matching without backtracking blow-up (the classic two-pointer algorithm: on a
// mismatch, retry from the last star one item further): O(items * pattern) for any pattern.
// is_star(p): token p matches any run of items; one(p, i): token p matches item i alone.
template <typename IsStar, typename One>
bool WildcardMatch(size_t n_pat, size_t n_items, IsStar is_star, One one) {
  size_t p = 0, i = 0, star_p = n_pat, star_i = 0;
  while (i < n_items) {
    if (p < n_pat && is_star(p)) {
      star_p = p++;
      star_i = i;
    } else if (p < n_pat && one(p, i)) {
      ++p;
      ++i;
    } else if (star_p != n_pat) {
      p = star_p + 1;
      i = ++star_i;
    } else {
      return false;
    }
  }
  while (p < n_pat && is_star(p)) ++p;
  return p == n_pat;
}

// A segment of "*"-globs: '*' matches any run of characters (the segment holds no '/').
bool MatchSegment(std::string_view pat, std::string_view seg) {
  return WildcardMatch(
      pat.size(), seg.size(), [&](size_t p) { return pat[p] == '*'; },
      [&](size_t p, size_t i) { return pat[p] == seg[i]; });
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    size_t slash = s.find('/');
    out.push_back(s.substr(0, slash));
    if (slash == s.npos) return out;
    s.remove_prefix(slash + 1);
  }
}

// "**" (one or more segments) is a token matching any one segment followed by a star token.
bool MatchSegments(const std::vector<std::string_view>& pat,
                   const std::vector<std::string_view>& name) {
  std::vector<std::string_view> tokens;  // "" stands for the star token
  for (std::string_view seg : pat) {
    tokens.push_back(seg == "**" ? "*" : seg);
    if (seg == "**") tokens.push_back("");
  }
  return WildcardMatch(
      tokens.size(), name.size(), [&](size_t p) { return tokens[p].empty(); },
      [&](size_t p, size_t i) { return MatchSegment(tokens[p], name[i]); });
}

// A YAML sequence of strings.
Result<std::vector<std::string>> Strings(const YAML::Node& node, std::string_view where) {
  if (!node.IsSequence()) return Err(Bad(where, "expected a list of strings"));
  std::vector<std::string> out;
  for (const auto& e : node) {
    if (!e.IsScalar()) return Err(Bad(where, "expected a list of strings"));
    out.push_back(e.Scalar());
  }
  return out;
}

Result<bool> Bool(const YAML::Node& node, std::string_view where) {
  bool v = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, v)) {
    return Err(Bad(where, "expected true or false"));
  }
  return v;
}

Status CheckKeys(const YAML::Node& map, std::string_view where,
                 std::initializer_list<std::string_view> known) {
  if (!map.IsMap()) return Bad(where, "expected a mapping");
  for (const auto& kv : map) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Bad(where, fmt::format("unknown key '{}'", key));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view ActionName(Action a) {
  for (auto [action, name] : kActions) {
    if (action == a) return name;
  }
  return "?";
}

Result<Action> ParseAction(std::string_view name) {
  for (auto [action, n] : kActions) {
    if (n == name) return action;
  }
  return Err(InvalidArgument(fmt::format("unknown action '{}'", name.substr(0, 64))));
}

bool IsFileAction(Action a) {
  return a == Action::kFilesRead || a == Action::kFilesWrite || a == Action::kFilesDelete;
}

Status ValidateRepositoryPattern(std::string_view where, std::string_view pattern) {
  if (pattern.empty() || pattern.size() > 255) return Bad(where, "pattern empty or too long");
  for (std::string_view seg : Split(pattern)) {
    if (seg.empty()) return Bad(where, fmt::format("empty segment in pattern '{}'", pattern));
    if (seg.find("**") != seg.npos) {
      if (seg != "**")
        return Bad(where, fmt::format("'**' must be a whole segment in '{}'", pattern));
    }
  }
  return Status::Ok();
}

bool MatchGlob(std::string_view pattern, std::string_view text) {
  return MatchSegment(pattern, text);
}

bool IsGlobalAction(Action a) { return IsFileAction(a) || a == Action::kAdmin; }

bool MatchRepositoryPattern(std::string_view pattern, std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/' || name.find("//") != name.npos) {
    return false;
  }
  return MatchSegments(Split(pattern), Split(name));
}

namespace {

struct Groups {
  std::vector<std::pair<std::string, std::set<std::string>>> list;
  std::set<std::string>* Find(const std::string& name) {
    for (auto& [g, members] : list) {
      if (g == name) return &members;
    }
    return nullptr;
  }
};

Status ParseGroups(const YAML::Node& node, Groups& groups) {
  if (!node) return Status::Ok();
  if (!node.IsMap()) return Bad("groups", "expected a mapping of group to users");
  for (const auto& kv : node) {
    std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (name.empty()) return Bad("groups", "a group without a name");
    if (groups.Find(name)) return Bad("groups." + name, "defined twice");
    WHARF_ASSIGN_OR_RETURN(auto members, Strings(kv.second, "groups." + name));
    groups.list.emplace_back(name, std::set<std::string>(members.begin(), members.end()));
  }
  return Status::Ok();
}

Status ParseUsers(const YAML::Node& node, Groups& groups) {
  if (!node) return Status::Ok();
  if (!node.IsMap()) return Bad("users", "expected a mapping of user to {groups: [...]}");
  for (const auto& kv : node) {
    std::string user = kv.first.IsScalar() ? kv.first.Scalar() : "";
    std::string where = "users." + user;
    if (user.empty()) return Bad("users", "a user without a name");
    if (kv.second.IsNull()) continue;
    WHARF_RETURN_IF_ERROR(CheckKeys(kv.second, where, {"groups"}));
    if (!kv.second["groups"]) continue;
    WHARF_ASSIGN_OR_RETURN(auto list, Strings(kv.second["groups"], where + ".groups"));
    for (const auto& g : list) {
      std::set<std::string>* members = groups.Find(g);
      if (!members) {
        groups.list.emplace_back(g, std::set<std::string>{});
        members = &groups.list.back().second;
      }
      members->insert(user);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<AccessPolicy> AccessPolicy::Parse(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Err(InvalidArgument(fmt::format("not valid YAML: {}", e.what())));
  }
  try {
    return ParseRoot(root);
  } catch (const YAML::Exception& e) {  // yaml-cpp throws on some malformed node shapes
    return Err(InvalidArgument(fmt::format("malformed policy: {}", e.what())));
  }
}

Result<AccessPolicy> AccessPolicy::ParseRoot(const YAML::Node& root) {
  if (!root.IsMap()) return Err(Bad("policy", "expected a mapping with groups, users, rules"));
  WHARF_RETURN_IF_ERROR(CheckKeys(root, "policy", {"groups", "users", "rules"}));
  Groups groups;
  WHARF_RETURN_IF_ERROR(ParseGroups(root["groups"], groups));
  WHARF_RETURN_IF_ERROR(ParseUsers(root["users"], groups));
  AccessPolicy policy;
  const YAML::Node rules = root["rules"];
  if (rules && !rules.IsSequence()) return Err(Bad("rules", "expected a list"));
  for (size_t i = 0; rules && i < rules.size(); ++i) {
    WHARF_ASSIGN_OR_RETURN(Rule rule, ParseRule(rules[i], fmt::format("rules[{}]", i)));
    for (const auto& g : rule.groups) {
      if (!groups.Find(g)) return Err(Bad(fmt::format("rules[{}]", i), "undefined group " + g));
    }
    policy.rules_.push_back(std::move(rule));
  }
  policy.groups_ = std::move(groups.list);
  return policy;
}

Result<AccessPolicy::Rule> AccessPolicy::ParseRule(const YAML::Node& node,
                                                   const std::string& where) {
  WHARF_RETURN_IF_ERROR(CheckKeys(
      node, where, {"repositories", "users", "groups", "anonymous", "authenticated", "actions"}));
  Rule rule;
  if (node["repositories"]) {
    WHARF_ASSIGN_OR_RETURN(rule.patterns, Strings(node["repositories"], where + ".repositories"));
    for (const auto& p : rule.patterns) WHARF_RETURN_IF_ERROR(ValidateRepositoryPattern(where, p));
  }
  for (const char* key : {"users", "groups"}) {
    if (!node[key]) continue;
    WHARF_ASSIGN_OR_RETURN(auto list, Strings(node[key], where + "." + key));
    (key[0] == 'u' ? rule.users : rule.groups).insert(list.begin(), list.end());
  }
  if (node["anonymous"]) {
    WHARF_ASSIGN_OR_RETURN(rule.anonymous, Bool(node["anonymous"], where));
  }
  if (node["authenticated"]) {
    WHARF_ASSIGN_OR_RETURN(rule.authenticated, Bool(node["authenticated"], where));
  }
  if (!node["actions"]) return Err(Bad(where, "no actions"));
  WHARF_ASSIGN_OR_RETURN(auto actions, Strings(node["actions"], where + ".actions"));
  bool repo_action = false;
  for (const auto& a : actions) {
    auto action = ParseAction(a);
    if (!action) return Err(Bad(where + ".actions", action.error().message()));
    repo_action |= !IsGlobalAction(*action);
    rule.actions.insert(*action);
  }
  if (repo_action && rule.patterns.empty()) {
    return Err(Bad(where, "pull, push or delete without repositories"));
  }
  if (rule.users.empty() && rule.groups.empty() && !rule.anonymous && !rule.authenticated) {
    return Err(Bad(where, "names nobody (users, groups, anonymous or authenticated)"));
  }
  return rule;
}

std::set<std::string> AccessPolicy::GroupsOf(const Principal& who) const {
  std::set<std::string> out;
  if (who.anonymous()) return out;
  for (const auto& [group, members] : groups_) {
    if (members.contains(who.name)) out.insert(group);
  }
  return out;
}

bool AccessPolicy::Applies(const Rule& rule, const Principal& who,
                           const std::set<std::string>& groups) const {
  if (rule.anonymous) return true;  // anonymous access is granted to everyone
  if (who.anonymous()) return false;
  if (rule.authenticated || rule.users.contains(who.name)) return true;
  return std::any_of(groups.begin(), groups.end(),
                     [&](const std::string& g) { return rule.groups.contains(g); });
}

std::set<Action> AccessPolicy::AllowedActions(const Principal& who,
                                              std::string_view repository) const {
  std::set<Action> out;
  std::set<std::string> groups = GroupsOf(who);
  for (const auto& rule : rules_) {
    if (!Applies(rule, who, groups)) continue;
    bool matches = std::any_of(rule.patterns.begin(), rule.patterns.end(), [&](const auto& p) {
      return MatchRepositoryPattern(p, repository);
    });
    for (Action a : rule.actions) {
      if (IsGlobalAction(a) || matches) out.insert(a);
    }
  }
  return out;
}

bool AccessPolicy::GrantsAnywhere(const Principal& who, Action action) const {
  std::set<std::string> groups = GroupsOf(who);
  return std::any_of(rules_.begin(), rules_.end(), [&](const Rule& rule) {
    return !rule.patterns.empty() && rule.actions.contains(action) && Applies(rule, who, groups);
  });
}

bool AccessPolicy::Allowed(const Principal& who, std::string_view repository, Action action) const {
  return AllowedActions(who, repository).contains(action);
}

std::vector<std::string> AccessPolicy::Filter(const Principal& who,
                                              const std::vector<std::string>& names) const {
  std::vector<std::string> out;
  for (const auto& n : names) {
    if (Allowed(who, n, Action::kPull)) out.push_back(n);
  }
  return out;
}

}  // namespace wharf::auth

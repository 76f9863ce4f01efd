#include "auth/policy.h"

#include <gtest/gtest.h>

#include <string>

#include "auth/grant.h"
#include "test_files.h"

namespace wharf::auth {
namespace {

// The example of policy.h and docs/security.md.
constexpr char kPolicy[] = R"(
groups:
  developers: [alice, bob]
  ci: ["cert:CN=ci-bot"]
users:
  carol: {groups: [developers]}
rules:
  - repositories: ["team/*", "shared/**"]
    groups: [developers]
    actions: [pull, push]
  - repositories: ["**"]
    users: [alice]
    actions: [pull, push, delete]
  - repositories: ["public/**"]
    anonymous: true
    actions: [pull]
  - repositories: ["**"]
    authenticated: true
    actions: [pull]
  - groups: [ci]
    actions: [files:read, files:write, files:delete]
)";

AccessPolicy Policy(const std::string& yaml = kPolicy) {
  auto p = AccessPolicy::Parse(yaml);
  EXPECT_TRUE(p) << p.error().ToString();
  return std::move(*p);
}

TEST(PatternTest, Segments) {
  EXPECT_TRUE(MatchRepositoryPattern("team/app", "team/app"));
  EXPECT_FALSE(MatchRepositoryPattern("team/app", "team/app2"));
  EXPECT_TRUE(MatchRepositoryPattern("team/*", "team/app"));
  EXPECT_FALSE(MatchRepositoryPattern("team/*", "team/app/sub"));
  EXPECT_FALSE(MatchRepositoryPattern("team/*", "team"));
  EXPECT_FALSE(MatchRepositoryPattern("team/*", "teams/app"));
  EXPECT_TRUE(MatchRepositoryPattern("team/**", "team/app"));
  EXPECT_TRUE(MatchRepositoryPattern("team/**", "team/a/b/c"));
  EXPECT_FALSE(MatchRepositoryPattern("team/**", "team"));
  EXPECT_TRUE(MatchRepositoryPattern("**", "x"));
  EXPECT_TRUE(MatchRepositoryPattern("**", "x/y/z"));
  EXPECT_TRUE(MatchRepositoryPattern("a/**/z", "a/b/z"));
  EXPECT_TRUE(MatchRepositoryPattern("a/**/z", "a/b/c/z"));
  EXPECT_FALSE(MatchRepositoryPattern("a/**/z", "a/z"));
  EXPECT_TRUE(MatchRepositoryPattern("app-*", "app-web"));
  EXPECT_TRUE(MatchRepositoryPattern("*-web/*", "app-web/x"));
  EXPECT_FALSE(MatchRepositoryPattern("app-*", "app/web"));
  EXPECT_TRUE(MatchRepositoryPattern("*/*", "a/b"));
  EXPECT_FALSE(MatchRepositoryPattern("*", "a/b"));
  EXPECT_FALSE(MatchRepositoryPattern("**", ""));
  EXPECT_FALSE(MatchRepositoryPattern("*", ""));
  EXPECT_FALSE(MatchRepositoryPattern("**", "a//b"));
  EXPECT_FALSE(MatchRepositoryPattern("*/*", "a/"));
}

TEST(PatternTest, PathologicalPatternsStayFast) {
  std::string name;
  for (int i = 0; i < 127; ++i) name += i ? "/a" : "a";
  std::string pattern = "**/**/**/**/**/**/**/**/**/**/b";
  EXPECT_FALSE(MatchRepositoryPattern(pattern, name));
  EXPECT_FALSE(MatchRepositoryPattern("*a*a*a*a*a*a*a*a*a*a*b", std::string(255, 'a')));
}

TEST(AccessPolicyTest, GrantsTheUnionOfMatchingRules) {
  AccessPolicy p = Policy();
  Principal alice = Principal::User("alice"), bob = Principal::User("bob");
  Principal carol = Principal::User("carol"), dave = Principal::User("dave");
  Principal anon = Principal::Anonymous(), ci = Principal::User("cert:CN=ci-bot");
  using A = Action;
  EXPECT_EQ(p.AllowedActions(alice, "other/x"), (std::set<A>{A::kPull, A::kPush, A::kDelete}));
  EXPECT_EQ(p.AllowedActions(bob, "team/app"), (std::set<A>{A::kPull, A::kPush}));
  EXPECT_EQ(p.AllowedActions(bob, "team/app/sub"), (std::set<A>{A::kPull}));
  EXPECT_EQ(p.AllowedActions(carol, "shared/a/b"), (std::set<A>{A::kPull, A::kPush}));
  EXPECT_EQ(p.AllowedActions(dave, "team/app"), (std::set<A>{A::kPull}));
  EXPECT_TRUE(p.Allowed(anon, "public/base", A::kPull));
  EXPECT_FALSE(p.Allowed(anon, "public/base", A::kPush));
  EXPECT_FALSE(p.Allowed(anon, "team/app", A::kPull));
  EXPECT_TRUE(p.AllowedActions(anon, "team/app").empty());
  EXPECT_FALSE(p.Allowed(bob, "team/app", A::kDelete));
  EXPECT_TRUE(p.Allowed(ci, "", A::kFilesWrite));
  EXPECT_TRUE(p.Allowed(ci, "anything", A::kFilesDelete));
  EXPECT_FALSE(p.Allowed(alice, "", A::kFilesRead));
  EXPECT_FALSE(p.Allowed(anon, "", A::kFilesRead));
  EXPECT_FALSE(p.Allowed(Principal::User("CN=ci-bot"), "", A::kFilesRead));
}

TEST(AccessPolicyTest, AdminIsAnActionWithoutRepositories) {
  AccessPolicy p = Policy(R"(
rules:
  - users: [root]
    actions: [admin]
  - repositories: ["**"]
    authenticated: true
    actions: [pull, push, delete]
)");
  EXPECT_TRUE(p.Allowed(Principal::User("root"), "", Action::kAdmin));
  EXPECT_FALSE(p.Allowed(Principal::User("alice"), "", Action::kAdmin));
  EXPECT_FALSE(p.Allowed(Principal::Anonymous(), "", Action::kAdmin));
  // The admin rule names no repository: it grants no repository action by itself.
  AccessPolicy only_admin = Policy("rules:\n  - users: [root]\n    actions: [admin]\n");
  EXPECT_TRUE(only_admin.Allowed(Principal::User("root"), "", Action::kAdmin));
  EXPECT_FALSE(only_admin.Allowed(Principal::User("root"), "x", Action::kPull));
  EXPECT_TRUE(p.Allowed(Principal::User("root"), "x", Action::kPull));  // the "**" rule
  EXPECT_EQ(ActionName(Action::kAdmin), "admin");
  EXPECT_FALSE(AccessPolicy::Parse("rules:\n  - users: [a]\n    actions: [admins]\n"));
}

TEST(AccessPolicyTest, FilterKeepsWhatTheCallerMayPull) {
  AccessPolicy p = Policy();
  std::vector<std::string> all = {"public/a", "team/app", "zeta", "public/b/c"};
  EXPECT_EQ(p.Filter(Principal::Anonymous(), all),
            (std::vector<std::string>{"public/a", "public/b/c"}));
  EXPECT_EQ(p.Filter(Principal::User("dave"), all), all);
  EXPECT_TRUE(Policy("rules: []").Filter(Principal::User("alice"), all).empty());
}

TEST(AccessPolicyTest, EmptyPolicyAllowsNothing) {
  for (const char* yaml : {"{}", "rules: []", "groups: {}\nrules: []"}) {
    AccessPolicy p = Policy(yaml);
    EXPECT_FALSE(p.Allowed(Principal::User("alice"), "a", Action::kPull)) << yaml;
  }
}

TEST(AccessPolicyTest, MistakesAreLoadErrors) {
  struct Case {
    std::string yaml;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{
           {"", "expected a mapping"},
           {"[1, 2]", "expected a mapping"},
           {"rule: []", "unknown key 'rule'"},
           {"rules: {}", "rules: expected a list"},
           {"rules:\n  - repositories: [a]\n    users: [x]\n    actions: [pul]",
            "unknown action 'pul'"},
           {"rules:\n  - repositories: [a]\n    users: [x]", "rules[0]: no actions"},
           {"rules:\n  - users: [x]\n    actions: [pull]",
            "pull, push or delete without repositories"},
           {"rules:\n  - repositories: [a]\n    actions: [pull]", "names nobody"},
           {"rules:\n  - repositories: [a]\n    groups: [ghosts]\n    actions: [pull]",
            "undefined group ghosts"},
           {"rules:\n  - repositories: [a]\n    user: [x]\n    actions: [pull]",
            "unknown key 'user'"},
           {"rules:\n  - repositories: [a]\n    anonymous: maybe\n    actions: [pull]",
            "expected true or false"},
           {"rules:\n  - repositories: ['a//b']\n    users: [x]\n    actions: [pull]",
            "empty segment"},
           {"rules:\n  - repositories: ['a/**b']\n    users: [x]\n    actions: [pull]",
            "whole segment"},
           {"rules:\n  - repositories: ['']\n    users: [x]\n    actions: [pull]", "pattern empty"},
           {"rules:\n  - repositories: a\n    users: [x]\n    actions: [pull]", "list of strings"},
           {"rules:\n  - repositories: [[a]]\n    users: [x]\n    actions: [pull]",
            "list of strings"},
           {"groups: [a]", "groups: expected a mapping"},
           {"groups:\n  g: x", "groups.g: expected a list"},
           {"users:\n  u: {group: [g]}", "unknown key 'group'"},
           {"rules: [", "not valid YAML"},
           {"rules: \"\\xff", "not valid YAML"},
           {"rules:\n\t- x", "not valid YAML"},
       }) {
    auto p = AccessPolicy::Parse(c.yaml);
    ASSERT_FALSE(p) << c.yaml;
    EXPECT_NE(p.error().message().find(c.expect), std::string::npos)
        << c.yaml << " -> " << p.error().message();
  }
}

TEST(AccessPolicyTest, HostileYamlIsAnErrorNotACrash) {
  std::string deep = "rules: " + std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(AccessPolicy::Parse(deep));
  std::string binary;
  for (int i = 0; i < 4096; ++i) binary += char(i * 131 + 7);
  EXPECT_FALSE(AccessPolicy::Parse(binary));
  EXPECT_FALSE(AccessPolicy::Parse(std::string("rules:\0[]", 9)));
  // Aliases expand, but only into scalars where lists of strings are expected.
  std::string laughs = "groups:\n  a: &a [x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a]\n";
  EXPECT_FALSE(AccessPolicy::Parse(laughs));
}

TEST(GrantedAccessTest, CutsScopesDownToThePolicy) {
  AccessPolicy p = Policy();
  auto scopes = ParseScopes({"repository:team/app:pull,push,delete", "repository:zeta:push",
                             "registry:catalog:*", "repository(plugin):team/x:*"});
  ASSERT_TRUE(scopes);
  auto bob = GrantedAccess(p, Principal::User("bob"), *scopes);
  ASSERT_EQ(bob.size(), 2u);  // zeta: push not allowed; catalog: not a repository
  EXPECT_EQ(bob[0], (AccessEntry{"repository", "team/app", {"pull", "push"}}));
  EXPECT_EQ(bob[1], (AccessEntry{"repository", "team/x", {"pull", "push"}}));
  auto anon = GrantedAccess(p, Principal::Anonymous(), *ParseScopes({"repository:public/a:*"}));
  ASSERT_EQ(anon.size(), 1u);
  EXPECT_EQ(anon[0].actions, std::vector<std::string>{"pull"});
  EXPECT_TRUE(GrantedAccess(p, Principal::Anonymous(), *scopes).empty());
  auto alice =
      GrantedAccess(p, Principal::User("alice"), *ParseScopes({"repository:z:push,bogus"}));
  ASSERT_EQ(alice.size(), 1u);
  EXPECT_EQ(alice[0].actions, std::vector<std::string>{"push"});
}

TEST(AccessPolicyFileTest, ReloadsAndKeepsTheLastGoodPolicy) {
  TempDir dir;
  std::string path = dir.File("access.yaml");
  ReplaceFile(path, kPolicy);
  AccessPolicyFile file(path, &AccessPolicy::Parse);
  ASSERT_TRUE(file.Load().ok());
  EXPECT_TRUE(file.Current()->Allowed(Principal::Anonymous(), "public/a", Action::kPull));
  ReplaceFile(path, "rules:\n  - repositories: ['**']\n    anonymous: true\n    actions: [pull]\n");
  auto r = file.ReloadIfChanged();
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(*r);
  EXPECT_TRUE(file.Current()->Allowed(Principal::Anonymous(), "team/a", Action::kPull));
  ReplaceFile(path, "rules: [");
  auto bad = file.ReloadIfChanged();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("access.yaml: not valid YAML"), std::string::npos);
  EXPECT_TRUE(file.Current()->Allowed(Principal::Anonymous(), "team/a", Action::kPull));
}

}  // namespace
}  // namespace wharf::auth

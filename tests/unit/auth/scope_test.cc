#include "auth/scope.h"

#include <gtest/gtest.h>

#include <string>

namespace wharf::auth {
namespace {

TEST(ScopeTest, ParsesAndFormats) {
  auto s = ParseScope("repository:team/app:pull,push");
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->type, "repository");
  EXPECT_EQ(s->klass, "");
  EXPECT_EQ(s->name, "team/app");
  EXPECT_EQ(s->actions, (std::vector<std::string>{"pull", "push"}));
  EXPECT_EQ(FormatScope(*s), "repository:team/app:pull,push");

  auto plugin = ParseScope("repository(plugin):vendor/x:pull");
  ASSERT_TRUE(plugin);
  EXPECT_EQ(plugin->klass, "plugin");
  EXPECT_EQ(FormatScope(*plugin), "repository(plugin):vendor/x:pull");

  auto catalog = ParseScope("registry:catalog:*");
  ASSERT_TRUE(catalog);
  EXPECT_EQ(catalog->actions, std::vector<std::string>{"*"});
  EXPECT_EQ(ParseScope("repository:a:pull,pull,push")->actions.size(), 2u);
  EXPECT_EQ(ParseScope("repository:a.b/c_d/e-f/0:delete")->name, "a.b/c_d/e-f/0");
}

TEST(ScopeTest, RejectsOutsideTheGrammar) {
  for (std::string bad : std::vector<std::string>{"",
                                                  ":",
                                                  "::",
                                                  "repository",
                                                  "repository:a",
                                                  "repository:a:",
                                                  ":a:pull",
                                                  "repository::pull",
                                                  "repository:a:pull,",
                                                  "repository:a:,pull",
                                                  "repository:a:Pull",
                                                  "Repository:a:pull",
                                                  "repository:A:pull",
                                                  "repository:localhost:5000/a:pull",
                                                  "repository:/a:pull",
                                                  "repository:a/:pull",
                                                  "repository:a//b:pull",
                                                  "repository(:a:pull",
                                                  "repository()x:a:pull",
                                                  "repository(Plugin):a:pull",
                                                  "repo sitory:a:pull",
                                                  "repository:a b:pull",
                                                  "repository:a:pu ll",
                                                  "repository:a\n:pull",
                                                  "repository:\xff:pull",
                                                  std::string("repository:a\0b:pull", 19)}) {
    EXPECT_FALSE(ParseScope(bad)) << bad;
  }
  EXPECT_EQ(ParseScope("repository:" + std::string(2000, 'a') + ":pull").error().code(),
            Code::kTooLarge);
}

TEST(ScopeTest, ParsesSeveralValuesAndMerges) {
  auto s = ParseScopes(
      {"repository:a:pull", "repository:b:push repository:a:push", "  repository:c:pull  "});
  ASSERT_TRUE(s) << s.error().ToString();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ(FormatScope((*s)[0]), "repository:a:pull,push");
  EXPECT_EQ(FormatScope((*s)[1]), "repository:b:push");
  EXPECT_EQ(FormatScope((*s)[2]), "repository:c:pull");
  EXPECT_TRUE(ParseScopes({})->empty());
  EXPECT_FALSE(ParseScopes({"repository:a:pull", "garbage"}));
  std::vector<std::string> many;
  for (int i = 0; i < 65; ++i) many.push_back("repository:r" + std::to_string(i) + ":pull");
  std::vector<std::string_view> views(many.begin(), many.end());
  EXPECT_EQ(ParseScopes(views).error().code(), Code::kTooLarge);
  views.pop_back();
  EXPECT_TRUE(ParseScopes(views));
}

TEST(ChallengeTest, MatchesDistribution) {
  EXPECT_EQ(BasicChallenge("wharf"), R"(Basic realm="wharf")");
  EXPECT_EQ(BasicChallenge(R"(a "quoted" \ realm)"), R"(Basic realm="a \"quoted\" \\ realm")");
  auto scopes = ParseScopes({"repository:team/app:pull,push"});
  EXPECT_EQ(BearerChallenge("https://host/v2/token", "registry.test", *scopes),
            R"(Bearer realm="https://host/v2/token",service="registry.test",)"
            R"(scope="repository:team/app:pull,push")");
  EXPECT_EQ(BearerChallenge("https://host/v2/token", "svc", {}),
            R"(Bearer realm="https://host/v2/token",service="svc")");
  auto two = ParseScopes({"repository:a:pull", "repository:b:push"});
  EXPECT_EQ(BearerChallenge("r", "s", *two, "insufficient_scope"),
            R"(Bearer realm="r",service="s",scope="repository:a:pull repository:b:push",)"
            R"(error="insufficient_scope")");
  EXPECT_EQ(GoQuote("a\nb\x01\x7f"), R"("a\nb\x01\x7f")");
}

}  // namespace
}  // namespace wharf::auth

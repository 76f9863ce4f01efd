#include "upstream/www_authenticate.h"

#include <gtest/gtest.h>

#include "upstream/transport.h"

namespace wharf::upstream {
namespace {

TEST(WwwAuthenticate, DockerBearer) {
  auto r = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull")");
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].scheme, "bearer");
  EXPECT_EQ((*r)[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ((*r)[0].param("service"), "registry.docker.io");
  EXPECT_EQ((*r)[0].param("scope"), "repository:library/alpine:pull");
}

TEST(WwwAuthenticate, BasicAndSeveralChallenges) {
  auto r = ParseWwwAuthenticate(R"(Basic realm="reg", charset="UTF-8", Bearer realm=x,scope=y)");
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].scheme, "basic");
  EXPECT_EQ((*r)[0].param("charset"), "UTF-8");
  EXPECT_EQ((*r)[1].scheme, "bearer");
  EXPECT_EQ((*r)[1].param("realm"), "x");
  EXPECT_EQ((*r)[1].param("scope"), "y");
}

TEST(WwwAuthenticate, CaseSpacesEscapesAndToken68) {
  auto r = ParseWwwAuthenticate("  BEARER   Realm = \"a\\\"b\" ,  , Negotiate abc+/== , Basic");
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].param("realm"), "a\"b");
  EXPECT_EQ((*r)[1].scheme, "negotiate");
  EXPECT_EQ((*r)[1].token68, "abc+/==");
  EXPECT_EQ((*r)[2].scheme, "basic");
  EXPECT_TRUE((*r)[2].params.empty());
}

TEST(WwwAuthenticate, HostileInputIsRefused) {
  const char* bad[] = {
      "",
      "   ,  ,",
      "Bearer realm=\"unterminated",
      "Bearer realm=\"trailing\\",
      "Bearer =x",
      "Bearer realm=a b=c",
      "Bearer realm=\"a\"\"b\"",
      "Bearer realm=\"a\rb\"",
      "Bearer\x01 realm=a",
      "\"quoted\" realm=a",
      "Bearer realm=a;b=c",
      "Be(arer realm=a",
  };
  for (const char* h : bad) {
    EXPECT_FALSE(ParseWwwAuthenticate(h)) << "accepted: " << h;
  }
  std::string nul("Bearer realm=a\0b", 16);
  EXPECT_FALSE(ParseWwwAuthenticate(nul));
}

TEST(WwwAuthenticate, BoundsAreEnforced) {
  std::string huge = "Bearer realm=\"" + std::string(kMaxChallengeHeaderBytes, 'a') + "\"";
  EXPECT_FALSE(ParseWwwAuthenticate(huge));
  std::string many = "Bearer ";
  for (size_t i = 0; i <= kMaxChallengeParams; ++i) many += "p" + std::to_string(i) + "=v,";
  EXPECT_FALSE(ParseWwwAuthenticate(many));
  std::string schemes;
  for (size_t i = 0; i <= kMaxChallengeParams; ++i) schemes += "Basic, ";
  EXPECT_FALSE(ParseWwwAuthenticate(schemes));
  // A repeated parameter keeps its first value.
  auto r = ParseWwwAuthenticate("Bearer realm=a,realm=b");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].param("realm"), "a");
}

TEST(ParseUrlTest, Forms) {
  std::string rest;
  auto a = ParseUrl("https://reg.example/prefix/x?q=1", &rest);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->HostHeader(), "reg.example");
  EXPECT_EQ(rest, "/prefix/x?q=1");
  auto b = ParseUrl("http://[::1]:5000", &rest);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 5000);
  EXPECT_EQ(b->HostHeader(), "[::1]:5000");
  EXPECT_EQ(rest, "");
  for (const char* bad : {"ftp://x", "http://", "http://:80", "http://u:p@x", "http://x:0",
                          "http://x:65536", "http://x:8a", "http://[::1", "x:80"}) {
    EXPECT_FALSE(ParseUrl(bad, &rest)) << bad;
  }
}

}  // namespace
}  // namespace wharf::upstream

// The pure parts of the pull-through cache (upstream/proxy.h): the --proxy* flags into one
// entry per NAME, which repositories a NAME covers, and the upstream's name of a repository.
#include "upstream/proxy.h"

#include <gtest/gtest.h>

namespace wharf::upstream {
namespace {

using Strings = std::vector<std::string>;

std::string ErrorOf(const Strings& proxy, const Strings& user = {}, const Strings& pw = {},
                    const Strings& ca = {}) {
  auto r = ParseProxyFlags(proxy, user, pw, ca);
  if (r) return "";
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << "one line";
  return r.error().message();
}

TEST(ProxyFlagsTest, OneEntryPerNameWithItsUpstreamsInOrder) {
  auto r = ParseProxyFlags(
      {"hub=https://registry-1.docker.io", "quay=https://quay.io/", "hub=http://127.0.0.1:5001"},
      {"hub=alice"}, {"hub=/etc/wharf/hub.pw"}, {"quay=/etc/wharf/quay.pem"});
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "hub");
  EXPECT_EQ((*r)[0].urls, (Strings{"https://registry-1.docker.io", "http://127.0.0.1:5001"}));
  EXPECT_EQ((*r)[0].user, "alice");
  EXPECT_EQ((*r)[0].password_file, "/etc/wharf/hub.pw");
  EXPECT_EQ((*r)[0].ca_file, "");
  EXPECT_EQ((*r)[1].name, "quay");
  EXPECT_EQ((*r)[1].urls, Strings{"https://quay.io"});  // the trailing '/' dropped
  EXPECT_EQ((*r)[1].ca_file, "/etc/wharf/quay.pem");
  auto none = ParseProxyFlags({}, {}, {}, {});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  // A NAME of several components, and one with dots (a registry's host name).
  auto deep =
      ParseProxyFlags({"mirrors/hub=http://h:1", "docker.io=https://docker.io"}, {}, {}, {});
  ASSERT_TRUE(deep) << deep.error().ToString();
  EXPECT_EQ(deep->size(), 2u);
}

TEST(ProxyFlagsTest, BadValuesAreOneLineNamingTheFlag) {
  EXPECT_NE(ErrorOf({"hub"}).find("--proxy: want NAME=VALUE"), std::string::npos);
  EXPECT_NE(ErrorOf({"=http://h:1"}).find("--proxy"), std::string::npos);
  EXPECT_NE(ErrorOf({"hub="}).find("--proxy"), std::string::npos);
  EXPECT_NE(ErrorOf({"Hub=http://h:1"}).find("not a repository name"), std::string::npos);
  EXPECT_NE(ErrorOf({"hub/=http://h:1"}).find("not a repository name"), std::string::npos);
  EXPECT_NE(ErrorOf({"hub=ftp://h:1"}).find("want NAME=http://HOST:PORT"), std::string::npos);
  EXPECT_NE(ErrorOf({"hub=h:5000"}).find("want NAME=http://HOST:PORT"), std::string::npos);
  EXPECT_NE(ErrorOf({"hub=http://"}).find("want NAME=http://HOST:PORT"), std::string::npos);
  EXPECT_NE(ErrorOf({"hub=http://a:1", "hub/x=http://b:1"}).find("clashes with 'hub'"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"a/b=http://a:1", "a=http://b:1"}).find("clashes with 'a/b'"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf({"hub=http://a:1"}, {"quay=bob"}).find("--proxy-user quay=bob: no --proxy quay"),
      std::string::npos);
  EXPECT_NE(ErrorOf({"hub=http://a:1"}, {}, {"quay=/f"}).find("--proxy-password-file"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"hub=http://a:1"}, {}, {}, {"quay=/ca"}).find("--proxy-ca"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"hub=http://a:1"}, {"hub=a", "hub=b"}).find("given twice for hub"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"hub=http://a:1"}, {}, {"hub=/f"}).find("needs --proxy-user hub=USER"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"hub=http://a:1"}, {"hub"}).find("--proxy-user: want NAME=VALUE"),
            std::string::npos);
}

TEST(ProxyNamesTest, ANameCoversTheRepositoriesUnderIt) {
  auto r = ParseProxyFlags({"hub=http://a:1", "mirrors/quay=http://b:1"}, {}, {}, {});
  ASSERT_TRUE(r);
  ASSERT_NE(ProxiedBy(*r, "hub/nginx"), nullptr);
  EXPECT_EQ(ProxiedBy(*r, "hub/nginx")->name, "hub");
  EXPECT_EQ(ProxiedBy(*r, "hub/team/app")->name, "hub");
  EXPECT_EQ(ProxiedBy(*r, "mirrors/quay/coreos/etcd")->name, "mirrors/quay");
  EXPECT_EQ(ProxiedBy(*r, "hub"), nullptr);  // the NAME itself maps to no upstream repository
  EXPECT_EQ(ProxiedBy(*r, "hubx/nginx"), nullptr);
  EXPECT_EQ(ProxiedBy(*r, "team/hub/nginx"), nullptr);
  EXPECT_EQ(ProxiedBy(*r, "mirrors/other"), nullptr);
  EXPECT_EQ(ProxiedBy({}, "hub/nginx"), nullptr);
}

TEST(ProxyNamesTest, DockerHubOfficialImagesLiveUnderLibrary) {
  for (const char* hub : {"https://registry-1.docker.io", "https://docker.io",
                          "https://index.docker.io:443", "HTTPS://Registry-1.Docker.IO/"}) {
    EXPECT_TRUE(IsDockerHub(hub)) << hub;
    EXPECT_EQ(UpstreamRepository(hub, "nginx"), "library/nginx") << hub;
    EXPECT_EQ(UpstreamRepository(hub, "library/nginx"), "library/nginx") << hub;
    EXPECT_EQ(UpstreamRepository(hub, "bitnami/redis"), "bitnami/redis") << hub;
  }
  for (const char* other : {"http://127.0.0.1:5000", "https://quay.io", "https://docker.io.evil",
                            "https://mirror.docker.io", "http://user@h:1"}) {
    EXPECT_FALSE(IsDockerHub(other)) << other;
    EXPECT_EQ(UpstreamRepository(other, "nginx"), "nginx") << other;
  }
}

}  // namespace
}  // namespace wharf::upstream

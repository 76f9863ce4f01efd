#include "gateway/public_url.h"

#include <gtest/gtest.h>

namespace wharf {
namespace {

TEST(PublicUrlTest, ValidatesTheFlags) {
  EXPECT_TRUE(PublicUrl::Make("", {}));
  EXPECT_TRUE(PublicUrl::Make("https://registry.example.com", {}));
  EXPECT_TRUE(PublicUrl::Make("http://10.0.0.1:5000/", {}));
  EXPECT_TRUE(PublicUrl::Make("https://[::1]:443", {}));
  for (const char* bad :
       {"registry.example.com", "ftp://x", "https://", "https://x/path", "https://user@x",
        "https://x?q=1", "https://x:99999", "https://x:", "https://bad host"}) {
    auto u = PublicUrl::Make(bad, {});
    ASSERT_FALSE(u) << bad;
    EXPECT_EQ(u.error().code(), Code::kInvalidArgument);
  }
  EXPECT_TRUE(PublicUrl::Make("", {"10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8"}));
  for (const char* bad : {"10.0.0.0/33", "nonsense", "10.0.0.0/", "::1/129", "10.0.0.0/x"}) {
    EXPECT_FALSE(PublicUrl::Make("", {bad})) << bad;
  }
}

TEST(PublicUrlTest, TrustsOnlyTheConfiguredProxies) {
  auto u = PublicUrl::Make("", {"10.1.0.0/16", "127.0.0.1", "fd00::/8"});
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->Trusted("10.1.2.3:4567"));
  EXPECT_FALSE(u->Trusted("10.2.0.1:4567"));
  EXPECT_TRUE(u->Trusted("127.0.0.1:1"));
  EXPECT_FALSE(u->Trusted("127.0.0.2:1"));
  EXPECT_TRUE(u->Trusted("[fd12::1]:80"));
  EXPECT_FALSE(u->Trusted("[fe80::1]:80"));
  EXPECT_TRUE(u->Trusted("[::ffff:10.1.0.9]:80"));  // IPv4-mapped
  EXPECT_FALSE(u->Trusted(""));
  EXPECT_FALSE(u->Trusted("garbage"));
  auto none = PublicUrl::Make("", {});
  EXPECT_FALSE(none->Trusted("127.0.0.1:1"));
}

TEST(PublicUrlTest, HostValues) {
  EXPECT_TRUE(ValidHost("localhost:5000"));
  EXPECT_TRUE(ValidHost("registry.example.com"));
  EXPECT_TRUE(ValidHost("[::1]:5000"));
  EXPECT_FALSE(ValidHost(""));
  EXPECT_FALSE(ValidHost("evil.com/path"));
  EXPECT_FALSE(ValidHost("a b"));
  EXPECT_FALSE(ValidHost("x:0"));
  EXPECT_FALSE(ValidHost("x\r\nSet-Cookie: a"));
  EXPECT_FALSE(ValidHost("[::1"));
  EXPECT_FALSE(ValidHost(std::string(300, 'a')));
}

}  // namespace
}  // namespace wharf

#include <gtest/gtest.h>

#include <string>

#include "auth/base64.h"
#include "auth/credentials.h"

namespace wharf::auth {
namespace {

using namespace std::string_literals;

TEST(Base64Test, RoundTripsEveryLength) {
  std::string data;
  for (int i = 0; i < 70; ++i) {
    auto std_dec = Base64Decode(Base64Encode(data), 1000);
    ASSERT_TRUE(std_dec) << i;
    EXPECT_EQ(*std_dec, data);
    auto url_dec = Base64UrlDecode(Base64UrlEncode(data), 1000);
    ASSERT_TRUE(url_dec) << i;
    EXPECT_EQ(*url_dec, data);
    data += char(i * 37 + 200);
  }
}

TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(Base64Encode("alice:secret"), "YWxpY2U6c2VjcmV0");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(*Base64UrlDecode("-_8", 10), "\xfb\xff");
}

TEST(Base64Test, RejectsMalformed) {
  for (std::string bad : std::vector<std::string>{
           "Zg", "Zg=", "Zg===", "Z===", "Zh==", "Zm9=", "Zm8", "a", "!!!!", "Zm8=Zm8=", "Zg==\n",
           " Zg==", "Zm-_", "====", std::string("Z\0g=", 4)}) {
    EXPECT_FALSE(Base64Decode(bad, 100)) << bad;
  }
  for (std::string bad : {"Zg==", "Zh", "a", "ab+/", "a b", "Zm9", "Zm8=", "\xff\xff"}) {
    EXPECT_FALSE(Base64UrlDecode(bad, 100)) << bad;
  }
}

TEST(Base64Test, BoundsTheDecodedSize) {
  std::string big = Base64Encode(std::string(100, 'x'));
  EXPECT_TRUE(Base64Decode(big, 100));
  auto r = Base64Decode(big, 99);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kTooLarge);
  EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(std::string(101, 'x')), 100).error().code(),
            Code::kTooLarge);
}

TEST(BasicAuthTest, ParsesUserAndPassword) {
  auto c = ParseBasicAuthorization("Basic " + Base64Encode("alice:s3:cr:et"));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "s3:cr:et");
  auto lower = ParseBasicAuthorization("basic   " + Base64Encode("bob:"));
  ASSERT_TRUE(lower);
  EXPECT_EQ(lower->user, "bob");
  EXPECT_EQ(lower->password, "");
  EXPECT_EQ(FormatBasicAuthorization("alice", "secret"), "Basic YWxpY2U6c2VjcmV0");
}

TEST(BasicAuthTest, HostileHeadersAreErrors) {
  std::vector<std::string> bad = {
      "",
      "Basic",
      "Basic ",
      "Bearer abc",
      "Basicx " + Base64Encode("a:b"),
      "Basic " + Base64Encode("nocolon"),
      "Basic " + Base64Encode(":password"),
      "Basic " + Base64Encode("a\0b:c"s),
      "Basic " + Base64Encode("a:b\0c"s),
      "Basic " + Base64Encode("a\nb:c"),
      "Basic " + Base64Encode(std::string(256, 'u') + ":p"),
      "Basic " + Base64Encode("u:" + std::string(1025, 'p')),
      "Basic !!!notbase64",
      "Basic YWxpY2U6c2VjcmV0=",
      "Basic YWxp Y2U6c2VjcmV0",
      "Basic " + std::string(64 * 1024, 'A'),
      "Basic \xff\xfe\x00\x01"s,
  };
  for (const auto& h : bad) {
    auto r = ParseBasicAuthorization(h);
    EXPECT_FALSE(r) << h.substr(0, 80);
  }
  EXPECT_EQ(ParseBasicAuthorization("Basic " + std::string(64 * 1024, 'A')).error().code(),
            Code::kTooLarge);
  // The largest credentials that fit are accepted.
  EXPECT_TRUE(ParseBasicAuthorization(
      "Basic " + Base64Encode(std::string(255, 'u') + ":" + std::string(1024, 'p'))));
}

TEST(BearerAuthTest, ParsesToken) {
  auto t = ParseBearerAuthorization("Bearer abc.def-_.ghi");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, "abc.def-_.ghi");
  EXPECT_TRUE(ParseBearerAuthorization("bearer x"));
  for (std::string bad : {"Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearer a\"b",
                          "Bearer a\x01", "Bearer \xff"}) {
    EXPECT_FALSE(ParseBearerAuthorization(bad)) << bad;
  }
  EXPECT_FALSE(ParseBearerAuthorization("Bearer " + std::string(64 * 1024, 'a')));
}

TEST(SchemeOfTest, Classifies) {
  EXPECT_EQ(SchemeOf(""), AuthScheme::kNone);
  EXPECT_EQ(SchemeOf("Basic x"), AuthScheme::kBasic);
  EXPECT_EQ(SchemeOf("BEARER x"), AuthScheme::kBearer);
  EXPECT_EQ(SchemeOf("Digest x"), AuthScheme::kOther);
}

}  // namespace
}  // namespace wharf::auth

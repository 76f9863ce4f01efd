#include "registry/names.h"

#include <gtest/gtest.h>

#include <string>

namespace wharf {
namespace {

const std::string kSha256 = "sha256:" + std::string(64, 'a');

TEST(ValidRepositoryNameTest, AcceptsGrammar) {
  for (std::string_view n : {"a", "0", "library/ubuntu", "a/b/c/d/e", "foo.bar", "foo_bar",
                             "foo__bar", "foo-bar", "foo---bar", "a1.b2_c3__d4-e5", "9/8/7",
                             "my-org/my.repo/sub_dir", "blobs", "a/blobs/b", "manifests/x"}) {
    EXPECT_TRUE(ValidRepositoryName(n)) << n;
  }
}

TEST(ValidRepositoryNameTest, RejectsOutsideGrammar) {
  for (std::string_view n : {"",   "/",     "a/",   "/a",    "a//b", "A",     "library/Ubuntu",
                             "a.", ".a",    "a..b", "a._b",  "a_.b", "a___b", "-a",
                             "a-", "_a",    "a_",   "a b",   "a\tb", "a%2fb", "a%2Fb",
                             "..", "../a",  "a/..", "a/./b", "a:b",  "a@b",   "a\\b",
                             "é",  "a\xff", "a\n",  "a/b/",  "a+b",  "a~b"}) {
    EXPECT_FALSE(ValidRepositoryName(n)) << n;
  }
  using namespace std::string_literals;
  EXPECT_FALSE(ValidRepositoryName("a\0b"s));
  EXPECT_FALSE(ValidRepositoryName("a\0"s));
}

TEST(ValidRepositoryNameTest, LengthLimit) {
  EXPECT_TRUE(ValidRepositoryName(std::string(255, 'a')));
  EXPECT_FALSE(ValidRepositoryName(std::string(256, 'a')));
  EXPECT_FALSE(ValidRepositoryName(std::string(300, 'a')));
  std::string slashes;  // 128 components of one letter: 255 characters
  for (int i = 0; i < 128; ++i) slashes += i ? "/a" : "a";
  EXPECT_EQ(slashes.size(), 255u);
  EXPECT_TRUE(ValidRepositoryName(slashes));
}

TEST(ValidRepositoryNameTest, HostileInputIsFast) {
  // Patterns that make backtracking regex engines explode; linear here.
  std::string dashes = "a" + std::string(1 << 20, '-');
  EXPECT_FALSE(ValidRepositoryName(dashes));
  std::string mixed;
  for (int i = 0; i < 100000; ++i) mixed += "a-";
  EXPECT_FALSE(ValidRepositoryName(mixed));
  EXPECT_FALSE(ValidRepositoryName(std::string(1 << 20, '/')));
}

TEST(ValidTagTest, AcceptsGrammar) {
  for (std::string_view t :
       {"latest", "v1.0.0", "_hidden", "1", "A", "a-b_c.d", "sha256-abc", "UPPER", "0.1-rc.2"}) {
    EXPECT_TRUE(ValidTag(t)) << t;
  }
  EXPECT_TRUE(ValidTag(std::string(128, 'a')));
}

TEST(ValidTagTest, RejectsOutsideGrammar) {
  for (std::string_view t : {"", ".hidden", "-x", "a/b", "a:b", "a b", "a@b", "a+b", "é", "a\xff",
                             "a%20", "..", "a\n"}) {
    EXPECT_FALSE(ValidTag(t)) << t;
  }
  EXPECT_FALSE(ValidTag(std::string(129, 'a')));
  using namespace std::string_literals;
  EXPECT_FALSE(ValidTag("a\0"s));
}

TEST(ParseReferenceTest, Tag) {
  auto r = ParseReference("latest");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->is_digest());
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->ToString(), "latest");
}

TEST(ParseReferenceTest, Digest) {
  auto r = ParseReference(kSha256);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->is_digest());
  EXPECT_TRUE(r->tag.empty());
  EXPECT_EQ(r->digest.ToString(), kSha256);
  EXPECT_EQ(r->ToString(), kSha256);
}

TEST(ParseReferenceTest, StringWithColonMustBeDigest) {
  EXPECT_EQ(ParseReference("sha256:abc").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReference("v1:2").error().code(), Code::kUnsupported);  // well-formed digest
  EXPECT_EQ(ParseReference(":").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReference("sha256:" + std::string(64, 'A')).error().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseReference("md5:" + std::string(32, 'a')).error().code(), Code::kUnsupported);
}

TEST(ParseReferenceTest, InvalidTags) {
  EXPECT_EQ(ParseReference("").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReference(".x").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReference(std::string(129, 'a')).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReference(std::string(100000, 'a')).error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace wharf

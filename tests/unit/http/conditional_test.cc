#include "http/conditional.h"

#include <gtest/gtest.h>

#include <string>

namespace wharf {
namespace {

const std::string kTag = "\"sha256:abc\"";

TEST(IfNoneMatchTest, MatchesTheTagInAList) {
  EXPECT_TRUE(IfNoneMatchHits(kTag, kTag));
  EXPECT_TRUE(IfNoneMatchHits("\"x\", " + kTag, kTag));
  EXPECT_TRUE(IfNoneMatchHits(" \"x\" ,\t" + kTag + " ", kTag));
  EXPECT_TRUE(IfNoneMatchHits("W/" + kTag, kTag));  // weak comparison
  EXPECT_TRUE(IfNoneMatchHits(kTag, "W/" + kTag));
  EXPECT_TRUE(IfNoneMatchHits("*", kTag));
  EXPECT_TRUE(IfNoneMatchHits(" * ", kTag));
  EXPECT_TRUE(IfNoneMatchHits(",," + kTag + ",", kTag));
}

TEST(IfNoneMatchTest, OtherTagsAndMalformedListsMatchNothing) {
  EXPECT_FALSE(IfNoneMatchHits("", kTag));
  EXPECT_FALSE(IfNoneMatchHits("\"sha256:abd\"", kTag));
  EXPECT_FALSE(IfNoneMatchHits("sha256:abc", kTag));    // unquoted
  EXPECT_FALSE(IfNoneMatchHits("\"sha256:abc", kTag));  // unterminated
  EXPECT_FALSE(IfNoneMatchHits(kTag + " junk", kTag));  // garbage after a tag
  EXPECT_FALSE(IfNoneMatchHits("*, " + kTag, kTag));    // "*" only alone
  EXPECT_FALSE(IfNoneMatchHits("w/" + kTag, kTag));     // the weak prefix is case-sensitive
  EXPECT_FALSE(IfNoneMatchHits(std::string(70000, '"'), kTag));
  EXPECT_FALSE(IfNoneMatchHits(std::string(70000, ','), kTag));
}

}  // namespace
}  // namespace wharf

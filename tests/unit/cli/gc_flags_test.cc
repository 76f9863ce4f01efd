// The garbage collector's flags: durations in whole seconds, "off", and hostile values.
#include "cli/gc_flags.h"

#include <gtest/gtest.h>

namespace wharf::cli {
namespace {

TEST(GcFlagsTest, Defaults) {
  auto f = ParseGcFlags("1h", "");
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ(f->grace, std::chrono::seconds(3600));
  EXPECT_FALSE(f->untagged_after.has_value());
}

TEST(GcFlagsTest, DurationsAndOff) {
  auto f = ParseGcFlags("0", "7d");
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ(f->grace, std::chrono::seconds(0));
  EXPECT_EQ(f->untagged_after, std::chrono::seconds(7 * 86400));
  f = ParseGcFlags("90s", "off");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grace, std::chrono::seconds(90));
  EXPECT_FALSE(f->untagged_after.has_value());
  f = ParseGcFlags("1.5m", "0");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grace, std::chrono::seconds(90));
  EXPECT_EQ(f->untagged_after, std::chrono::seconds(0));
}

TEST(GcFlagsTest, HostileValuesNameTheFlag) {
  for (const char* bad : {"", "-1", "-1h", "abc", "1x", "500ms", "1.5", "1e300", "99999d", "1h30m",
                          " 1h", "1h\n", "nan", "inf", "0x10"}) {
    auto f = ParseGcFlags(bad, "");
    EXPECT_FALSE(f) << "grace \"" << bad << "\"";
    if (!f) {
      EXPECT_EQ(f.error().code(), Code::kInvalidArgument);
      EXPECT_NE(f.error().message().find("--gc-grace"), std::string::npos);
    }
    auto g = ParseGcFlags("1h", bad);
    if (std::string(bad).empty()) continue;  // "" is "off" for this one
    EXPECT_FALSE(g) << "untagged \"" << bad << "\"";
    if (!g) {
      EXPECT_NE(g.error().message().find("--gc-untagged-after"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace wharf::cli

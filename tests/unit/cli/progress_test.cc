#include "cli/progress.h"

#include <gtest/gtest.h>

namespace wharf::cli {
namespace {

TEST(ProgressRender, ShowsBytesPercentRateAndTimeLeft) {
  std::string s = Progress::Render("put big.bin", 100u << 20, 400u << 20, 2.0, 120);
  EXPECT_NE(s.find("put big.bin"), std::string::npos) << s;
  EXPECT_NE(s.find("100.0 MiB / 400.0 MiB"), std::string::npos) << s;
  EXPECT_NE(s.find("25%"), std::string::npos) << s;
  EXPECT_NE(s.find("50.0 MiB/s"), std::string::npos) << s;
  EXPECT_NE(s.find("0:06 left"), std::string::npos) << s;  // 300 MiB at 50 MiB/s
  EXPECT_NE(s.find('['), std::string::npos) << s;
  EXPECT_LT(s.size(), 120u);
}

TEST(ProgressRender, DoneAndNarrowTerminals) {
  std::string s = Progress::Render("get abc", 10u << 20, 10u << 20, 4.0, 100);
  EXPECT_NE(s.find("100%"), std::string::npos) << s;
  EXPECT_NE(s.find("done in 0:04"), std::string::npos) << s;
  std::string narrow = Progress::Render("get abc", 1u << 20, 10u << 20, 1.0, 30);
  EXPECT_LT(narrow.size(), 30u) << narrow;
  // unknown total: no percent, no bar, no time left
  std::string unknown = Progress::Render("get abc", 5u << 20, 0, 1.0, 100);
  EXPECT_EQ(unknown.find('%'), std::string::npos) << unknown;
  EXPECT_EQ(unknown.find("left"), std::string::npos) << unknown;
}

TEST(Progress, DisabledWhenSmallOrNotATerminal) {
  Progress small("put x", 1000);
  EXPECT_FALSE(small.enabled());
  small.Add(1000);
  small.Finish();
}

}  // namespace
}  // namespace wharf::cli

#include "common/log_throttle.h"

#include <gtest/gtest.h>

namespace wharf {
namespace {

TEST(LogThrottleTest, FirstLineThenHeldBackThenACount) {
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  LogThrottle t(std::chrono::seconds(60), [&now] { return now; });
  ASSERT_TRUE(t.Admit().has_value());
  EXPECT_FALSE(t.Admit().has_value()) << "a repeat within the window is held back";
  for (int i = 0; i < 118; ++i) {  // a failure every 500 ms for a minute
    now += std::chrono::milliseconds(500);
    if (now - (std::chrono::steady_clock::time_point{} + std::chrono::hours(1)) <
        std::chrono::seconds(60)) {
      EXPECT_FALSE(t.Admit().has_value()) << i;
    }
  }
  now += std::chrono::seconds(2);
  auto held = t.Admit();
  ASSERT_TRUE(held.has_value());
  EXPECT_GT(*held, 100u);
  EXPECT_EQ(Held(*held).find(std::to_string(*held)), 2u);
  EXPECT_EQ(Held(0), "");
  EXPECT_EQ(Held(1), " (1 similar line held back)");
}

TEST(LogThrottleTest, ResetReportsTheRunAndLogsTheNextFailureAtOnce) {
  auto now = std::chrono::steady_clock::time_point{};
  LogThrottle t(std::chrono::seconds(60), [&now] { return now; });
  EXPECT_EQ(t.Reset(), 0u);
  ASSERT_TRUE(t.Admit().has_value());
  EXPECT_FALSE(t.Admit().has_value());
  EXPECT_FALSE(t.Admit().has_value());
  EXPECT_EQ(t.Reset(), 3u);
  EXPECT_EQ(t.Reset(), 0u);
  auto again = t.Admit();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 0u);
}

}  // namespace
}  // namespace wharf

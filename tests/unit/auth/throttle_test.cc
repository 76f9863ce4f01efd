#include "auth/throttle.h"

#include <gtest/gtest.h>

namespace wharf::auth {
namespace {

using std::chrono::seconds;

class LoginThrottleTest : public ::testing::Test {
 protected:
  ThrottleOptions Options(uint32_t max, size_t addresses = 100) {
    ThrottleOptions o;
    o.max_failures = max;
    o.window = seconds(60);
    o.max_addresses = addresses;
    o.clock = [this] { return now_; };
    return o;
  }
  std::chrono::steady_clock::time_point now_{seconds(1000)};
};

TEST_F(LoginThrottleTest, BlocksAfterNFailuresAMinute) {
  LoginThrottle t(Options(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(t.RetryAfter("10.0.0.1"), std::nullopt);
    t.RecordFailure("10.0.0.1");
    now_ += seconds(10);
  }
  // Failures at 1000, 1010, 1020; now 1030: blocked until 1060.
  auto wait = t.RetryAfter("10.0.0.1");
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, seconds(30));
  EXPECT_EQ(t.RetryAfter("10.0.0.2"), std::nullopt);  // other addresses go on
  now_ += seconds(29) + std::chrono::milliseconds(500);
  EXPECT_EQ(t.RetryAfter("10.0.0.1"), seconds(1));  // rounded up, never 0
  now_ += std::chrono::milliseconds(500);
  EXPECT_EQ(t.RetryAfter("10.0.0.1"), std::nullopt);  // the first failure left the window
  t.RecordFailure("10.0.0.1");
  EXPECT_EQ(t.RetryAfter("10.0.0.1"), seconds(10));  // 1010 + 60 - 1060
}

TEST_F(LoginThrottleTest, SuccessStartsAfresh) {
  LoginThrottle t(Options(2));
  t.RecordFailure("a");
  t.RecordFailure("a");
  EXPECT_TRUE(t.RetryAfter("a"));
  t.RecordSuccess("a");
  EXPECT_EQ(t.RetryAfter("a"), std::nullopt);
  EXPECT_EQ(t.tracked_addresses(), 0u);
  t.RecordSuccess("never-seen");
}

TEST_F(LoginThrottleTest, MemoryIsBounded) {
  LoginThrottle t(Options(2, 3));
  for (int i = 0; i < 1000; ++i) {
    t.RecordFailure("addr" + std::to_string(i));
    t.RecordFailure("addr" + std::to_string(i));
  }
  EXPECT_EQ(t.tracked_addresses(), 3u);
  EXPECT_TRUE(t.RetryAfter("addr999"));
  EXPECT_FALSE(t.RetryAfter("addr0"));  // evicted, least recently failed
  // Failures far beyond the limit keep at most max_failures time points per address.
  for (int i = 0; i < 10000; ++i) t.RecordFailure("addr999");
  EXPECT_EQ(*t.RetryAfter("addr999"), seconds(60));
  // Old entries are dropped when their failures leave the window.
  now_ += seconds(61);
  EXPECT_FALSE(t.RetryAfter("addr999"));
  EXPECT_EQ(t.tracked_addresses(), 2u);
}

TEST_F(LoginThrottleTest, ZeroDisables) {
  LoginThrottle t(Options(0));
  for (int i = 0; i < 100; ++i) t.RecordFailure("a");
  EXPECT_FALSE(t.RetryAfter("a"));
  EXPECT_EQ(t.tracked_addresses(), 0u);
}

}  // namespace
}  // namespace wharf::auth

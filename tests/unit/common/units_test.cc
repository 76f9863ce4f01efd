// Regressions found by fuzz/units_fuzz.cc (each input is also in fuzz/corpus/units/).
#include "common/units.h"

#include <gtest/gtest.h>

namespace wharf {
namespace {

// units.h: 'a trailing "B"/"iB" is optional', so a byte count may say "B".
TEST(UnitsFuzzRegressionTest, PlainByteCountWithB) {
  EXPECT_EQ(ParseBytes("4096B").value(), 4096u);
  EXPECT_EQ(ParseBytes("1536b").value(), 1536u);
  EXPECT_EQ(ParseBytes("18446744073709551615B").value(), UINT64_MAX);
  EXPECT_FALSE(ParseBytes("18446744073709551616B").has_value());
  EXPECT_FALSE(ParseBytes("4096BB").has_value());
}

// Sizes from 2^63 up to 2^64 went through llround, whose long long result overflows there.
TEST(UnitsFuzzRegressionTest, SizesAboveTwoToThe63) {
  EXPECT_EQ(ParseBytes("9999999999800000k").value(), 10239999999795200000u);
  EXPECT_EQ(ParseBytes("16000000T").value(), 17592186044416000000u);
  EXPECT_EQ(ParseBytes("8388608T").value(), 1ull << 63);
  EXPECT_FALSE(ParseBytes("16777216T").has_value());  // 2^64
}

// A reserve given in bytes is kept exactly: through a double, 2^64-1 became 2^64, whose
// conversion back is undefined, and counts above 2^53 lost their low bits.
TEST(UnitsFuzzRegressionTest, ReserveBytesExact) {
  EXPECT_EQ(ParseReserve("18446744073709551615")->BytesOf(0), UINT64_MAX);
  EXPECT_EQ(ParseReserve("9007199254740993")->BytesOf(1), 9007199254740993u);
  EXPECT_EQ(ParseReserve("100%")->BytesOf(UINT64_MAX), UINT64_MAX);
  EXPECT_EQ(ParseReserve("50%")->BytesOf(1000), 500u);
}

}  // namespace
}  // namespace wharf

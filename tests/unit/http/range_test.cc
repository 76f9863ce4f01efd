#include "http/range.h"

#include <gtest/gtest.h>

#include <string>

namespace wharf {
namespace {

constexpr uint64_t kMax = ~uint64_t{0};

// The range a header selects, or nullopt when it is ignored; fails the test on kRangeInvalid.
std::optional<ByteRange> Served(std::string_view header, uint64_t size) {
  auto r = ParseRangeHeader(header, size);
  EXPECT_TRUE(r.has_value()) << header << " -> " << r.error().ToString();
  return r ? *r : std::nullopt;
}

bool Unsatisfiable(std::string_view header, uint64_t size) {
  auto r = ParseRangeHeader(header, size);
  return !r.has_value() && r.error().code() == Code::kRangeInvalid;
}

TEST(ParseRangeHeaderTest, ClosedRange) {
  EXPECT_EQ(Served("bytes=0-499", 1000), (ByteRange{0, 499}));
  EXPECT_EQ(Served("bytes=500-999", 1000), (ByteRange{500, 999}));
  EXPECT_EQ(Served("bytes=5-5", 10), (ByteRange{5, 5}));
  EXPECT_EQ(Served("bytes=5-5", 10)->length(), 1u);
  EXPECT_EQ(Served("bytes=0-0", 1), (ByteRange{0, 0}));
}

TEST(ParseRangeHeaderTest, LastIsClampedToSize) {
  EXPECT_EQ(Served("bytes=0-999999", 10), (ByteRange{0, 9}));
  EXPECT_EQ(Served("bytes=9-10", 10), (ByteRange{9, 9}));
}

TEST(ParseRangeHeaderTest, OpenRange) {
  EXPECT_EQ(Served("bytes=3-", 10), (ByteRange{3, 9}));
  EXPECT_EQ(Served("bytes=0-", 1), (ByteRange{0, 0}));
}

TEST(ParseRangeHeaderTest, SuffixRange) {
  EXPECT_EQ(Served("bytes=-3", 10), (ByteRange{7, 9}));
  EXPECT_EQ(Served("bytes=-10", 10), (ByteRange{0, 9}));
  EXPECT_EQ(Served("bytes=-11", 10), (ByteRange{0, 9}));  // longer than the body: all of it
  EXPECT_EQ(Served("bytes=-1", 1), (ByteRange{0, 0}));
}

TEST(ParseRangeHeaderTest, UnitIsCaseInsensitiveAndOwsIsTrimmed) {
  EXPECT_EQ(Served("BYTES=1-2", 10), (ByteRange{1, 2}));
  EXPECT_EQ(Served("Bytes=1-2", 10), (ByteRange{1, 2}));
  EXPECT_EQ(Served("  bytes=1-2\t", 10), (ByteRange{1, 2}));
  EXPECT_EQ(Served("bytes= 1-2 ", 10), (ByteRange{1, 2}));
}

TEST(ParseRangeHeaderTest, LeadingZeros) {
  EXPECT_EQ(Served("bytes=0001-0002", 10), (ByteRange{1, 2}));
  EXPECT_EQ(Served("bytes=-0003", 10), (ByteRange{7, 9}));
}

TEST(ParseRangeHeaderTest, Unsatisfiable) {
  EXPECT_TRUE(Unsatisfiable("bytes=10-", 10));
  EXPECT_TRUE(Unsatisfiable("bytes=10-20", 10));
  EXPECT_TRUE(Unsatisfiable("bytes=-0", 10));
  EXPECT_TRUE(Unsatisfiable("bytes=-000", 10));
  EXPECT_TRUE(Unsatisfiable("bytes=0-0", 0));
  EXPECT_TRUE(Unsatisfiable("bytes=0-", 0));
  EXPECT_TRUE(Unsatisfiable("bytes=-5", 0));
}

TEST(ParseRangeHeaderTest, HugeNumbersNeverOverflow) {
  const std::string thirty(30, '9');
  EXPECT_TRUE(Unsatisfiable("bytes=" + thirty + "-", 10));
  EXPECT_TRUE(Unsatisfiable("bytes=" + thirty + "-" + thirty, kMax));
  EXPECT_EQ(Served("bytes=0-" + thirty, 10), (ByteRange{0, 9}));
  EXPECT_EQ(Served("bytes=-" + thirty, 10), (ByteRange{0, 9}));
  EXPECT_EQ(Served("bytes=2-18446744073709551615", 10), (ByteRange{2, 9}));
  EXPECT_EQ(Served("bytes=2-18446744073709551616", 10), (ByteRange{2, 9}));
  EXPECT_EQ(Served("bytes=0-", kMax), (ByteRange{0, kMax - 1}));
  EXPECT_EQ(Served("bytes=-" + thirty, kMax), (ByteRange{0, kMax - 1}));
  // Both ends overflow, and last < first: invalid, not "equal after saturation".
  EXPECT_EQ(Served("bytes=300000000000000000000-200000000000000000000", 10), std::nullopt);
  EXPECT_TRUE(Unsatisfiable("bytes=" + std::string(5000, '1') + "-", 10));
  EXPECT_EQ(Served("bytes=" + std::string(5000, '0') + "1-", 10), (ByteRange{1, 9}));
}

TEST(ParseRangeHeaderTest, IgnoredHeaders) {
  for (std::string_view h : {
           "",           "bytes",       "bytes=",          "bytes=-",
           "bytes=--5",  "bytes=-5-10", "bytes=5-3",       "bytes=a-b",
           "bytes=1-b",  "bytes=+1-2",  "bytes=1-+2",      "bytes=-1-",
           "bytes=1 -2", "bytes=1- 2",  "bytes =1-2",      "bytes=1-2,4-5",
           "bytes=1-2,", "bytes=,1-2",  "bytes=0x10-0x20", "bytes=1.5-2",
           "items=0-5",  "bits=0-5",    "bytesx=0-5",      "=0-5",
           "0-5",        "bytes 0-5",   "bytes=1-2-3",     "bytes==1-2",
       }) {
    auto r = ParseRangeHeader(h, 100);
    ASSERT_TRUE(r.has_value()) << "'" << h << "' -> " << r.error().ToString();
    EXPECT_EQ(*r, std::nullopt) << "'" << h << "'";
  }
}

TEST(ParseRangeHeaderTest, NulAndHighBytesAreIgnored) {
  using namespace std::string_literals;
  EXPECT_EQ(Served("bytes=1-2\0"s, 10), std::nullopt);
  EXPECT_EQ(Served("bytes=\0001-2"s, 10), std::nullopt);
  EXPECT_EQ(Served("bytes=1\xff-2", 10), std::nullopt);
  EXPECT_EQ(Served("bytes=\xd9\xa1-2", 10), std::nullopt);  // Arabic-Indic digit one
}

TEST(FormatContentRangeTest, Formats) {
  EXPECT_EQ(FormatContentRange({0, 499}, 1234), "bytes 0-499/1234");
  EXPECT_EQ(FormatContentRange({0, kMax - 1}, kMax),
            "bytes 0-18446744073709551614/18446744073709551615");
  EXPECT_EQ(FormatUnsatisfiedRange(0), "bytes */0");
  EXPECT_EQ(FormatUnsatisfiedRange(1234), "bytes */1234");
}

TEST(ParseUploadContentRangeTest, SpecForm) {
  EXPECT_EQ(*ParseUploadContentRange("0-1023"), (ByteRange{0, 1023}));
  EXPECT_EQ(*ParseUploadContentRange("1024-2047"), (ByteRange{1024, 2047}));
  EXPECT_EQ(*ParseUploadContentRange("5-5"), (ByteRange{5, 5}));
  EXPECT_EQ(*ParseUploadContentRange(" 0-9 "), (ByteRange{0, 9}));
  EXPECT_EQ(*ParseUploadContentRange("0-18446744073709551615"), (ByteRange{0, kMax}));
}

TEST(ParseUploadContentRangeTest, ClientVariants) {
  EXPECT_EQ(*ParseUploadContentRange("bytes 0-9/10"), (ByteRange{0, 9}));
  EXPECT_EQ(*ParseUploadContentRange("bytes 0-9/*"), (ByteRange{0, 9}));
  EXPECT_EQ(*ParseUploadContentRange("Bytes 10-19/100"), (ByteRange{10, 19}));
  EXPECT_EQ(*ParseUploadContentRange("bytes=0-9"), (ByteRange{0, 9}));
  EXPECT_EQ(*ParseUploadContentRange("BYTES=3-4"), (ByteRange{3, 4}));
  EXPECT_EQ(*ParseUploadContentRange("bytes 0-9/" + std::string(30, '9')), (ByteRange{0, 9}));
}

TEST(ParseUploadContentRangeTest, Rejects) {
  for (std::string_view h : {
           "",
           "-",
           "0",
           "0-",
           "-9",
           "5-3",
           "a-b",
           "0x0-0x9",
           "+0-9",
           "-0-9",
           "0 - 9",
           "0-9 0",
           "0-9,10-19",
           "0-9/10",
           "bytes 0-9",
           "bytes 0-9/",
           "bytes 0-9/9",
           "bytes 0-9/5",
           "bytes 0-9/x",
           "bytes 0-9/*/*",
           "bytes */10",
           "bytes=0-9/10",
           "bytes=0-",
           "bytes=-5",
           "items 0-9/10",
           "0-18446744073709551616",
           "18446744073709551616-18446744073709551617",
           "999999999999999999999999999999-999999999999999999999999999999",
       }) {
    auto r = ParseUploadContentRange(h);
    ASSERT_FALSE(r.has_value()) << "'" << h << "' accepted";
    EXPECT_EQ(r.error().code(), Code::kRangeInvalid) << "'" << h << "'";
  }
}

TEST(ParseUploadContentRangeTest, NulBytesRejected) {
  using namespace std::string_literals;
  EXPECT_FALSE(ParseUploadContentRange("0-9\0"s).has_value());
  EXPECT_FALSE(ParseUploadContentRange("0\0-9"s).has_value());
}

}  // namespace
}  // namespace wharf

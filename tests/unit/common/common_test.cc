#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/config.h"
#include "common/digest.h"
#include "common/metrics.h"
#include "common/units.h"

namespace wharf {
namespace {

TEST(DigestTest, ParsesRegisteredAlgorithms) {
  std::string hex64(64, 'a'), hex128(128, '0');
  auto d = Digest::Parse("sha256:" + hex64);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->ToString(), "sha256:" + hex64);
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::kSha256);
  auto d512 = Digest::Parse("sha512:" + hex128);
  ASSERT_TRUE(d512.has_value());
  EXPECT_EQ(d512->algorithm(), DigestAlgorithm::kSha512);
}

TEST(DigestTest, RejectsHostileInput) {
  std::string hex64(64, 'a');
  for (std::string s :
       {std::string(""), std::string(":"), std::string("sha256"), std::string("sha256:"),
        ":" + hex64, "SHA256:" + hex64, "sha256:" + hex64.substr(1), "sha256:" + hex64 + "a",
        "sha256:" + std::string(63, 'a') + "A", "sha256:" + std::string(63, 'a') + "g",
        "sha256:" + hex64 + "\n", std::string("sha256:\0", 8) + hex64, "sha256::" + hex64,
        "-sha256:" + hex64, "sha256-:" + hex64, "sha256:../../" + hex64,
        std::string(10000, 'a') + ":" + hex64}) {
    EXPECT_FALSE(Digest::Parse(s).has_value()) << s;
  }
  auto unknown = Digest::Parse("md5:abc");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code(), Code::kUnsupported);
  EXPECT_EQ(Digest::Parse("sha+256:abc").error().code(), Code::kUnsupported);
}

TEST(HasherTest, KnownVectorsAndResume) {
  EXPECT_EQ(DigestOf("").ToString(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(DigestOf("abc").ToString(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Hasher h;
  h.Update("a");
  auto restored = Hasher::RestoreState(DigestAlgorithm::kSha256, h.SaveState());
  ASSERT_TRUE(restored.has_value());
  restored->Update("bc");
  EXPECT_EQ(restored->Finish(), DigestOf("abc"));
  EXPECT_FALSE(Hasher::RestoreState(DigestAlgorithm::kSha256, "short").has_value());
}

TEST(ChecksumTest, FormatParseRoundTripAndHostile) {
  uint64_t v = ChecksumOf("hello");
  EXPECT_EQ(ParseChecksum(FormatChecksum(v)), v);
  Checksummer c;
  c.Update("hel", 3);
  c.Update("lo", 2);
  EXPECT_EQ(c.Value(), v);
  for (const char* s :
       {"", "xxh3:", "xxh3:123", "xxh3:0123456789abcdefa", "crc:0123456789abcdef",
        "xxh3:0123456789abcdeg", "XXH3:0123456789abcdef", "xxh3: 123456789abcdef"}) {
    EXPECT_FALSE(ParseChecksum(s).has_value()) << s;
  }
}

TEST(UnitsTest, Bytes) {
  EXPECT_EQ(ParseBytes("16MiB").value(), 16u << 20);
  EXPECT_EQ(ParseBytes("1G").value(), 1u << 30);
  EXPECT_EQ(ParseBytes("4096").value(), 4096u);
  EXPECT_EQ(ParseBytes("512k").value(), 512u << 10);
  EXPECT_EQ(ParseBytes("2TiB").value(), 2ull << 40);
  EXPECT_EQ(ParseBytes("4096B").value(), 4096u);
  EXPECT_EQ(ParseBytes("18446744073709551615").value(), UINT64_MAX);
  EXPECT_EQ(ParseBytes("16777215T").value(), 16777215ull << 40);
  for (const char* s :
       {"", "MiB", "-1", "1.2.3", "12XB", "99999999999999999999", "1e5", "100000000000000T",
        "16777216T", ".", "1 2", "1.5k", "1.5MiB", "16mb", "16MB", "4KB", "1gb", "2mib", "0x10"}) {
    EXPECT_FALSE(ParseBytes(s).has_value()) << s;
  }
  // The refusal says what is accepted.
  EXPECT_NE(ParseBytes("16mb").error().message().find("16MiB"), std::string::npos);
}

TEST(UnitsTest, ReserveAndDuration) {
  auto r = ParseReserve("10%");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->BytesOf(1000), 100u);
  EXPECT_EQ(ParseReserve("2GiB")->BytesOf(1), 2ull << 30);
  EXPECT_FALSE(ParseReserve("101%").has_value());
  EXPECT_FALSE(ParseReserve("banana").has_value());
  EXPECT_EQ(ParseDuration("2").value().count(), 2000);
  EXPECT_EQ(ParseDuration("500ms").value().count(), 500);
  EXPECT_EQ(ParseDuration("24h").value().count(), 86400000);
  EXPECT_FALSE(ParseDuration("soon").has_value());
  EXPECT_FALSE(ParseDuration("1e99s").has_value());
}

TEST(UnitsTest, ChunkSizeLimits) {
  EXPECT_TRUE(CheckChunkSize(4u << 10).ok());
  EXPECT_TRUE(CheckChunkSize(16u << 20).ok());
  EXPECT_TRUE(CheckChunkSize(1u << 30).ok());
  EXPECT_EQ(CheckChunkSize(4095).code(), Code::kInvalidArgument);
  EXPECT_EQ(CheckChunkSize((1u << 30) + 1).code(), Code::kInvalidArgument);
  EXPECT_NE(CheckChunkSize(2ull << 40).message().find("1.0 GiB"), std::string::npos);
}

TEST(ConfigTest, SplitCommas) {
  std::vector<std::string> in = {"a,b", "", "c", ",,d,"};
  EXPECT_EQ(SplitCommas(in), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(MetricsTest, RendersPrometheusText) {
  MetricsRegistry reg;
  reg.Counter("wharf_test_total", "A test.", {{"code", "200"}}).Inc(3);
  reg.Gauge("wharf_test_gauge", "G.").Set(1.5);
  reg.Histogram("wharf_test_seconds", "H.", {}, {0.1, 1}).Observe(0.5);
  std::string text = reg.Render();
  EXPECT_NE(text.find("# TYPE wharf_test_total counter"), std::string::npos);
  EXPECT_NE(text.find("wharf_test_total{code=\"200\"} 3"), std::string::npos);
  EXPECT_NE(text.find("wharf_test_gauge 1.5"), std::string::npos);
  EXPECT_NE(text.find("wharf_test_seconds_bucket{le=\"1\"} 1"), std::string::npos);
  EXPECT_NE(text.find("wharf_test_seconds_count 1"), std::string::npos);
  EXPECT_EQ(RenderLabels({{"a", "x\"y\\z\n"}}), "{a=\"x\\\"y\\\\z\\n\"}");
}

}  // namespace
}  // namespace wharf

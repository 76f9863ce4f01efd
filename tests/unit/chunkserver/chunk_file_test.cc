#include "chunkserver/chunk_file.h"

#include <gtest/gtest.h>

namespace wharf {
namespace {

TEST(ChunkFileTest, HeaderRoundTrips) {
  ChunkHeader h{16u << 20, 0x0123456789abcdefULL};
  auto buf = EncodeChunkHeader(h);
  EXPECT_EQ(std::string(buf.data(), 4), "WHCK");
  auto d = DecodeChunkHeader(buf.data(), buf.size());
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->size, h.size);
  EXPECT_EQ(d->checksum, h.checksum);
}

TEST(ChunkFileTest, LayoutIsLittleEndianAtFixedOffsets) {
  auto buf = EncodeChunkHeader({0x0102, 0xff});
  EXPECT_EQ(buf[4], 1);  // version
  EXPECT_EQ(buf[8], 0x02);
  EXPECT_EQ(buf[9], 0x01);
  EXPECT_EQ(static_cast<unsigned char>(buf[16]), 0xff);
  EXPECT_EQ(buf[28] | buf[29] | buf[30] | buf[31], 0);
}

TEST(ChunkFileTest, EveryDamagedByteIsDetected) {
  auto good = EncodeChunkHeader({12345, 678910});
  for (size_t i = 0; i < kChunkHeaderSize; ++i) {
    auto bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    auto d = DecodeChunkHeader(bad.data(), bad.size());
    ASSERT_FALSE(d.has_value()) << "byte " << i;
    EXPECT_EQ(d.error().code(), Code::kCorruption);
  }
}

TEST(ChunkFileTest, TruncatedHeaderIsCorruption) {
  auto good = EncodeChunkHeader({1, 2});
  for (size_t n : {size_t{0}, size_t{4}, kChunkHeaderSize - 1}) {
    EXPECT_EQ(DecodeChunkHeader(good.data(), n).error().code(), Code::kCorruption);
  }
}

}  // namespace
}  // namespace wharf

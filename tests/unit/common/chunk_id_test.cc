#include "common/chunk_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace wharf {
namespace {

TEST(ChunkIdTest, AcceptsExactly32LowercaseHex) {
  EXPECT_TRUE(ValidChunkId("0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(ValidChunkId(std::string(32, '0')));
  EXPECT_TRUE(ValidChunkId(std::string(32, 'f')));
}

TEST(ChunkIdTest, RejectsHostileInput) {
  const std::string ok(32, 'a');
  const std::string bad[] = {
      "",
      "../..",
      "a/b",
      std::string(31, 'a'),
      std::string(33, 'a'),
      std::string(1000, 'a'),
      std::string(32, 'A'),
      "0123456789ABCDEF0123456789abcdef",
      std::string(31, 'a') + 'g',
      std::string(31, 'a') + '\0',
      std::string("\0", 1) + std::string(31, 'a'),
      std::string(16, 'a') + std::string(16, '\0'),
      std::string(14, 'a') + "/../" + std::string(14, 'a'),
      std::string(30, 'a') + "/.",
      std::string(29, 'a') + "\xc3\xa9",  // "é": 2 bytes, 31 total
      std::string(30, 'a') + "\xc3\xa9",  // 32 bytes but not hex
      std::string(31, 'a') + ' ',
      std::string(31, 'a') + '\n',
      " " + std::string(31, 'a'),
      std::string(31, 'a') + '.',
  };
  for (const auto& s : bad) EXPECT_FALSE(ValidChunkId(s)) << "accepted: " << s;
  EXPECT_TRUE(ValidChunkId(ok));
}

TEST(ChunkIdTest, NewIdsAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewChunkId();
    EXPECT_TRUE(ValidChunkId(id)) << id;
    EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
  }
}

}  // namespace
}  // namespace wharf

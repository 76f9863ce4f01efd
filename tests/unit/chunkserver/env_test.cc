#include "chunkserver/env.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/fs.h"

namespace wharf {
namespace {

class PosixEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("wharf-env-" + RandomHex(8))).string();
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string Pattern(size_t n, unsigned seed) {
    std::string s(n, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
      x = x * 1103515245u + 12345u;
      c = static_cast<char>(x >> 24);
    }
    return s;
  }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir_;
  std::shared_ptr<Env> env_ = DefaultEnv();
};

// Whatever the sizes of the appends and of the file (empty, under one block, exactly the 1 MiB
// staging buffer, a partial last buffer), a direct-I/O file holds exactly the bytes appended.
TEST_F(PosixEnvTest, ADirectFileHoldsExactlyWhatWasAppended) {
  const std::vector<size_t> sizes = {
      0, 1, 4095, 32 + 4096, 1u << 20, (1u << 20) + 1, (7u << 19) + 333};
  const std::vector<size_t> pieces = {1, 4096, 65536 + 7, 4u << 20};
  unsigned seed = 0;
  for (size_t size : sizes) {
    for (size_t piece : pieces) {
      for (bool sync : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << "size=" << size << " piece=" << piece << " sync=" << sync);
        const std::string data = Pattern(size, ++seed);
        const std::string path = dir_ + "/f" + std::to_string(seed);
        auto f = env_->NewWritableFile(path, WriteMode::kDirect);
        ASSERT_TRUE(f.has_value()) << f.error().message();
        for (size_t off = 0; off < data.size(); off += piece) {
          size_t n = std::min(piece, data.size() - off);
          ASSERT_TRUE((*f)->Append(data.data() + off, n).ok());
        }
        ASSERT_TRUE((sync ? (*f)->Sync() : (*f)->Flush()).ok());
        ASSERT_TRUE((*f)->Close().ok());
        EXPECT_EQ(ReadAll(path), data);
      }
    }
  }
}

// A flush in the middle (its partial buffer written through the page cache) does not stop
// later appends from landing right after it.
TEST_F(PosixEnvTest, ADirectFileKeepsAppendingAfterAFlush) {
  const std::string a = Pattern((1u << 20) + 100, 1), b = Pattern((2u << 20) + 5, 2);
  const std::string path = dir_ + "/f";
  auto f = env_->NewWritableFile(path, WriteMode::kDirect);
  ASSERT_TRUE(f.has_value()) << f.error().message();
  ASSERT_TRUE((*f)->Append(a.data(), a.size()).ok());
  ASSERT_TRUE((*f)->Flush().ok());
  ASSERT_TRUE((*f)->Append(b.data(), b.size()).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadAll(path), a + b);
}

// Dropped without Flush or Sync, a direct file may lose its unwritten tail (as a buffered one
// may lose unsynced data), but what it wrote is a prefix of what was appended.
TEST_F(PosixEnvTest, ADirectFileDroppedUnflushedHoldsAPrefix) {
  const std::string data = Pattern((3u << 20) + 77, 3);
  const std::string path = dir_ + "/f";
  {
    auto f = env_->NewWritableFile(path, WriteMode::kDirect);
    ASSERT_TRUE(f.has_value()) << f.error().message();
    ASSERT_TRUE((*f)->Append(data.data(), data.size()).ok());
  }
  std::string got = ReadAll(path);
  EXPECT_GE(got.size(), 3u << 20);  // every full staging buffer was written
  EXPECT_EQ(got, data.substr(0, got.size()));
}

TEST_F(PosixEnvTest, CreatingAnExistingFileFailsInEitherMode) {
  for (WriteMode mode : {WriteMode::kBuffered, WriteMode::kDirect}) {
    const std::string path = dir_ + "/exists";
    std::ofstream(path) << "x";
    auto f = env_->NewWritableFile(path, mode);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code(), Code::kIOError);
    EXPECT_EQ(ReadAll(path), "x");
  }
}

}  // namespace
}  // namespace wharf

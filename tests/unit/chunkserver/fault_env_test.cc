#include "support/fault_env.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"

namespace wharf {
namespace {

class FaultEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("wharf-fault-env-" + RandomHex(8))).string();
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteFile(const std::string& path, std::string_view a, bool sync_a, std::string_view b) {
    auto f = env_.NewWritableFile(path, WriteMode::kBuffered);
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE((*f)->Append(a.data(), a.size()).ok());
    if (sync_a) {
      ASSERT_TRUE((*f)->Sync().ok());
    }
    ASSERT_TRUE((*f)->Append(b.data(), b.size()).ok());
    ASSERT_TRUE((*f)->Close().ok());
  }

  std::string dir_;
  FaultInjectingEnv env_;
};

TEST_F(FaultEnvTest, FailsTheNthCallOnly) {
  env_.FailNth(FaultInjectingEnv::Op::kSyncDir, 2);
  EXPECT_TRUE(env_.SyncDir(dir_).ok());
  EXPECT_EQ(env_.SyncDir(dir_).code(), Code::kIOError);
  EXPECT_TRUE(env_.SyncDir(dir_).ok());
  EXPECT_EQ(env_.CallCount(FaultInjectingEnv::Op::kSyncDir), 3);
}

TEST_F(FaultEnvTest, StickyFaultKeepsFailingUntilCleared) {
  env_.FailNth(FaultInjectingEnv::Op::kSyncDir, 1, /*sticky=*/true);
  EXPECT_FALSE(env_.SyncDir(dir_).ok());
  EXPECT_FALSE(env_.SyncDir(dir_).ok());
  env_.ClearFaults();
  EXPECT_TRUE(env_.SyncDir(dir_).ok());
}

TEST_F(FaultEnvTest, DropUnsyncedDataTruncatesToLastSync) {
  std::string path = dir_ + "/f";
  WriteFile(path, "durable", true, "-lost");
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  EXPECT_EQ(*ReadFile(path), "durable-lost");
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(*ReadFile(path), "durable");
}

TEST_F(FaultEnvTest, DropUnsyncedDataRemovesEntriesWithoutDirSync) {
  std::string a = dir_ + "/a", b = dir_ + "/b";
  WriteFile(a, "x", true, "");
  ASSERT_TRUE(env_.Rename(a, b).ok());
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(ReadFile(b).error().code(), Code::kNotFound);
  EXPECT_EQ(ReadFile(a).error().code(), Code::kNotFound);
}

TEST_F(FaultEnvTest, RenameThenDirSyncSurvives) {
  std::string a = dir_ + "/a", b = dir_ + "/b";
  WriteFile(a, "x", true, "");
  ASSERT_TRUE(env_.Rename(a, b).ok());
  ASSERT_TRUE(env_.SyncDir(dir_ + "/").ok());  // trailing slash: same directory
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(*ReadFile(b), "x");
}

TEST_F(FaultEnvTest, FlipByteInvertsOneByte) {
  std::string path = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(path, "abc").ok());
  ASSERT_TRUE(FaultInjectingEnv::FlipByte(path, 1).ok());
  std::string got = *ReadFile(path);
  EXPECT_EQ(got[0], 'a');
  EXPECT_EQ(got[1], static_cast<char>(~'b'));
  EXPECT_EQ(got[2], 'c');
  EXPECT_FALSE(FaultInjectingEnv::FlipByte(path, 3).ok());
}

}  // namespace
}  // namespace wharf

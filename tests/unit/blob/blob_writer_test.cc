// BlobWriter's lifetime: pieces in flight never outlive what they use.
#include "blob_test_env.h"

namespace wharf::testing {
namespace {

using BlobWriterTest = BlobTest;

TEST_F(BlobWriterTest, AWriterDestroyedWithPiecesInFlightLeavesNoLiveChunks) {
  // Pieces run as detached coroutines. A writer dropped without Finish (a caller's early
  // return) must not be touched by them afterwards, and what they wrote is released: nobody
  // will ever append those chunks to the session.
  Run([&]() -> awaitable<void> {
    UploadSession s;
    s.id = "abandoned";
    s.hash_state = Hasher().SaveState();
    MetaStore* meta = meta_.get();
    auto create = [meta, s] { return meta->CreateUpload(s); };
    EXPECT_TRUE((co_await Offload(create)).ok());
    fake_->hold = true;
    auto writer = std::make_unique<BlobWriter>(ctx_, s.id, Hasher());
    const std::string data = Bytes(3 * 4096, 'z');
    EXPECT_TRUE((co_await writer->Write(data.data(), data.size())).ok());
    for (int i = 0; i < 500 && fake_->puts_started < 3; ++i) {
      co_await SleepFor(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(fake_->puts_started, 3);
    writer.reset();
    // Reuse the freed memory, so that a piece still using its writer would read garbage.
    std::vector<std::unique_ptr<char[]>> junk;
    for (int i = 0; i < 64; ++i) {
      junk.emplace_back(new char[sizeof(BlobWriter)]);
      std::memset(junk.back().get(), 0xA5, sizeof(BlobWriter));
    }
    fake_->Release();
    bool released = false;
    for (int i = 0; i < 500 && !released; ++i) {
      co_await SleepFor(std::chrono::milliseconds(10));
      released = fake_->puts_done == 3;
      for (const std::string& id : fake_->put_ids) {
        released = released && StateOf(id) == ChunkState::kGarbage;
      }
    }
    EXPECT_TRUE(released) << "chunks of the abandoned writer stay live";
  });
}

}  // namespace
}  // namespace wharf::testing

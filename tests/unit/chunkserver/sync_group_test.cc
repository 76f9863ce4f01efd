#include "chunkserver/sync_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace wharf {
namespace {

// Waits (bounded) until `pred` holds.
template <typename P>
bool Eventually(P pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

TEST(SyncGroupTest, CallersArrivingDuringASyncShareTheNextOne) {
  SyncGroup g;
  std::atomic<int> calls{0};
  constexpr int kCallers = 8;
  // The first sync holds until every other caller waits; they all arrived after it began, so
  // it cannot cover them, and one more sync covers them all.
  auto sync = [&] {
    if (calls.fetch_add(1) == 0) {
      EXPECT_TRUE(Eventually([&] { return g.waiting() == kCallers; }));
    }
    return Status::Ok();
  };
  std::thread first([&] { EXPECT_TRUE(g.Sync(sync).ok()); });
  ASSERT_TRUE(Eventually([&] { return calls.load() == 1; }));
  std::vector<std::thread> rest;
  for (int i = 1; i < kCallers; ++i) rest.emplace_back([&] { EXPECT_TRUE(g.Sync(sync).ok()); });
  first.join();
  for (auto& t : rest) t.join();
  EXPECT_EQ(g.runs(), 2u);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(g.waiting(), 0u);
}

TEST(SyncGroupTest, ASyncNeverCoversACallerThatArrivedAfterItBegan) {
  SyncGroup g;
  std::atomic<bool> release{false};
  std::atomic<int> calls{0};
  auto slow = [&] {
    calls++;
    EXPECT_TRUE(Eventually([&] { return release.load(); }));
    return Status::Ok();
  };
  std::thread first([&] { EXPECT_TRUE(g.Sync(slow).ok()); });
  ASSERT_TRUE(Eventually([&] { return calls.load() == 1; }));
  std::atomic<bool> late_done{false};
  std::thread late([&] {
    EXPECT_TRUE(g.Sync(slow).ok());
    late_done = true;
  });
  ASSERT_TRUE(Eventually([&] { return g.waiting() == 2; }));
  release = true;
  first.join();
  late.join();
  EXPECT_TRUE(late_done.load());
  EXPECT_EQ(calls.load(), 2) << "the late caller needed a sync of its own";
}

TEST(SyncGroupTest, AFailedSyncFailsItsCallersAndEveryLaterOne) {
  SyncGroup g;
  EXPECT_TRUE(g.Sync([] { return Status::Ok(); }).ok());
  EXPECT_EQ(g.Sync([] { return IOError("syncfs: EIO"); }).code(), Code::kIOError);
  int ran = 0;
  Status later = g.Sync([&] {
    ran++;
    return Status::Ok();
  });
  EXPECT_EQ(later.code(), Code::kIOError) << "a later success proves nothing of earlier writes";
  EXPECT_EQ(ran, 0);
}

TEST(SyncGroupTest, StoresOfOneEnvAndFileSystemShareAGroup) {
  int env_a = 0, env_b = 0;
  auto g1 = SyncGroup::For(&env_a, 7);
  EXPECT_EQ(SyncGroup::For(&env_a, 7), g1);
  EXPECT_NE(SyncGroup::For(&env_a, 8), g1);
  EXPECT_NE(SyncGroup::For(&env_b, 7), g1);
  g1.reset();  // unused groups are not kept
  auto g2 = SyncGroup::For(&env_a, 7);
  EXPECT_EQ(g2->runs(), 0u);
}

}  // namespace
}  // namespace wharf

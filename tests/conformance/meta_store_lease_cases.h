// MetaStoreSuite cases for the store's identity and the background-work leases ("Identity and
// background leases" in meta_store.h). Included by meta_store_suite.h; not a header of its own.
#pragma once

#include <set>

namespace wharf::testing {

TEST_P(MetaStoreSuite, StoreIdIsStableAcrossOpensAndSharedByEveryStoreObject) {
  auto id = s().StoreId();
  META_ASSERT_OK(id);
  EXPECT_EQ(id->rfind("ms-", 0), 0u) << *id;
  EXPECT_EQ(id->size(), 3u + 32u) << *id;
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  auto seen = other->StoreId();
  META_ASSERT_OK(seen);
  EXPECT_EQ(*seen, *id);
  Reopen();
  auto again = s().StoreId();
  META_ASSERT_OK(again);
  EXPECT_EQ(*again, *id);
}

TEST_P(MetaStoreSuite, StoreIdDiffersBetweenDatabases) {
  auto id = s().StoreId();
  META_ASSERT_OK(id);
  const std::string url = GetParam().fresh_url();
  ASSERT_FALSE(url.empty());
  auto fresh = OpenMetaStore(url);
  ASSERT_TRUE(fresh) << fresh.error().ToString();
  auto other = (*fresh)->StoreId();
  META_ASSERT_OK(other);
  EXPECT_NE(*other, *id);
}

TEST_P(MetaStoreSuite, LeaseArgumentsAreChecked) {
  META_EXPECT_CODE(s().AcquireLease("", "a", 5), Code::kInvalidArgument);
  META_EXPECT_CODE(s().AcquireLease("gc", "", 5), Code::kInvalidArgument);
  META_EXPECT_CODE(s().AcquireLease("gc", "a", 0), Code::kInvalidArgument);
  META_EXPECT_CODE(s().AcquireLease("gc", "a", -1), Code::kInvalidArgument);
  META_EXPECT_CODE(s().ReleaseLease("", "a"), Code::kInvalidArgument);
  META_EXPECT_CODE(s().ReleaseLease("gc", ""), Code::kInvalidArgument);
}

TEST_P(MetaStoreSuite, LeaseIsHeldUntilItExpiresThenTakenOver) {
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  const int64_t t0 = now_.load();
  auto a = s().AcquireLease("gc", "gw-a", 5);
  META_ASSERT_OK(a);
  EXPECT_EQ(*a, (LeaseInfo{"gw-a", t0 + 5, true}));
  // Another gateway, another lease name: independent.
  auto u = other->AcquireLease("uploads", "gw-b", 5);
  META_ASSERT_OK(u);
  EXPECT_TRUE(u->held);
  // B is refused while A's claim runs, and learns who holds it until when.
  now_ += 4;
  auto b = other->AcquireLease("gc", "gw-b", 5);
  META_ASSERT_OK(b);
  EXPECT_EQ(*b, (LeaseInfo{"gw-a", t0 + 5, false}));
  // A renews: its claim moves on from now.
  a = s().AcquireLease("gc", "gw-a", 5);
  META_ASSERT_OK(a);
  EXPECT_EQ(*a, (LeaseInfo{"gw-a", t0 + 9, true}));
  now_ += 4;  // t0 + 8: still A's
  b = other->AcquireLease("gc", "gw-b", 5);
  META_ASSERT_OK(b);
  EXPECT_FALSE(b->held);
  // A dies (stops renewing): at its expiry B takes over, and A, coming back, is refused.
  now_ += 1;  // t0 + 9
  b = other->AcquireLease("gc", "gw-b", 5);
  META_ASSERT_OK(b);
  EXPECT_EQ(*b, (LeaseInfo{"gw-b", t0 + 14, true}));
  a = s().AcquireLease("gc", "gw-a", 5);
  META_ASSERT_OK(a);
  EXPECT_EQ(*a, (LeaseInfo{"gw-b", t0 + 14, false}));
  // Durable: a reopened store sees B's claim.
  Reopen();
  a = s().AcquireLease("gc", "gw-a", 5);
  META_ASSERT_OK(a);
  EXPECT_EQ(a->holder, "gw-b");
}

TEST_P(MetaStoreSuite, LeaseGivenUpIsFreeAtOnceAndOnlyTheHolderGivesItUp) {
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  META_ASSERT_OK(s().AcquireLease("gc", "gw-a", 60));
  META_ASSERT_OK(other->ReleaseLease("gc", "gw-b"));  // not B's: nothing changes
  auto b = other->AcquireLease("gc", "gw-b", 60);
  META_ASSERT_OK(b);
  EXPECT_FALSE(b->held);
  META_ASSERT_OK(s().ReleaseLease("gc", "gw-a"));
  META_ASSERT_OK(s().ReleaseLease("never-taken", "gw-a"));
  b = other->AcquireLease("gc", "gw-b", 60);
  META_ASSERT_OK(b);
  EXPECT_TRUE(b->held);
  EXPECT_EQ(b->holder, "gw-b");
}

// Several store objects (gateways) race for a free lease, many times: exactly one wins each
// round, and every loser is told the winner's name.
TEST_P(MetaStoreSuite, LeaseTwoStoresRacingExactlyOneWins) {
  constexpr int kStores = 3;
  constexpr int kRounds = 20;
  std::vector<std::unique_ptr<MetaStore>> stores;
  for (int i = 0; i < kStores; ++i) {
    stores.push_back(OpenAnother());
    ASSERT_NE(stores.back(), nullptr);
  }
  for (int round = 0; round < kRounds; ++round) {
    const std::string name = fmt::format("race-{}", round);
    std::vector<Result<LeaseInfo>> got(kStores, Err(Internal("not run")));
    std::vector<std::thread> threads;
    for (int i = 0; i < kStores; ++i) {
      threads.emplace_back(
          [&, i] { got[i] = stores[i]->AcquireLease(name, fmt::format("gw-{}", i), 30); });
    }
    for (auto& t : threads) t.join();
    int winners = 0;
    std::set<std::string> holders;
    for (int i = 0; i < kStores; ++i) {
      META_ASSERT_OK(got[i]);
      winners += got[i]->held ? 1 : 0;
      holders.insert(got[i]->holder);
    }
    EXPECT_EQ(winners, 1) << name;
    EXPECT_EQ(holders.size(), 1u) << name;
  }
}

}  // namespace wharf::testing

// MetaStoreSuite cases for the work queue ("Work queue" in meta_store.h): enqueue, idempotent
// re-enqueue, claim order and exclusivity, complete, fail with backoff, re-enqueue while
// running, restart recovery of items left running, lease expiry, stats, listing, DigestQueued,
// pruning, and several store objects claiming at once. Included by meta_store_suite.h; not a
// header of its own.
#pragma once

#include <set>

namespace wharf::testing {

namespace queue_cases {

inline const std::string kTarget = "http://centre:5000";

inline QueueKey BlobKey(std::string_view content, std::string repo = "team/app",
                        std::string target = kTarget) {
  return {QueueKind::kBlob, std::move(target), std::move(repo), DigestOf(content).ToString(), ""};
}
inline QueueKey ManifestKey(const Digest& d, std::string repo = "team/app") {
  return {QueueKind::kManifest, kTarget, std::move(repo), d.ToString(), ""};
}
inline QueueKey TagKey(std::string tag, std::string repo = "team/app") {
  return {QueueKind::kTag, kTarget, std::move(repo), "", std::move(tag)};
}

}  // namespace queue_cases

using namespace queue_cases;  // NOLINT: test-local helpers

TEST_P(MetaStoreSuite, QueueKeysAreChecked) {
  META_EXPECT_CODE(s().EnqueueItem({QueueKind::kBlob, "", "r", DigestOf("x").ToString(), ""}),
                   Code::kInvalidArgument);
  META_EXPECT_CODE(s().EnqueueItem({QueueKind::kBlob, kTarget, "", DigestOf("x").ToString(), ""}),
                   Code::kInvalidArgument);
  META_EXPECT_CODE(s().EnqueueItem({QueueKind::kBlob, kTarget, "r", "sha256:nothex", ""}),
                   Code::kInvalidArgument);
  META_EXPECT_CODE(
      s().EnqueueItem({QueueKind::kManifest, kTarget, "r", DigestOf("x").ToString(), "v1"}),
      Code::kInvalidArgument);
  META_EXPECT_CODE(s().EnqueueItem({QueueKind::kTag, kTarget, "r", "", ""}),
                   Code::kInvalidArgument);
  META_EXPECT_CODE(s().EnqueueItem({QueueKind::kTag, kTarget, "r", DigestOf("x").ToString(), "v"}),
                   Code::kInvalidArgument);
  // A delete names a digest or a tag, not both, not neither.
  META_EXPECT_CODE(s().EnqueueItem({QueueKind::kDelete, kTarget, "r", "", ""}),
                   Code::kInvalidArgument);
  META_EXPECT_CODE(
      s().EnqueueItem({QueueKind::kDelete, kTarget, "r", DigestOf("x").ToString(), "v"}),
      Code::kInvalidArgument);
  META_EXPECT_CODE(s().EnqueueItem({QueueKind::kDelete, kTarget, "r", "sha256:nothex", ""}),
                   Code::kInvalidArgument);
  META_EXPECT_CODE(
      s().EnqueueItem({static_cast<QueueKind>(9), kTarget, "r", DigestOf("x").ToString(), ""}),
      Code::kInvalidArgument);
  META_EXPECT_CODE(s().ClaimQueueItems("", "gw", 10, 1), Code::kInvalidArgument);
  META_EXPECT_CODE(s().ClaimQueueItems(kTarget, "", 10, 1), Code::kInvalidArgument);
  META_EXPECT_CODE(s().ClaimQueueItems(kTarget, "gw", 0, 1), Code::kInvalidArgument);
  META_EXPECT_CODE(s().ClaimQueueItems(kTarget, "gw", 10, 0), Code::kInvalidArgument);
  META_EXPECT_CODE(s().RenewQueueClaims("", 10), Code::kInvalidArgument);
  META_EXPECT_CODE(s().RenewQueueClaims("gw", 0), Code::kInvalidArgument);
  META_EXPECT_CODE(s().RecoverQueueItems(""), Code::kInvalidArgument);
  EXPECT_EQ(Must(s().GetQueueStats("")), QueueStats{});
}

TEST_P(MetaStoreSuite, QueueEnqueueIsDurableAndReEnqueueIsIdempotent) {
  const int64_t t0 = now_.load();
  auto a = s().EnqueueItem(BlobKey("layer"));
  META_ASSERT_OK(a);
  EXPECT_GT(a->id, 0);
  EXPECT_EQ(a->key, BlobKey("layer"));
  EXPECT_EQ(a->state, QueueState::kPending);
  EXPECT_EQ(a->attempts, 0);
  EXPECT_EQ(a->next_attempt_unix, t0);
  EXPECT_EQ(a->created_unix, t0);
  EXPECT_EQ(a->version, 1);
  EXPECT_EQ(a->last_error, "");
  now_ += 5;
  // The same item again: the same row, nothing reset but the version.
  auto again = s().EnqueueItem(BlobKey("layer"));
  META_ASSERT_OK(again);
  EXPECT_EQ(again->id, a->id);
  EXPECT_EQ(again->created_unix, t0);
  EXPECT_EQ(again->version, 2);
  // Another repository, target or kind is another item.
  auto other_repo = Must(s().EnqueueItem(BlobKey("layer", "team/other")));
  auto other_target = Must(s().EnqueueItem(BlobKey("layer", "team/app", "https://dr:5000")));
  auto tag = Must(s().EnqueueItem(TagKey("v1")));
  EXPECT_NE(other_repo.id, a->id);
  EXPECT_NE(other_target.id, a->id);
  EXPECT_GT(tag.id, other_target.id);  // ids grow in enqueue order
  Reopen();
  auto got = s().GetQueueItem(BlobKey("layer"));
  META_ASSERT_OK(got);
  EXPECT_EQ(*got, *again);
  META_EXPECT_CODE(s().GetQueueItem(BlobKey("never")), Code::kNotFound);
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)), (QueueStats{3, 0, 0, 0, t0}));
  EXPECT_EQ(Must(s().GetQueueStats("")).pending, 4u);
}

TEST_P(MetaStoreSuite, QueueClaimsBlobsBeforeManifestsBeforeTagsAndEachItemOnce) {
  const Digest m = DigestOf("manifest");
  META_ASSERT_OK(s().EnqueueItem(TagKey("v1")));
  META_ASSERT_OK(s().EnqueueItem(ManifestKey(m)));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("config")));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("layer")));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("elsewhere", "team/app", "https://dr:5000")));
  const int64_t t0 = now_.load();
  auto first = s().ClaimQueueItems(kTarget, "gw-a", 60, 3);
  META_ASSERT_OK(first);
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].key, BlobKey("config"));
  EXPECT_EQ((*first)[1].key, BlobKey("layer"));
  EXPECT_EQ((*first)[2].key, ManifestKey(m));
  for (const QueueItem& it : *first) {
    EXPECT_EQ(it.state, QueueState::kRunning);
    EXPECT_EQ(it.holder, "gw-a");
    EXPECT_EQ(it.lease_until_unix, t0 + 60);
    EXPECT_EQ(it.attempts, 1);
  }
  // Claimed items are nobody else's; the rest goes to the next claimer.
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  auto second = other->ClaimQueueItems(kTarget, "gw-b", 60, 10);
  META_ASSERT_OK(second);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].key, TagKey("v1"));
  EXPECT_THAT(Must(s().ClaimQueueItems(kTarget, "gw-c", 60, 10)), IsEmpty());
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)), (QueueStats{0, 4, 0, 0, t0}));
}

// Deletes (a manifest's by digest, a tag's) are items of their own, read back as stored, claimed
// after the pushes of the same target, and never make content count as queued.
TEST_P(MetaStoreSuite, QueueDeleteItemsComeAfterPushesAndLeaveContentUnqueued) {
  const Digest m = DigestOf("deleted manifest");
  const QueueKey by_digest{QueueKind::kDelete, kTarget, "team/app", m.ToString(), ""};
  const QueueKey by_tag{QueueKind::kDelete, kTarget, "team/app", "", "v1"};
  META_ASSERT_OK(s().EnqueueItem(by_digest));
  META_ASSERT_OK(s().EnqueueItem(by_tag));
  META_ASSERT_OK(s().EnqueueItem(TagKey("v2")));
  META_ASSERT_OK(s().EnqueueItem(ManifestKey(DigestOf("pushed"))));
  EXPECT_FALSE(Must(s().DigestQueued(m)));
  Reopen();
  EXPECT_EQ(Must(s().GetQueueItem(by_digest)).key, by_digest);
  EXPECT_EQ(Must(s().GetQueueItem(by_tag)).key, by_tag);
  auto claimed = Must(s().ClaimQueueItems(kTarget, "gw", 60, 10));
  ASSERT_EQ(claimed.size(), 4u);
  EXPECT_EQ(claimed[0].key, ManifestKey(DigestOf("pushed")));
  EXPECT_EQ(claimed[1].key, TagKey("v2"));
  EXPECT_EQ(claimed[2].key, by_digest);
  EXPECT_EQ(claimed[3].key, by_tag);
  EXPECT_EQ(QueueKindName(claimed[2].key.kind), "delete");
  for (const QueueItem& it : claimed) META_ASSERT_OK(s().CompleteQueueItem(it));
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)).done, 4u);
}

TEST_P(MetaStoreSuite, QueueCompleteMarksDoneAndOnlyTheClaimHolderMayComplete) {
  META_ASSERT_OK(s().EnqueueItem(BlobKey("layer")));
  auto claimed = Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 1));
  ASSERT_EQ(claimed.size(), 1u);
  QueueItem forged = claimed[0];
  forged.holder = "gw-b";
  META_EXPECT_CODE(s().CompleteQueueItem(forged), Code::kConflict);
  now_ += 3;
  META_ASSERT_OK(s().CompleteQueueItem(claimed[0]));
  auto done = Must(s().GetQueueItem(BlobKey("layer")));
  EXPECT_EQ(done.state, QueueState::kDone);
  EXPECT_EQ(done.updated_unix, now_.load());
  EXPECT_EQ(done.attempts, 1);
  // Completed: the claim is gone, a second completion is refused, nothing is claimable.
  META_EXPECT_CODE(s().CompleteQueueItem(claimed[0]), Code::kConflict);
  EXPECT_THAT(Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 10)), IsEmpty());
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)), (QueueStats{0, 0, 0, 1, 0}));
  // Enqueued again once done (pushed again): pending from scratch.
  now_ += 10;
  auto back = Must(s().EnqueueItem(BlobKey("layer")));
  EXPECT_EQ(back.id, done.id);
  EXPECT_EQ(back.state, QueueState::kPending);
  EXPECT_EQ(back.attempts, 0);
  EXPECT_EQ(back.created_unix, now_.load());
  EXPECT_EQ(back.next_attempt_unix, now_.load());
}

TEST_P(MetaStoreSuite, QueueFailRetriesWithBackoffThenGivesUp) {
  META_ASSERT_OK(s().EnqueueItem(TagKey("v1")));
  auto c1 = Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 1));
  ASSERT_EQ(c1.size(), 1u);
  META_EXPECT_CODE(s().FailQueueItem(c1[0], "x", -1), Code::kInvalidArgument);
  const int64_t t0 = now_.load();
  const int64_t delay = QueueBackoffSeconds(c1[0].attempts, 2, 60);
  EXPECT_EQ(delay, 2);
  META_ASSERT_OK(s().FailQueueItem(c1[0], "upstream unreachable", delay));
  auto failed = Must(s().GetQueueItem(TagKey("v1")));
  EXPECT_EQ(failed.state, QueueState::kPending);
  EXPECT_EQ(failed.next_attempt_unix, t0 + 2);
  EXPECT_EQ(failed.last_error, "upstream unreachable");
  EXPECT_EQ(failed.holder, "");
  // Not before its time.
  now_ += 1;
  EXPECT_THAT(Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 1)), IsEmpty());
  now_ += 1;
  auto c2 = Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 1));
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_EQ(c2[0].attempts, 2);
  EXPECT_EQ(c2[0].last_error, "upstream unreachable");  // kept while it runs again
  EXPECT_EQ(QueueBackoffSeconds(c2[0].attempts, 2, 60), 4);
  // Given up for good: failed, visible, not claimed, counted.
  META_ASSERT_OK(s().FailQueueItem(c2[0], "manifest invalid upstream", std::nullopt));
  auto gone = Must(s().GetQueueItem(TagKey("v1")));
  EXPECT_EQ(gone.state, QueueState::kFailed);
  EXPECT_EQ(gone.last_error, "manifest invalid upstream");
  now_ += 1000;
  EXPECT_THAT(Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 1)), IsEmpty());
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)).failed, 1u);
  EXPECT_EQ(Must(s().ListQueueItems(kTarget, QueueState::kFailed, 0, 10)).size(), 1u);
  // A stale claim cannot fail it again.
  META_EXPECT_CODE(s().FailQueueItem(c2[0], "again", 1), Code::kConflict);
}

TEST_P(MetaStoreSuite, QueueBackoffDoublesUpToItsCap) {
  EXPECT_EQ(QueueBackoffSeconds(0, 1, 30), 1);
  EXPECT_EQ(QueueBackoffSeconds(1, 1, 30), 1);
  EXPECT_EQ(QueueBackoffSeconds(2, 1, 30), 2);
  EXPECT_EQ(QueueBackoffSeconds(5, 1, 30), 16);
  EXPECT_EQ(QueueBackoffSeconds(6, 1, 30), 30);
  EXPECT_EQ(QueueBackoffSeconds(1'000'000, 1, 30), 30);
  EXPECT_EQ(QueueBackoffSeconds(50, 0, 30), 0);
}

// A tag pushed again while its item ships (with the value read before the push) is shipped
// once more after that attempt ends, whether the attempt succeeded or failed for good.
TEST_P(MetaStoreSuite, QueueReEnqueueWhileRunningShipsAgain) {
  META_ASSERT_OK(s().EnqueueItem(TagKey("latest")));
  auto c1 = Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 1));
  ASSERT_EQ(c1.size(), 1u);
  auto during = Must(s().EnqueueItem(TagKey("latest")));
  EXPECT_EQ(during.state, QueueState::kRunning);  // still the claimer's
  EXPECT_EQ(during.holder, "gw-a");
  EXPECT_THAT(Must(s().ClaimQueueItems(kTarget, "gw-b", 60, 1)), IsEmpty());
  META_ASSERT_OK(s().CompleteQueueItem(c1[0]));
  EXPECT_EQ(Must(s().GetQueueItem(TagKey("latest"))).state, QueueState::kPending);
  auto c2 = Must(s().ClaimQueueItems(kTarget, "gw-b", 60, 1));
  ASSERT_EQ(c2.size(), 1u);
  META_ASSERT_OK(s().EnqueueItem(TagKey("latest")));
  META_ASSERT_OK(s().FailQueueItem(c2[0], "refused", std::nullopt));
  EXPECT_EQ(Must(s().GetQueueItem(TagKey("latest"))).state, QueueState::kPending);
  auto c3 = Must(s().ClaimQueueItems(kTarget, "gw-b", 60, 1));
  ASSERT_EQ(c3.size(), 1u);
  META_ASSERT_OK(s().CompleteQueueItem(c3[0]));
  EXPECT_EQ(Must(s().GetQueueItem(TagKey("latest"))).state, QueueState::kDone);
}

// A gateway killed while shipping: after its restart it takes its claims back at once; a
// holder that never comes back loses them when the lease runs out, and its late completion is
// refused.
TEST_P(MetaStoreSuite, QueueRestartRecoversItemsLeftRunning) {
  META_ASSERT_OK(s().EnqueueItem(BlobKey("a")));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("b")));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("c")));
  auto mine = Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 2));
  ASSERT_EQ(mine.size(), 2u);
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  auto theirs = Must(other->ClaimQueueItems(kTarget, "gw-b", 60, 1));
  ASSERT_EQ(theirs.size(), 1u);
  Reopen();  // gw-a restarts
  now_ += 1;
  EXPECT_EQ(Must(s().RecoverQueueItems("gw-a")), 2u);
  EXPECT_EQ(Must(s().RecoverQueueItems("gw-a")), 0u);
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)), (QueueStats{2, 1, 0, 0, now_.load() - 1}));
  auto again = Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 10));
  ASSERT_EQ(again.size(), 2u);  // gw-b's item stays gw-b's
  EXPECT_EQ(again[0].attempts, 2);
  // The claim of the dead attempt is gone; the new one completes.
  META_EXPECT_CODE(s().CompleteQueueItem(mine[0]), Code::kConflict);
  for (const QueueItem& it : again) META_ASSERT_OK(s().CompleteQueueItem(it));
  // gw-b renews; later it stops renewing and its lease runs out: gw-a takes the item over.
  now_ += 50;
  EXPECT_EQ(Must(other->RenewQueueClaims("gw-b", 60)), 1u);
  EXPECT_EQ(Must(other->GetQueueItem(BlobKey("c"))).lease_until_unix, now_.load() + 60);
  now_ += 59;
  EXPECT_THAT(Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 10)), IsEmpty());
  now_ += 1;
  auto taken = Must(s().ClaimQueueItems(kTarget, "gw-a", 60, 10));
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].key, BlobKey("c"));
  EXPECT_EQ(taken[0].holder, "gw-a");
  META_EXPECT_CODE(other->CompleteQueueItem(theirs[0]), Code::kConflict);
  META_EXPECT_CODE(other->FailQueueItem(theirs[0], "late", 1), Code::kConflict);
  META_ASSERT_OK(s().CompleteQueueItem(taken[0]));
}

TEST_P(MetaStoreSuite, QueueListsByIdAndState) {
  auto a = Must(s().EnqueueItem(BlobKey("a")));
  auto b = Must(s().EnqueueItem(BlobKey("b")));
  auto c = Must(s().EnqueueItem(BlobKey("c", "team/app", "https://dr:5000")));
  auto all = Must(s().ListQueueItems("", std::nullopt, 0, 10));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, a.id);
  EXPECT_EQ(all[2].id, c.id);
  auto page = Must(s().ListQueueItems(kTarget, std::nullopt, a.id, 10));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, b.id);
  EXPECT_EQ(Must(s().ListQueueItems("", std::nullopt, 0, 1)).size(), 1u);
  auto claimed = Must(s().ClaimQueueItems(kTarget, "gw", 60, 1));
  ASSERT_EQ(claimed.size(), 1u);
  auto running = Must(s().ListQueueItems(kTarget, QueueState::kRunning, 0, 10));
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0], claimed[0]);
  EXPECT_THAT(Must(s().ListQueueItems(kTarget, QueueState::kDone, 0, 10)), IsEmpty());
}

// What eviction asks: a digest named by an item not done, or referenced by a manifest whose item
// is not done, is still to be confirmed upstream.
TEST_P(MetaStoreSuite, QueueDigestQueuedCoversItemsAndTheBlobsOfQueuedManifests) {
  BlobRecord layer = Blob("layer", {Chunk("l1", 5)});
  BlobRecord unshipped = Blob("unshipped", {Chunk("u1", 9)});
  META_ASSERT_OK(s().PutBlob("team/app", layer));
  META_ASSERT_OK(s().PutBlob("team/app", unshipped));
  ManifestRecord m = Manifest("{\"layers\":[1]}");
  m.blobs = {layer.digest};
  META_ASSERT_OK(s().PutManifest("team/app", m, "v1"));
  EXPECT_FALSE(Must(s().DigestQueued(layer.digest)));
  EXPECT_FALSE(Must(s().DigestQueued(m.digest)));
  // A blob item.
  META_ASSERT_OK(s().EnqueueItem(BlobKey("unshipped")));
  EXPECT_TRUE(Must(s().DigestQueued(unshipped.digest)));
  // A manifest item covers the manifest and what it references, even with no item of its own.
  META_ASSERT_OK(s().EnqueueItem(ManifestKey(m.digest)));
  EXPECT_TRUE(Must(s().DigestQueued(m.digest)));
  EXPECT_TRUE(Must(s().DigestQueued(layer.digest)));
  EXPECT_FALSE(Must(s().DigestQueued(DigestOf("unrelated"))));
  // Done: confirmed upstream.
  auto claimed = Must(s().ClaimQueueItems(kTarget, "gw", 60, 10));
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_TRUE(Must(s().DigestQueued(layer.digest)));  // running is not confirmed yet
  for (const QueueItem& it : claimed) META_ASSERT_OK(s().CompleteQueueItem(it));
  EXPECT_FALSE(Must(s().DigestQueued(layer.digest)));
  EXPECT_FALSE(Must(s().DigestQueued(m.digest)));
  EXPECT_FALSE(Must(s().DigestQueued(unshipped.digest)));
  // Failed for good is not confirmed either.
  META_ASSERT_OK(s().EnqueueItem(BlobKey("unshipped")));
  auto again = Must(s().ClaimQueueItems(kTarget, "gw", 60, 10));
  ASSERT_EQ(again.size(), 1u);
  META_ASSERT_OK(s().FailQueueItem(again[0], "refused", std::nullopt));
  EXPECT_TRUE(Must(s().DigestQueued(unshipped.digest)));
}

TEST_P(MetaStoreSuite, QueuePruneDeletesOldDoneItemsOnly) {
  META_ASSERT_OK(s().EnqueueItem(BlobKey("a")));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("b")));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("c")));
  auto claimed = Must(s().ClaimQueueItems(kTarget, "gw", 60, 2));
  ASSERT_EQ(claimed.size(), 2u);
  META_ASSERT_OK(s().CompleteQueueItem(claimed[0]));
  now_ += 100;
  META_ASSERT_OK(s().CompleteQueueItem(claimed[1]));
  EXPECT_EQ(Must(s().PruneQueue(now_.load() - 50, 10)), 1u);  // the first only
  EXPECT_EQ(Must(s().PruneQueue(now_.load() + 1, 10)), 1u);
  EXPECT_EQ(Must(s().PruneQueue(now_.load() + 1, 10)), 0u);
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)), (QueueStats{1, 0, 0, 0, 1'700'000'000}));
  META_EXPECT_CODE(s().GetQueueItem(BlobKey("a")), Code::kNotFound);
  // A pruned key enqueued again is a new item.
  META_ASSERT_OK(s().EnqueueItem(BlobKey("a")));
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)).pending, 2u);
}

// Several store objects (gateways) drain one queue at once: every item is claimed exactly once.
TEST_P(MetaStoreSuite, QueueStoresClaimingAtOnceTakeEachItemOnce) {
  constexpr int kStores = 3;
  constexpr int kItems = 60;
  for (int i = 0; i < kItems; ++i) {
    META_ASSERT_OK(s().EnqueueItem(BlobKey(fmt::format("blob-{}", i))));
  }
  std::vector<std::unique_ptr<MetaStore>> stores;
  for (int i = 0; i < kStores; ++i) {
    stores.push_back(OpenAnother());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<std::vector<QueueItem>> got(kStores);
  std::vector<std::string> errors(kStores);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      for (;;) {
        auto r = stores[i]->ClaimQueueItems(kTarget, fmt::format("gw-{}", i), 60, 2);
        if (!r) {
          errors[i] = r.error().ToString();
          return;
        }
        if (r->empty()) return;
        for (QueueItem& it : *r) {
          Status st = stores[i]->CompleteQueueItem(it);
          if (!st.ok()) errors[i] = st.ToString();
          got[i].push_back(std::move(it));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> ids;
  size_t total = 0;
  for (int i = 0; i < kStores; ++i) {
    EXPECT_EQ(errors[i], "") << i;
    total += got[i].size();
    for (const QueueItem& it : got[i]) ids.insert(it.id);
  }
  EXPECT_EQ(total, static_cast<size_t>(kItems));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kItems));
  EXPECT_EQ(Must(s().GetQueueStats(kTarget)).done, static_cast<uint64_t>(kItems));
}

}  // namespace wharf::testing

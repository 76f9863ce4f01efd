// The ChunkStore conformance suite: every contract of chunk_store.h, written once. Each
// implementation joins with one line in its own test file:
//
//   INSTANTIATE_TEST_SUITE_P(Local, ChunkStoreSuite, ::testing::Values(LocalCase()),
//                            ChunkStoreCaseName);
//
// A case says how to open the implementation over a directory (optionally on a fake disk,
// for the reserve tests) and how to damage a stored chunk (for the corruption tests).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chunkserver/chunk_store.h"
#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/fs.h"
#include "common/status.h"

namespace wharf {

// A fake disk for the reserve tests: the store must believe it has `capacity` bytes of which
// `free` are free, and keep a reserve of 10 % of capacity.
struct FakeDisk {
  uint64_t capacity = 0;
  uint64_t free = 0;
};

struct ChunkStoreCase {
  std::string name;
  // Opens a store over `root` (an empty temp dir at the start of each test; the same root is
  // reopened by persistence tests). The reserve is 10 %. With `disk`, the store sees that
  // fake disk instead of the real one.
  std::function<Result<std::unique_ptr<ChunkStore>>(const std::string& root,
                                                    std::optional<FakeDisk> disk)>
      open;
  // Damages chunk `id` as stored: flips the data byte at `offset`.
  std::function<Status(ChunkStore& store, const std::string& id, uint64_t offset)> corrupt;
};

// gtest prints a case by its name.
inline void PrintTo(const ChunkStoreCase& c, std::ostream* os) { *os << c.name; }

inline std::string ChunkStoreCaseName(const ::testing::TestParamInfo<ChunkStoreCase>& info) {
  return info.param.name;
}

inline Code CodeOf(const Status& s) { return s.code(); }
template <typename T>
Code CodeOf(const Result<T>& r) {
  return r ? Code::kOk : r.error().code();
}

class ChunkStoreSuite : public ::testing::TestWithParam<ChunkStoreCase> {
 protected:
  void SetUp() override {
    root_ =
        (std::filesystem::temp_directory_path() / ("wharf-chunk-store-" + RandomHex(8))).string();
    ASSERT_TRUE(MakeDirs(root_).ok());
    store_ = Reopen();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // Closes the current store (if any) and opens a new one over the same root.
  std::unique_ptr<ChunkStore> Reopen(std::optional<FakeDisk> disk = std::nullopt) {
    store_.reset();
    auto s = GetParam().open(root_, disk);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().ToString());
    return s ? std::move(*s) : nullptr;
  }

  static std::string Data(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  }

  // Writes `data` as chunk `id` in three appends.
  static Status Put(ChunkStore& store, const std::string& id, std::string_view data) {
    auto w = store.BeginWrite(id, data.size(), ChecksumOf(data));
    if (!w) return w.error();
    size_t third = data.size() / 3;
    WHARF_RETURN_IF_ERROR((*w)->Append(data.substr(0, third)));
    WHARF_RETURN_IF_ERROR((*w)->Append(data.substr(third, third)));
    WHARF_RETURN_IF_ERROR((*w)->Append(data.substr(2 * third)));
    return (*w)->Commit();
  }
  Status Put(const std::string& id, std::string_view data) { return Put(*store_, id, data); }

  std::string ReadAll(const std::string& id) {
    auto info = store_->Stat(id);
    if (!info) return "<" + info.error().ToString() + ">";
    auto r = store_->ReadRange(id, 0, info->size);
    return r ? *r : "<" + r.error().ToString() + ">";
  }

  std::vector<std::string> ListAll(size_t page) {
    std::vector<std::string> ids;
    std::string after;
    for (;;) {
      auto r = store_->List(after, page);
      EXPECT_TRUE(r.has_value());
      if (!r || r->empty()) break;
      EXPECT_LE(r->size(), page);
      for (const auto& c : *r) ids.push_back(c.id);
      after = r->back().id;
    }
    return ids;
  }

  std::string root_;
  std::unique_ptr<ChunkStore> store_;
};

TEST_P(ChunkStoreSuite, PutThenStatOpenAndReadRange) {
  std::string id = NewChunkId(), data = Data(100'000, 1);
  ASSERT_TRUE(Put(id, data).ok());
  auto info = store_->Stat(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->id, id);
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->checksum, ChecksumOf(data));
  EXPECT_NEAR(static_cast<double>(info->mtime_unix), static_cast<double>(time(nullptr)), 60);
  EXPECT_EQ(store_->Count(), 1u);

  auto chunk = store_->Open(id);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->size(), data.size());
  EXPECT_EQ(chunk->checksum(), ChecksumOf(data));
  std::string via_fd(10, '\0');
  ASSERT_EQ(::pread(chunk->fd(), via_fd.data(), 10, static_cast<off_t>(chunk->data_offset() + 7)),
            10);
  EXPECT_EQ(via_fd, data.substr(7, 10));
  EXPECT_EQ(*chunk->Read(99'990, 10), data.substr(99'990));

  EXPECT_EQ(*store_->ReadRange(id, 0, data.size()), data);
  EXPECT_EQ(*store_->ReadRange(id, 12'345, 777), data.substr(12'345, 777));
  EXPECT_EQ(*store_->ReadRange(id, data.size(), 0), "");
}

TEST_P(ChunkStoreSuite, EmptyChunk) {
  std::string id = NewChunkId();
  ASSERT_TRUE(Put(id, "").ok());
  EXPECT_EQ(store_->Stat(id)->size, 0u);
  EXPECT_EQ(*store_->ReadRange(id, 0, 0), "");
  EXPECT_TRUE(store_->Verify(id).has_value());
}

TEST_P(ChunkStoreSuite, ManySmallAppends) {
  std::string id = NewChunkId(), data = Data(300'001, 2);
  auto w = store_->BeginWrite(id, data.size(), ChecksumOf(data));
  ASSERT_TRUE(w.has_value());
  for (size_t off = 0; off < data.size(); off += 997) {
    ASSERT_TRUE((*w)->Append(data.substr(off, 997)).ok());
  }
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE((*w)->Commit().ok()) << "a second Commit returns the first result";
  EXPECT_EQ(CodeOf((*w)->Append("x")), Code::kInvalidArgument);
  EXPECT_EQ(ReadAll(id), data);
}

TEST_P(ChunkStoreSuite, RewriteWithSameContentIsIdempotent) {
  std::string id = NewChunkId(), data = Data(5000, 3);
  ASSERT_TRUE(Put(id, data).ok());
  ASSERT_TRUE(Put(id, data).ok());
  EXPECT_EQ(store_->Count(), 1u);
  EXPECT_EQ(ReadAll(id), data);
}

TEST_P(ChunkStoreSuite, RewriteWithDifferentContentConflicts) {
  std::string id = NewChunkId(), data = Data(5000, 4), other = Data(5000, 5);
  ASSERT_TRUE(Put(id, data).ok());
  EXPECT_EQ(CodeOf(Put(id, other)), Code::kConflict);
  EXPECT_EQ(CodeOf(Put(id, data.substr(1))), Code::kConflict);
  EXPECT_EQ(ReadAll(id), data);
  EXPECT_EQ(store_->Count(), 1u);
}

TEST_P(ChunkStoreSuite, RacingWritersOfDifferentContentConflict) {
  std::string id = NewChunkId(), a = Data(4000, 6), b = Data(4000, 7);
  auto wa = store_->BeginWrite(id, a.size(), ChecksumOf(a));
  auto wb = store_->BeginWrite(id, b.size(), ChecksumOf(b));
  ASSERT_TRUE(wa.has_value());
  ASSERT_TRUE(wb.has_value());
  ASSERT_TRUE((*wa)->Append(a).ok());
  ASSERT_TRUE((*wb)->Append(b).ok());
  ASSERT_TRUE((*wb)->Commit().ok());
  EXPECT_EQ(CodeOf((*wa)->Commit()), Code::kConflict);
  EXPECT_EQ(ReadAll(id), b);
}

TEST_P(ChunkStoreSuite, ShortBodyLeavesNothing) {
  std::string id = NewChunkId(), data = Data(1000, 8);
  auto w = store_->BeginWrite(id, data.size() + 1, ChecksumOf(data));
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE((*w)->Append(data).ok());
  EXPECT_EQ(CodeOf((*w)->Commit()), Code::kInvalidArgument);
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
  EXPECT_EQ(store_->Count(), 0u);
  w->reset();
  store_ = Reopen();
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
  EXPECT_EQ(store_->Count(), 0u);
}

TEST_P(ChunkStoreSuite, OverlongBodyIsRefused) {
  std::string id = NewChunkId(), data = Data(1000, 9);
  auto w = store_->BeginWrite(id, data.size() - 1, ChecksumOf(data));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(CodeOf((*w)->Append(data)), Code::kInvalidArgument);
  EXPECT_FALSE((*w)->Commit().ok());
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
}

TEST_P(ChunkStoreSuite, ChecksumMismatchLeavesNothing) {
  std::string id = NewChunkId(), data = Data(2000, 10);
  auto w = store_->BeginWrite(id, data.size(), ChecksumOf(data) ^ 1);
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE((*w)->Append(data).ok());
  EXPECT_EQ(CodeOf((*w)->Commit()), Code::kDigestMismatch);
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
  EXPECT_EQ(store_->List("", 10)->size(), 0u);
  w->reset();
  store_ = Reopen();
  EXPECT_EQ(store_->Count(), 0u);
  ASSERT_TRUE(Put(id, data).ok()) << "the id is free for a correct write";
}

TEST_P(ChunkStoreSuite, DestroyedWriterAborts) {
  std::string id = NewChunkId(), data = Data(2000, 11);
  {
    auto w = store_->BeginWrite(id, data.size(), ChecksumOf(data));
    ASSERT_TRUE(w.has_value());
    ASSERT_TRUE((*w)->Append(data.substr(0, 100)).ok());
  }
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
  store_ = Reopen();
  EXPECT_EQ(store_->Count(), 0u);
}

TEST_P(ChunkStoreSuite, InvalidIdsAreRejectedEverywhere) {
  for (std::string bad :
       {std::string(""), std::string("../../etc/passwd"), std::string("a/b"), std::string(31, 'a'),
        std::string(33, 'a'), std::string(32, 'A'), std::string(31, 'a') + '\0',
        std::string(16, 'a') + "/.." + std::string(13, 'a')}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(CodeOf(store_->BeginWrite(bad, 1, 0)), Code::kInvalidArgument);
    EXPECT_EQ(CodeOf(store_->Stat(bad)), Code::kInvalidArgument);
    EXPECT_EQ(CodeOf(store_->Open(bad)), Code::kInvalidArgument);
    EXPECT_EQ(CodeOf(store_->ReadRange(bad, 0, 0)), Code::kInvalidArgument);
    EXPECT_EQ(CodeOf(store_->Delete(bad)), Code::kInvalidArgument);
    EXPECT_EQ(CodeOf(store_->Verify(bad)), Code::kInvalidArgument);
    EXPECT_EQ(CodeOf(store_->Quarantine(bad)), Code::kInvalidArgument);
  }
}

TEST_P(ChunkStoreSuite, MissingChunkIsNotFoundEverywhere) {
  std::string id = NewChunkId();
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->Open(id)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->ReadRange(id, 0, 0)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->Delete(id)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->Verify(id)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->Quarantine(id)), Code::kNotFound);
}

TEST_P(ChunkStoreSuite, ReadRangeOutsideTheChunkIsRangeInvalid) {
  std::string id = NewChunkId(), data = Data(100, 12);
  ASSERT_TRUE(Put(id, data).ok());
  EXPECT_EQ(CodeOf(store_->ReadRange(id, 0, 101)), Code::kRangeInvalid);
  EXPECT_EQ(CodeOf(store_->ReadRange(id, 101, 0)), Code::kRangeInvalid);
  EXPECT_EQ(CodeOf(store_->ReadRange(id, 50, UINT64_MAX)), Code::kRangeInvalid);
  EXPECT_EQ(CodeOf(store_->ReadRange(id, UINT64_MAX, 2)), Code::kRangeInvalid);
  EXPECT_EQ(*store_->ReadRange(id, 99, 1), data.substr(99));
}

TEST_P(ChunkStoreSuite, ListPaginatesInIdOrder) {
  std::set<std::string> ids;
  for (int i = 0; i < 25; ++i) {
    std::string id = NewChunkId();
    ASSERT_TRUE(Put(id, Data(10 + i, 100 + i)).ok());
    ids.insert(id);
  }
  std::vector<std::string> want(ids.begin(), ids.end());
  EXPECT_EQ(ListAll(7), want);
  EXPECT_EQ(ListAll(1), want);
  EXPECT_EQ(ListAll(1000), want);
  EXPECT_EQ(store_->List("", 0)->size(), 0u);
  EXPECT_EQ(store_->List("g", 10)->size(), 0u) << "after the last possible id";
  auto page = store_->List(want[10], 3);
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].id, want[11]);
  // `after` need not be a stored id: a prefix of want[5] sorts just before it.
  EXPECT_EQ((*store_->List(want[5].substr(0, 31), 1))[0].id, want[5]);
  auto first = (*store_->List("", 1))[0];
  EXPECT_EQ(first, *store_->Stat(want[0]));
  EXPECT_EQ(store_->Count(), 25u);
}

TEST_P(ChunkStoreSuite, DeleteRemovesAndFreesTheId) {
  std::string id = NewChunkId(), keep = NewChunkId();
  ASSERT_TRUE(Put(id, Data(3000, 13)).ok());
  ASSERT_TRUE(Put(keep, Data(3000, 14)).ok());
  ASSERT_TRUE(store_->Delete(id).ok());
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->Delete(id)), Code::kNotFound);
  EXPECT_EQ(store_->Count(), 1u);
  EXPECT_EQ(ListAll(10), std::vector<std::string>{keep});
  std::string other = Data(10, 15);
  ASSERT_TRUE(Put(id, other).ok()) << "a deleted id takes new content without conflict";
  EXPECT_EQ(ReadAll(id), other);
}

TEST_P(ChunkStoreSuite, OpenChunkOutlivesDelete) {
  std::string id = NewChunkId(), data = Data(4096, 16);
  ASSERT_TRUE(Put(id, data).ok());
  auto chunk = store_->Open(id);
  ASSERT_TRUE(chunk.has_value());
  ASSERT_TRUE(store_->Delete(id).ok());
  OpenChunk moved = std::move(*chunk);
  EXPECT_EQ(*moved.Read(0, data.size()), data);
}

TEST_P(ChunkStoreSuite, VerifyAcceptsIntactChunk) {
  std::string id = NewChunkId(), data = Data(3 << 20, 17);  // several read buffers
  ASSERT_TRUE(Put(id, data).ok());
  auto info = store_->Verify(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->checksum, ChecksumOf(data));
  EXPECT_TRUE(store_->Health().ok());
}

TEST_P(ChunkStoreSuite, VerifyDetectsFlippedByteAndQuarantineHidesIt) {
  std::string id = NewChunkId(), keep = NewChunkId(), data = Data(10'000, 18);
  ASSERT_TRUE(Put(id, data).ok());
  ASSERT_TRUE(Put(keep, data).ok());
  ASSERT_TRUE(GetParam().corrupt(*store_, id, 5000).ok());
  EXPECT_EQ(CodeOf(store_->Verify(id)), Code::kCorruption);
  EXPECT_TRUE(store_->Verify(keep).has_value());
  ASSERT_TRUE(store_->Quarantine(id).ok());
  EXPECT_EQ(CodeOf(store_->Stat(id)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->Open(id)), Code::kNotFound);
  EXPECT_EQ(CodeOf(store_->Quarantine(id)), Code::kNotFound);
  EXPECT_EQ(ListAll(10), std::vector<std::string>{keep});
  store_ = Reopen();
  EXPECT_EQ(ListAll(10), std::vector<std::string>{keep}) << "quarantine survives a restart";
  ASSERT_TRUE(Put(id, data).ok()) << "a good copy can be repaired in";
  EXPECT_TRUE(store_->Verify(id).has_value());
}

TEST_P(ChunkStoreSuite, ChunksSurviveReopen) {
  std::vector<std::string> ids = {NewChunkId(), NewChunkId(), NewChunkId()};
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_TRUE(Put(ids[i], Data(1000 * i, i)).ok());
  ASSERT_TRUE(store_->Delete(ids[1]).ok());
  auto before = store_->List("", 10);
  store_ = Reopen();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Count(), 2u);
  auto after = store_->List("", 10);
  ASSERT_EQ(after->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*after)[i].id, (*before)[i].id);
    EXPECT_EQ((*after)[i].size, (*before)[i].size);
    EXPECT_EQ((*after)[i].checksum, (*before)[i].checksum);
  }
  EXPECT_EQ(ReadAll(ids[2]), Data(2000, 2));
  EXPECT_EQ(CodeOf(store_->Stat(ids[1])), Code::kNotFound);
}

TEST_P(ChunkStoreSuite, WritesThatWouldEatTheReserveAreRefused) {
  store_ = Reopen(FakeDisk{10'000, 10'000});
  auto space = store_->Space();
  ASSERT_TRUE(space.has_value());
  EXPECT_EQ(space->capacity, 10'000u);
  EXPECT_EQ(space->free, 10'000u);
  EXPECT_EQ(space->reserve_bytes, 1'000u);
  EXPECT_EQ(CodeOf(store_->BeginWrite(NewChunkId(), 9'500, 0)), Code::kNoSpace);
  Code huge = CodeOf(store_->BeginWrite(NewChunkId(), UINT64_MAX, 0));
  EXPECT_TRUE(huge == Code::kNoSpace || huge == Code::kTooLarge) << CodeName(huge);
  // Writes in progress count: a second 5000-byte write does not fit next to the first.
  auto w1 = store_->BeginWrite(NewChunkId(), 5'000, 0);
  ASSERT_TRUE(w1.has_value());
  EXPECT_EQ(CodeOf(store_->BeginWrite(NewChunkId(), 5'000, 0)), Code::kNoSpace);
  w1->reset();
  std::string id = NewChunkId(), data = Data(5'000, 19);
  EXPECT_TRUE(Put(id, data).ok());
}

TEST_P(ChunkStoreSuite, FullDiskRefusesWrites) {
  store_ = Reopen(FakeDisk{10'000, 500});
  EXPECT_EQ(CodeOf(store_->BeginWrite(NewChunkId(), 0, ChecksumOf("", 0))), Code::kNoSpace);
}

TEST_P(ChunkStoreSuite, ConcurrentWritersReadersAndListers) {
  constexpr int kThreads = 8, kPerThread = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = NewChunkId(),
                    data = Data(1 + (t * 7919 + i * 104729) % 65536, t * 100 + i);
        if (!Put(*store_, id, data).ok()) ++failures;
        auto r = store_->ReadRange(id, 0, data.size());
        if (!r || *r != data) ++failures;
        if (!store_->Verify(id)) ++failures;
        if (!store_->List("", 50)) ++failures;
        if (i % 3 == 0 && !store_->Delete(id).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->Count(), static_cast<uint64_t>(kThreads * (kPerThread - 5)));
  EXPECT_TRUE(store_->Health().ok());
}

TEST_P(ChunkStoreSuite, ConcurrentWritesOfOneIdAgreeOnOneContent) {
  constexpr int kThreads = 6;
  std::string same_id = NewChunkId(), racy_id = NewChunkId(), same = Data(50'000, 20);
  std::atomic<int> same_ok{0}, racy_ok{0}, racy_conflict{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      if (Put(*store_, same_id, same).ok()) ++same_ok;
      Status st = Put(*store_, racy_id, Data(50'000, 1000 + t));
      if (st.ok()) ++racy_ok;
      if (st.code() == Code::kConflict) ++racy_conflict;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(same_ok.load(), kThreads);
  EXPECT_EQ(racy_ok.load(), 1);
  EXPECT_EQ(racy_conflict.load(), kThreads - 1);
  EXPECT_EQ(store_->Count(), 2u);
  EXPECT_TRUE(store_->Verify(racy_id).has_value());
}

}  // namespace wharf

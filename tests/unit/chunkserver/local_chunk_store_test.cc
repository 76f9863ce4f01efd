#include "chunkserver/local_chunk_store.h"

#include <gtest/gtest.h>
#include <sys/file.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "chunkserver/validating_chunk_store.h"
#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/fs.h"
#include "conformance/chunk_store_suite.h"
#include "support/fault_env.h"

namespace wharf {
namespace {

namespace fs = std::filesystem;
using Op = FaultInjectingEnv::Op;

// ---------------------------------------------------------------------------------------
// The conformance suite, on the real file system and on a fault-free FaultInjectingEnv.

// The conformance cases' options: one data directory under `root`, a 10% reserve, `disk`.
LocalChunkStore::Options CaseOptions(const std::string& root, std::optional<FakeDisk> disk,
                                     std::shared_ptr<Env> env) {
  LocalChunkStore::Options o;
  o.dirs = {root + "/data"};
  o.reserve = Reserve{true, 10};
  o.env = std::move(env);
  if (disk) {
    o.space_for_test = [d = *disk](const std::string&) { return FsSpace{d.capacity, d.free, 0}; };
  }
  return o;
}

Result<std::unique_ptr<ChunkStore>> OpenLocal(LocalChunkStore::Options o) {
  WHARF_ASSIGN_OR_RETURN(auto store, LocalChunkStore::Open(std::move(o)));
  return std::unique_ptr<ChunkStore>(std::move(store));
}

Result<std::unique_ptr<ChunkStore>> OpenLocal(const std::string& root, std::optional<FakeDisk> disk,
                                              std::shared_ptr<Env> env) {
  return OpenLocal(CaseOptions(root, disk, std::move(env)));
}

Status CorruptLocal(ChunkStore& store, const std::string& id, uint64_t offset) {
  std::string path = dynamic_cast<LocalChunkStore&>(store).ChunkPathForTest(id);
  if (path.empty()) return NotFound(id);
  return FaultInjectingEnv::FlipByte(path, kChunkHeaderSize + offset);
}

ChunkStoreCase LocalCase() {
  return {"Local",
          [](const std::string& root, std::optional<FakeDisk> disk) {
            return OpenLocal(root, disk, nullptr);
          },
          CorruptLocal};
}

ChunkStoreCase FaultEnvCase() {
  return {"LocalOnFaultEnv",
          [](const std::string& root, std::optional<FakeDisk> disk) {
            return OpenLocal(root, disk, std::make_shared<FaultInjectingEnv>());
          },
          CorruptLocal};
}

// The validating wrapper over the local store: it must keep every contract too.
ChunkStoreCase ValidatingLocalCase() {
  return {"ValidatingLocal",
          [](const std::string& root,
             std::optional<FakeDisk> disk) -> Result<std::unique_ptr<ChunkStore>> {
            WHARF_ASSIGN_OR_RETURN(auto local,
                                   LocalChunkStore::Open(CaseOptions(root, disk, nullptr)));
            return std::unique_ptr<ChunkStore>(
                std::make_unique<ValidatingChunkStore>(std::move(local)));
          },
          [](ChunkStore& store, const std::string& id, uint64_t offset) -> Status {
            auto& local =
                dynamic_cast<LocalChunkStore&>(dynamic_cast<ValidatingChunkStore&>(store).inner());
            std::string path = local.ChunkPathForTest(id);
            if (path.empty()) return NotFound(id);
            return FaultInjectingEnv::FlipByte(path, kChunkHeaderSize + offset);
          }};
}

// Every commit through the shared syncfs (Options::Sync::kGroup, no size floor).
ChunkStoreCase GroupSyncCase() {
  return {"LocalGroupSync",
          [](const std::string& root, std::optional<FakeDisk> disk) {
            auto o = CaseOptions(root, disk, std::make_shared<FaultInjectingEnv>());
            o.sync = LocalChunkStore::Options::Sync::kGroup;
            o.group_sync_min_bytes = 0;
            return OpenLocal(std::move(o));
          },
          CorruptLocal};
}

INSTANTIATE_TEST_SUITE_P(Local, ChunkStoreSuite,
                         ::testing::Values(LocalCase(), FaultEnvCase(), ValidatingLocalCase(),
                                           GroupSyncCase()),
                         ChunkStoreCaseName);

// ---------------------------------------------------------------------------------------
// LocalChunkStore specifics: layout, startup scan, several directories, injected faults.

class LocalChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("wharf-local-store-" + RandomHex(8))).string();
    labels_ = {{"store", RandomHex(6)}};  // per-test metrics, so counters start at zero
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(root_);
  }

  LocalChunkStore::Options Opts(std::shared_ptr<Env> env = nullptr) {
    LocalChunkStore::Options o;
    o.dirs = {root_ + "/d0"};
    o.env = std::move(env);
    o.metric_labels = labels_;
    return o;
  }
  void OpenStore(LocalChunkStore::Options o) {
    store_.reset();
    auto s = LocalChunkStore::Open(std::move(o));
    ASSERT_TRUE(s.has_value()) << s.error().ToString();
    store_ = std::move(*s);
  }
  Status Put(const std::string& id, std::string_view data) {
    auto w = store_->BeginWrite(id, data.size(), ChecksumOf(data));
    if (!w) return w.error();
    WHARF_RETURN_IF_ERROR((*w)->Append(data));
    return (*w)->Commit();
  }
  uint64_t Counter(const std::string& name) { return Metrics().Counter(name, "", labels_).Value(); }
  static size_t FilesIn(const std::string& dir) {
    size_t n = 0;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
      n += it->is_regular_file() ? 1 : 0;
    }
    return n;
  }

  std::string root_;
  Labels labels_;
  std::unique_ptr<LocalChunkStore> store_;
};

// The per-range digests are cached: a call with nothing changed recomputes no range, a put,
// a delete or a quarantine recomputes the one range it touched, and every answer equals the
// full walk (ChunkStore::Digests).
TEST_F(LocalChunkStoreTest, DigestsAreCachedAndRecomputedOnlyWhereTheIndexChanged) {
  OpenStore(Opts());
  const std::string ranges = "wharf_chunkserver_digest_ranges_computed_total";
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) {
    ids.push_back(NewChunkId());
    ASSERT_TRUE(Put(ids.back(), "chunk " + std::to_string(i)).ok());
  }
  auto walk = [&] { return store_->ChunkStore::Digests(); };
  auto cached = store_->Digests();
  ASSERT_TRUE(cached);
  EXPECT_EQ(*cached, *walk());
  EXPECT_EQ(Counter(ranges), kDigestRanges);  // the first call computes every range
  EXPECT_EQ(*store_->Digests(), *cached);
  EXPECT_EQ(Counter(ranges), kDigestRanges);  // nothing changed: nothing recomputed

  const std::string added = NewChunkId();
  ASSERT_TRUE(Put(added, "one more").ok());
  auto after_put = store_->Digests();
  EXPECT_EQ(*after_put, *walk());
  EXPECT_NE(*after_put, *cached);
  EXPECT_EQ(Counter(ranges), kDigestRanges + 1);
  ASSERT_TRUE(Put(added, "one more").ok());  // an idempotent re-put changes nothing
  EXPECT_EQ(*store_->Digests(), *after_put);
  EXPECT_EQ(Counter(ranges), kDigestRanges + 1);

  ASSERT_TRUE(store_->Delete(added).ok());
  EXPECT_EQ(*store_->Digests(), *cached);
  EXPECT_EQ(Counter(ranges), kDigestRanges + 2);
  ASSERT_TRUE(store_->Quarantine(ids[7]).ok());
  auto after_quarantine = store_->Digests();
  EXPECT_EQ(*after_quarantine, *walk());
  EXPECT_EQ(after_quarantine->counts[RangeOfId(ids[7])], cached->counts[RangeOfId(ids[7])] - 1);
  EXPECT_EQ(Counter(ranges), kDigestRanges + 3);

  // A reopened store starts from its scan.
  OpenStore(Opts());
  EXPECT_EQ(*store_->Digests(), *after_quarantine);
  EXPECT_EQ(Counter(ranges), 2 * kDigestRanges + 3);
}

// Not a test (run with --gtest_also_run_disabled_tests): what one inventory-digest request
// costs over 100,000 chunks, walked (as before the cache) and cached, unchanged and after one
// put. On /dev/shm when there is one, so that the 100,000 puts are quick.
TEST_F(LocalChunkStoreTest, DISABLED_DigestCostOver100kChunks) {
  if (fs::exists("/dev/shm")) {
    fs::remove_all(root_);
    root_ = "/dev/shm/wharf-digest-bench-" + RandomHex(6);
  }
  OpenStore(Opts());
  constexpr int kChunks = 100000;
  for (int i = 0; i < kChunks; ++i) ASSERT_TRUE(Put(NewChunkId(), "x").ok());
  using Clock = std::chrono::steady_clock;
  auto time = [](const char* what, int rounds, auto fn) {
    const auto t0 = Clock::now();
    for (int i = 0; i < rounds; ++i) ASSERT_TRUE(fn());
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / rounds;
    std::printf("%-36s %10.1f us per request\n", what, us);
  };
  time("walk (before the cache)", 20, [&] { return store_->ChunkStore::Digests(); });
  time("cached, first call", 1, [&] { return store_->Digests(); });
  time("cached, unchanged", 1000, [&] { return store_->Digests(); });
  Clock::duration spent{};
  for (int i = 0; i < 200; ++i) {  // only the digest request is timed, not the put
    ASSERT_TRUE(Put(NewChunkId(), "y").ok());
    const auto t0 = Clock::now();
    ASSERT_TRUE(store_->Digests());
    spent += Clock::now() - t0;
  }
  std::printf("%-36s %10.1f us per request\n", "cached, after one put",
              std::chrono::duration<double, std::micro>(spent).count() / 200);
}

TEST_F(LocalChunkStoreTest, OnDiskLayout) {
  OpenStore(Opts());
  std::string id = NewChunkId(), data(1234, 'x');
  ASSERT_TRUE(Put(id, data).ok());
  std::string path = root_ + "/d0/chunks/" + id.substr(0, 2) + "/" + id;
  EXPECT_EQ(store_->ChunkPathForTest(id), path);
  EXPECT_EQ(fs::file_size(path), kChunkHeaderSize + data.size());
  EXPECT_TRUE(fs::exists(root_ + "/d0/LOCK"));
  EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u);
  EXPECT_EQ(FilesIn(root_ + "/d0/quarantine"), 0u);
  EXPECT_EQ(Counter("wharf_chunkserver_chunk_writes_total"), 1u);
}

TEST_F(LocalChunkStoreTest, RejectsBadOptions) {
  LocalChunkStore::Options none;
  EXPECT_EQ(LocalChunkStore::Open(none).error().code(), Code::kInvalidArgument);
  auto twice = Opts();
  twice.dirs.push_back(root_ + "/d0/");
  EXPECT_EQ(LocalChunkStore::Open(twice).error().code(), Code::kInvalidArgument);
}

TEST_F(LocalChunkStoreTest, DirectoryIsLockedAgainstASecondStore) {
  OpenStore(Opts());
  EXPECT_EQ(LocalChunkStore::Open(Opts()).error().code(), Code::kUnavailable);
  store_.reset();
  OpenStore(Opts());  // released with the first store
}

TEST_F(LocalChunkStoreTest, LeftoverTempFilesAreRemovedAtOpen) {
  OpenStore(Opts());
  store_.reset();
  std::ofstream(root_ + "/d0/tmp/" + NewChunkId() + ".123") << "partial";
  OpenStore(Opts());
  EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u);
}

TEST_F(LocalChunkStoreTest, DamagedHeaderIsQuarantinedAtStartup) {
  OpenStore(Opts());
  std::string bad = NewChunkId(), good = NewChunkId();
  ASSERT_TRUE(Put(bad, "some data").ok());
  ASSERT_TRUE(Put(good, "other data").ok());
  std::string path = store_->ChunkPathForTest(bad);
  store_.reset();
  ASSERT_TRUE(FaultInjectingEnv::FlipByte(path, 9).ok());  // inside the size field
  OpenStore(Opts());
  EXPECT_EQ(store_->Count(), 1u);
  EXPECT_EQ(store_->Stat(bad).error().code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(FilesIn(root_ + "/d0/quarantine"), 1u);
  EXPECT_EQ(Counter("wharf_chunkserver_corrupt_chunks_total"), 1u);
  EXPECT_EQ(Counter("wharf_chunkserver_quarantined_chunks_total"), 1u);
}

TEST_F(LocalChunkStoreTest, TruncatedFileIsCorruption) {
  OpenStore(Opts());
  std::string id = NewChunkId();
  ASSERT_TRUE(Put(id, std::string(100, 'z')).ok());
  fs::resize_file(store_->ChunkPathForTest(id), kChunkHeaderSize + 50);
  EXPECT_EQ(store_->Open(id).error().code(), Code::kCorruption);
  EXPECT_EQ(store_->Verify(id).error().code(), Code::kCorruption);
  EXPECT_EQ(store_->ReadRange(id, 0, 1).error().code(), Code::kCorruption);
  EXPECT_EQ(Counter("wharf_chunkserver_corrupt_chunks_total"), 3u);
  store_.reset();
  OpenStore(Opts());
  EXPECT_EQ(store_->Count(), 0u) << "quarantined by the startup scan";
}

TEST_F(LocalChunkStoreTest, UnknownFilesAreIgnored) {
  OpenStore(Opts());
  store_.reset();
  fs::create_directories(root_ + "/d0/chunks/ab");
  std::ofstream(root_ + "/d0/chunks/ab/not-a-chunk") << "x";
  std::ofstream(root_ + "/d0/chunks/ab/" + std::string(32, 'c')) << "wrong subdir";
  fs::create_directories(root_ + "/d0/chunks/zz");
  OpenStore(Opts());
  EXPECT_EQ(store_->Count(), 0u);
  EXPECT_EQ(Counter("wharf_chunkserver_unknown_files_total"), 3u);
  EXPECT_TRUE(fs::exists(root_ + "/d0/chunks/ab/not-a-chunk")) << "left for the operator";
}

TEST_F(LocalChunkStoreTest, TooLargeChunkIsRefused) {
  auto o = Opts();
  o.max_chunk_bytes = 100;
  OpenStore(o);
  EXPECT_EQ(store_->BeginWrite(NewChunkId(), 101, 0).error().code(), Code::kTooLarge);
  EXPECT_TRUE(store_->BeginWrite(NewChunkId(), 100, 0).has_value());
}

TEST_F(LocalChunkStoreTest, ChunksGoToTheDirectoryWithMostRoomAndAreFoundInAll) {
  auto o = Opts();
  o.dirs = {root_ + "/d0", root_ + "/d1"};
  uint64_t d0_free = 5'000;
  o.space_for_test = [&](const std::string& dir) {
    return FsSpace{100'000, dir == root_ + "/d0" ? d0_free : 90'000, 0};
  };
  OpenStore(o);
  std::string a = NewChunkId(), b = NewChunkId();
  ASSERT_TRUE(Put(a, "to d1").ok());
  EXPECT_EQ(store_->ChunkPathForTest(a).rfind(root_ + "/d1/", 0), 0u);
  d0_free = 100'000;
  ASSERT_TRUE(Put(b, "to d0").ok());
  EXPECT_EQ(store_->ChunkPathForTest(b).rfind(root_ + "/d0/", 0), 0u);
  auto space = store_->Space();
  EXPECT_EQ(space->capacity, 200'000u);
  EXPECT_EQ(space->reserve_bytes, 20'000u);
  OpenStore(o);
  EXPECT_EQ(store_->Count(), 2u);
  EXPECT_EQ(*store_->ReadRange(a, 0, 5), "to d1");
  EXPECT_EQ(*store_->ReadRange(b, 0, 5), "to d0");
}

TEST_F(LocalChunkStoreTest, DirectoriesOnOneFileSystemCountOnce) {
  OpenStore(Opts());
  auto one = store_->Space();
  auto o = Opts();
  o.dirs = {root_ + "/d0", root_ + "/d1"};
  OpenStore(o);
  auto two = store_->Space();
  ASSERT_TRUE(one.has_value() && two.has_value());
  EXPECT_EQ(one->capacity, two->capacity);
  EXPECT_GT(two->capacity, 0u);
}

// ---------------------------------------------------------------------------------------
// Injected faults.

class LocalChunkStoreFaultTest : public LocalChunkStoreTest {
 protected:
  void SetUp() override {
    LocalChunkStoreTest::SetUp();
    env_ = std::make_shared<FaultInjectingEnv>();
    OpenStore(Opts(env_));
  }
  // Commits one chunk, writes a second without committing it, loses power, and reopens with
  // `reopen`: the committed chunk is there whole, the other is not, no temp file is left.
  void CrashKeepsCommittedChunksAndDropsTheRest(const LocalChunkStore::Options& reopen) {
    std::string committed = NewChunkId(), in_flight = NewChunkId(), data(70'000, 'q');
    ASSERT_TRUE(Put(committed, data).ok());
    auto w = store_->BeginWrite(in_flight, data.size(), ChecksumOf(data));
    ASSERT_TRUE(w.has_value());
    ASSERT_TRUE((*w)->Append(data).ok());
    ASSERT_TRUE(env_->DropUnsyncedData().ok());  // power loss before the commit
    w->reset();
    store_.reset();
    OpenStore(reopen);
    EXPECT_EQ(store_->Count(), 1u);
    EXPECT_TRUE(store_->Verify(committed).has_value()) << "data and rename were both durable";
    EXPECT_EQ(store_->Stat(in_flight).error().code(), Code::kNotFound);
    EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u);
  }
  std::shared_ptr<FaultInjectingEnv> env_;
};

TEST_F(LocalChunkStoreFaultTest, FailedFsyncIsStickyAndLeavesNothing) {
  std::string old = NewChunkId(), id = NewChunkId();
  ASSERT_TRUE(Put(old, "stored before the failure").ok());
  env_->FailNth(Op::kSync, 1);
  EXPECT_EQ(Put(id, "doomed").code(), Code::kIOError);
  EXPECT_EQ(store_->Stat(id).error().code(), Code::kNotFound);
  EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u);
  EXPECT_EQ(FilesIn(root_ + "/d0/chunks"), 1u);
  EXPECT_EQ(Counter("wharf_chunkserver_fsync_failures_total"), 1u);
  EXPECT_EQ(Metrics().Gauge("wharf_chunkserver_store_failed", "", labels_).Value(), 1.0);

  env_->ClearFaults();  // the disk "recovers"; the store must not believe it
  EXPECT_EQ(store_->Health().code(), Code::kIOError);
  EXPECT_EQ(Put(NewChunkId(), "later").code(), Code::kIOError);
  EXPECT_EQ(store_->BeginWrite(NewChunkId(), 1, 0).error().code(), Code::kIOError);
  EXPECT_EQ(store_->Delete(old).code(), Code::kIOError);
  EXPECT_EQ(*store_->ReadRange(old, 0, 6), "stored") << "reads keep working";
  EXPECT_TRUE(store_->Verify(old).has_value());
}

TEST_F(LocalChunkStoreFaultTest, FailedFsyncFailsWritersAlreadyOpen) {
  auto w = store_->BeginWrite(NewChunkId(), 2, ChecksumOf("ab"));
  ASSERT_TRUE(w.has_value());
  env_->FailNth(Op::kSync, 1);
  EXPECT_FALSE(Put(NewChunkId(), "x").ok());
  EXPECT_EQ((*w)->Append("ab").code(), Code::kIOError);
  EXPECT_EQ((*w)->Commit().code(), Code::kIOError);
  EXPECT_EQ(store_->Count(), 0u);
}

TEST_F(LocalChunkStoreFaultTest, FailedDirectoryFsyncIsStickyAndLeavesNothing) {
  std::string id = NewChunkId();
  env_->FailNth(Op::kSyncDir, 1);
  EXPECT_EQ(Put(id, "doomed").code(), Code::kIOError);
  EXPECT_EQ(store_->Stat(id).error().code(), Code::kNotFound);
  EXPECT_EQ(FilesIn(root_ + "/d0/chunks"), 0u);
  EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u);
  EXPECT_EQ(store_->Health().code(), Code::kIOError);
  EXPECT_EQ(Put(NewChunkId(), "later").code(), Code::kIOError);
}

TEST_F(LocalChunkStoreFaultTest, FailedDeleteSyncIsSticky) {
  std::string id = NewChunkId();
  ASSERT_TRUE(Put(id, "x").ok());
  env_->FailNth(Op::kSyncDir, 1);
  EXPECT_EQ(store_->Delete(id).code(), Code::kIOError);
  EXPECT_EQ(store_->Stat(id).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->Health().code(), Code::kIOError);
}

// A directory that cannot be written (read-only remount, chattr +i): the probe finds it even
// without write traffic, and keeps the store reported read-only until it can write again.
TEST_F(LocalChunkStoreFaultTest, WriteProbeReportsAnUnwritableDirectory) {
  EXPECT_TRUE(store_->ProbeWrite().ok());
  EXPECT_TRUE(store_->Health().ok());
  EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u) << "the probe leaves nothing";
  env_->FailNth(Op::kCreate, 1, /*sticky=*/true);
  EXPECT_EQ(store_->ProbeWrite().code(), Code::kIOError);
  EXPECT_EQ(store_->Health().code(), Code::kIOError);
  EXPECT_EQ(Metrics().Gauge("wharf_chunkserver_store_write_fault", "", labels_).Value(), 1.0);
  EXPECT_EQ(store_->ProbeWrite().code(), Code::kIOError) << "still failing";
  EXPECT_EQ(store_->Health().code(), Code::kIOError);
  env_->ClearFaults();
  EXPECT_TRUE(store_->ProbeWrite().ok());
  EXPECT_TRUE(store_->Health().ok());
  EXPECT_EQ(Metrics().Gauge("wharf_chunkserver_store_write_fault", "", labels_).Value(), 0.0);
  env_->FailNth(Op::kSync, 1);
  EXPECT_EQ(store_->ProbeWrite().code(), Code::kIOError) << "an unsyncable probe fails too";
}

TEST_F(LocalChunkStoreFaultTest, FailedWriteIsNotSticky) {
  std::string id = NewChunkId();
  env_->FailNth(Op::kWrite, 2);  // the 1st write is the header, the 2nd the data
  auto w = store_->BeginWrite(id, 4, ChecksumOf("data"));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ((*w)->Append("data").code(), Code::kIOError);
  EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u) << "aborted at once";
  EXPECT_EQ((*w)->Commit().code(), Code::kIOError);
  // Not sticky, but reported (the member turns read-only) until a write probe succeeds.
  EXPECT_EQ(store_->Health().code(), Code::kIOError);
  EXPECT_TRUE(store_->ProbeWrite().ok());
  EXPECT_TRUE(store_->Health().ok());
  EXPECT_TRUE(Put(id, "data").ok());
  EXPECT_EQ(Counter("wharf_chunkserver_chunk_write_failures_total"), 1u);
}

TEST_F(LocalChunkStoreFaultTest, FailedTempCreateOrRenameLeavesNothing) {
  env_->FailNth(Op::kCreate, 1);
  EXPECT_EQ(Put(NewChunkId(), "a").code(), Code::kIOError);
  env_->FailNth(Op::kRename, 1);
  EXPECT_EQ(Put(NewChunkId(), "b").code(), Code::kIOError);
  EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u);
  EXPECT_EQ(FilesIn(root_ + "/d0/chunks"), 0u);
  EXPECT_EQ(store_->Health().code(), Code::kIOError);
  EXPECT_TRUE(store_->ProbeWrite().ok());
  EXPECT_TRUE(store_->Health().ok());
  EXPECT_TRUE(Put(NewChunkId(), "c").ok());
}

TEST_F(LocalChunkStoreFaultTest, CrashKeepsCommittedChunksAndDropsTheRest) {
  CrashKeepsCommittedChunksAndDropsTheRest(Opts(env_));
}

// --sync group: commits share syncfs calls; a crash keeps what was acknowledged, a failed
// syncfs before or after the rename leaves nothing and turns the store read-only.
class LocalChunkStoreGroupSyncTest : public LocalChunkStoreFaultTest {
 protected:
  void SetUp() override {
    LocalChunkStoreFaultTest::SetUp();
    OpenStore(GroupOpts());
  }
  LocalChunkStore::Options GroupOpts() {
    auto o = Opts(env_);
    o.sync = LocalChunkStore::Options::Sync::kGroup;
    o.group_sync_min_bytes = 1000;
    return o;
  }
};

TEST_F(LocalChunkStoreGroupSyncTest, BigChunksCommitThroughSyncfsSmallOnesPerFile) {
  int fsyncs = env_->CallCount(Op::kSync), syncfs = env_->CallCount(Op::kSyncFs);
  ASSERT_TRUE(Put(NewChunkId(), std::string(5000, 'b')).ok());
  EXPECT_EQ(env_->CallCount(Op::kSync), fsyncs) << "no fdatasync of the chunk file";
  EXPECT_EQ(env_->CallCount(Op::kSyncFs), syncfs + 2) << "one before the rename, one after";
  EXPECT_EQ(Counter("wharf_chunkserver_group_syncs_total"), 2u);
  ASSERT_TRUE(Put(NewChunkId(), "small").ok());
  EXPECT_EQ(env_->CallCount(Op::kSync), fsyncs + 1) << "under the floor: fdatasync";
  EXPECT_EQ(env_->CallCount(Op::kSyncFs), syncfs + 2);
}

TEST_F(LocalChunkStoreGroupSyncTest, CrashKeepsAcknowledgedChunksAndDropsTheRest) {
  CrashKeepsCommittedChunksAndDropsTheRest(GroupOpts());
}

TEST_F(LocalChunkStoreGroupSyncTest, FailedSyncfsBeforeOrAfterTheRenameIsStickyAndLeavesNothing) {
  for (int nth : {1, 2}) {
    SCOPED_TRACE(nth);
    OpenStore(GroupOpts());
    std::string id = NewChunkId();
    env_->FailNth(Op::kSyncFs, nth);
    EXPECT_EQ(Put(id, std::string(5000, 'x')).code(), Code::kIOError);
    EXPECT_EQ(store_->Stat(id).error().code(), Code::kNotFound);
    EXPECT_EQ(FilesIn(root_ + "/d0/tmp"), 0u);
    EXPECT_EQ(FilesIn(root_ + "/d0/chunks"), 0u);
    EXPECT_EQ(store_->Health().code(), Code::kIOError);
    env_->ClearFaults();
    EXPECT_EQ(Put(NewChunkId(), std::string(5000, 'y')).code(), Code::kIOError)
        << "the store does not trust the disk again";
    EXPECT_EQ(Put(NewChunkId(), "small").code(), Code::kIOError);
  }
}

TEST_F(LocalChunkStoreFaultTest, CorruptionIsCountedAndQuarantined) {
  std::string id = NewChunkId();
  ASSERT_TRUE(Put(id, "0123456789").ok());
  ASSERT_TRUE(FaultInjectingEnv::FlipByte(store_->ChunkPathForTest(id), kChunkHeaderSize + 3).ok());
  EXPECT_EQ(store_->Verify(id).error().code(), Code::kCorruption);
  EXPECT_EQ(Counter("wharf_chunkserver_corrupt_chunks_total"), 1u);
  ASSERT_TRUE(store_->Quarantine(id).ok());
  EXPECT_EQ(FilesIn(root_ + "/d0/quarantine"), 1u);
  EXPECT_EQ(Counter("wharf_chunkserver_quarantined_chunks_total"), 1u);
}

TEST_F(LocalChunkStoreFaultTest, ReadErrorIsAnIOErrorNeverWrongBytes) {
  std::string id = NewChunkId(), data(100'000, 'r');
  ASSERT_TRUE(Put(id, data).ok());
  // Each read opens the chunk (1st pread: the header) and reads its data (2nd pread).
  env_->FailNth(Op::kRead, 1);
  EXPECT_EQ(store_->ReadRange(id, 0, 10).error().code(), Code::kIOError);
  env_->FailNth(Op::kRead, 2);
  EXPECT_EQ(store_->ReadRange(id, 0, 10).error().code(), Code::kIOError);
  auto chunk = store_->Open(id);
  ASSERT_TRUE(chunk.has_value());
  env_->FailNth(Op::kRead, 1);
  EXPECT_EQ(chunk->Read(5, 100).error().code(), Code::kIOError);
  // A read error while scrubbing is not corruption: the chunk must not be quarantined for it.
  env_->FailNth(Op::kRead, 2);
  EXPECT_EQ(store_->Verify(id).error().code(), Code::kIOError);
  EXPECT_EQ(Counter("wharf_chunkserver_corrupt_chunks_total"), 0u);
  EXPECT_TRUE(store_->Health().ok()) << "a read error does not fail the store";

  env_->ClearFaults();
  EXPECT_EQ(*chunk->Read(5, 100), data.substr(5, 100));
  EXPECT_EQ(*store_->ReadRange(id, 99'990, 10), data.substr(99'990));
  EXPECT_TRUE(store_->Verify(id).has_value());
  EXPECT_GE(env_->CallCount(Op::kRead), 8);
}

TEST_F(LocalChunkStoreFaultTest, LockFailureFailsOpenAndHoldsNothing) {
  std::string id = NewChunkId();
  ASSERT_TRUE(Put(id, "kept").ok());
  store_.reset();
  const int locks = env_->CallCount(Op::kLock);
  env_->FailNth(Op::kLock, 1);
  auto failed = LocalChunkStore::Open(Opts(env_));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code(), Code::kIOError);
  OpenStore(Opts(env_));  // nothing was left locked
  EXPECT_EQ(*store_->ReadRange(id, 0, 4), "kept");
  EXPECT_EQ(env_->CallCount(Op::kLock), locks + 2);
  // And a real second holder is kUnavailable, through the same Env call.
  EXPECT_EQ(LocalChunkStore::Open(Opts(env_)).error().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace wharf

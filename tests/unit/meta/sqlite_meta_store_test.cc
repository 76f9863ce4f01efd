// SQLite joins the MetaStore conformance suite; plus what only SQLite can be asked.
#include "meta/sqlite/sqlite_meta_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include "conformance/meta_store_suite.h"

namespace wharf::testing {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the test temp dir, removed at exit.
std::string FreshDir() {
  static const fs::path root = [] {
    fs::path p = fs::path(::testing::TempDir()) / ("wharf-meta-" + std::to_string(getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    std::atexit([] {
      fs::remove_all(fs::path(::testing::TempDir()) / ("wharf-meta-" + std::to_string(getpid())));
    });
    return p;
  }();
  static std::atomic<int> n{0};
  fs::path dir = root / std::to_string(n++);
  fs::create_directories(dir);
  return dir.string();
}

// Runs `sql` on the database file at `path` behind the store's back (as an older binary would
// have left it): what the migration tests start from.
void ExecSql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  const std::string err = sqlite3_errmsg(db);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << err;
}

MetaStoreCase SqliteCase() {
  return {"Sqlite", "", [] { return "sqlite:" + FreshDir() + "/meta.db"; }, {}};
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Sqlite, MetaStoreSuite, ::testing::Values(SqliteCase()));

// ---- SQLite-specific ----

TEST(OpenMetaStoreTest, RejectsUnknownUrls) {
  // postgres:// urls open PostgresMetaStore: nothing listens on port 1, so it is unavailable.
  META_EXPECT_CODE(OpenMetaStore("postgres://user@127.0.0.1:1/wharf"), Code::kUnavailable);
  META_EXPECT_CODE(OpenMetaStore("postgresql://127.0.0.1:1/wharf"), Code::kUnavailable);
  META_EXPECT_CODE(OpenMetaStore("sqlite:"), Code::kInvalidArgument);
  META_EXPECT_CODE(OpenMetaStore("mysql://x"), Code::kInvalidArgument);
  META_EXPECT_CODE(OpenMetaStore(""), Code::kInvalidArgument);
}

TEST(OpenMetaStoreTest, UnwritableDirectoryIsAnError) {
  auto r = OpenMetaStore("sqlite:" + FreshDir() + "/missing/dir/meta.db");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kIOError) << r.error().ToString();
}

TEST(OpenMetaStoreTest, GarbageFileIsCorruption) {
  std::string path = FreshDir() + "/meta.db";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string junk(8192, 'j');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto r = OpenMetaStore("sqlite:" + path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kCorruption) << r.error().ToString();
}

TEST(SqliteMetaStoreTest, UsesWalAndRecordsSchemaVersion) {
  std::string path = FreshDir() + "/meta.db";
  ASSERT_TRUE(SqliteMetaStore::Open(path));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string v(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    return v;
  };
  EXPECT_EQ(scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(scalar("SELECT version FROM schema_version"), "7");
  sqlite3_close(db);
}

// A version 1 file (blob links without linked_unix) is upgraded in place: its links are kept
// and count as made at the upgrade, so the collector's grace period starts then.
TEST(SqliteMetaStoreTest, MigratesVersion1LinksWithTheUpgradeTime) {
  std::string path = FreshDir() + "/meta.db";
  Digest d = DigestOf("old blob");
  {
    auto store = SqliteMetaStore::Open(path);
    ASSERT_TRUE(store);
    BlobRecord b{d, 3, {ChunkRef{"g1", "old1", 3, 7}}, 5};
    ASSERT_TRUE((*store)->PutBlob("r", b));
  }
  ASSERT_NO_FATAL_FAILURE(ExecSql(path,
                                  "ALTER TABLE repo_blobs DROP COLUMN linked_unix;"
                                  "ALTER TABLE files DROP COLUMN name;"
                                  "DROP TABLE store_identity; DROP TABLE leases;"
                                  "ALTER TABLE uploads DROP COLUMN tail; DROP TABLE work_queue; "
                                  "ALTER TABLE blobs DROP COLUMN last_pull_unix;"
                                  "UPDATE schema_version SET version = 1;"));
  const int64_t before = static_cast<int64_t>(std::time(nullptr));
  auto store = SqliteMetaStore::Open(path);
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_TRUE(*(*store)->BlobLinked("r", d));
  auto id = (*store)->StoreId();  // an upgraded file gets its identity too
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->rfind("ms-", 0), 0u);
  auto young = (*store)->ListUnreferencedBlobLinks({}, before, 10);
  ASSERT_TRUE(young);
  EXPECT_TRUE(young->items.empty());
  auto old = (*store)->ListUnreferencedBlobLinks({}, before + 3600, 10);
  ASSERT_TRUE(old);
  ASSERT_EQ(old->items.size(), 1u);
  EXPECT_EQ(old->items[0].digest, d);
}

// A version 2 file (files without a name) is upgraded in place: its files read back unnamed.
TEST(SqliteMetaStoreTest, MigratesVersion2FilesWithoutNames) {
  std::string path = FreshDir() + "/meta.db";
  FileRecord f;
  f.id = "f1";
  f.digest = DigestOf("abc");
  f.size = 3;
  f.content_type = "text/plain";
  f.chunks = {ChunkRef{"g1", "fc1", 3, 7}};
  f.created_unix = 5;
  {
    auto store = SqliteMetaStore::Open(path);
    ASSERT_TRUE(store);
    UploadSession u;
    u.id = "u1";
    ASSERT_TRUE((*store)->CreateUpload(u).ok());
    ASSERT_TRUE((*store)->RecordChunks(ChunkOwner::Upload("u1"), f.chunks).ok());
    ASSERT_TRUE((*store)->CommitFile("u1", f).ok());
  }
  ASSERT_NO_FATAL_FAILURE(ExecSql(path,
                                  "ALTER TABLE files DROP COLUMN name;"
                                  "DROP TABLE store_identity; DROP TABLE leases;"
                                  "ALTER TABLE uploads DROP COLUMN tail; DROP TABLE work_queue; "
                                  "ALTER TABLE blobs DROP COLUMN last_pull_unix;"
                                  "UPDATE schema_version SET version = 2;"));
  auto store = SqliteMetaStore::Open(path);
  ASSERT_TRUE(store) << store.error().ToString();
  auto got = (*store)->GetFile("f1");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(*got, f);
  EXPECT_EQ(got->name, "");
}

// A version 4 file (upload sessions without a tail) is upgraded in place: its sessions resume
// with an empty tail and take one from then on.
TEST(SqliteMetaStoreTest, MigratesVersion4UploadsWithoutATail) {
  std::string path = FreshDir() + "/meta.db";
  {
    auto store = SqliteMetaStore::Open(path);
    ASSERT_TRUE(store);
    UploadSession u;
    u.id = "u1";
    u.repo = "r";
    u.hash_state = "h";
    ASSERT_TRUE((*store)->CreateUpload(u).ok());
  }
  ASSERT_NO_FATAL_FAILURE(ExecSql(path,
                                  "ALTER TABLE uploads DROP COLUMN tail; DROP TABLE work_queue; "
                                  "ALTER TABLE blobs DROP COLUMN last_pull_unix;"
                                  "UPDATE schema_version SET version = 4;"));
  auto store = SqliteMetaStore::Open(path);
  ASSERT_TRUE(store) << store.error().ToString();
  auto got = (*store)->GetUpload("u1");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->tail, "");
  EXPECT_EQ(got->hash_state, "h");
  ASSERT_TRUE((*store)->AppendUpload("u1", 0, 2, "h2", {}, "ab").ok());
  got = (*store)->GetUpload("u1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->tail, "ab");
}

// A version 5 file (no work queue) is upgraded in place: what it held stays, and its queue
// starts empty and works.
TEST(SqliteMetaStoreTest, MigratesVersion5ToAnEmptyWorkQueue) {
  std::string path = FreshDir() + "/meta.db";
  Digest d = DigestOf("kept blob");
  {
    auto store = SqliteMetaStore::Open(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->PutBlob("r", BlobRecord{d, 3, {ChunkRef{"g1", "k1", 3, 7}}, 5}));
  }
  ASSERT_NO_FATAL_FAILURE(ExecSql(path,
                                  "DROP TABLE work_queue; ALTER TABLE blobs DROP COLUMN "
                                  "last_pull_unix; UPDATE schema_version SET version = 5;"));
  auto store = SqliteMetaStore::Open(path);
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_TRUE(*(*store)->BlobLinked("r", d));
  auto stats = (*store)->GetQueueStats("");
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(*stats, QueueStats{});
  auto item = (*store)->EnqueueItem({QueueKind::kBlob, "http://c", "r", d.ToString(), ""});
  ASSERT_TRUE(item) << item.error().ToString();
  EXPECT_EQ(item->state, QueueState::kPending);
  EXPECT_TRUE(*(*store)->DigestQueued(d));
}

// A version 6 file (blobs without their last pull) is upgraded in place: its blobs count as
// never pulled (their creation is their last use) and take pulls from then on.
TEST(SqliteMetaStoreTest, MigratesVersion6BlobsAsNeverPulled) {
  std::string path = FreshDir() + "/meta.db";
  Digest d = DigestOf("cached blob");
  {
    auto store = SqliteMetaStore::Open(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->PutBlob("r", BlobRecord{d, 3, {ChunkRef{"g1", "c1", 3, 7}}, 5}));
  }
  ASSERT_NO_FATAL_FAILURE(ExecSql(
      path,
      "ALTER TABLE blobs DROP COLUMN last_pull_unix; UPDATE schema_version SET version = 6;"));
  auto store = SqliteMetaStore::Open(path);
  ASSERT_TRUE(store) << store.error().ToString();
  auto listed = (*store)->ListEvictionCandidates(10);
  ASSERT_TRUE(listed) << listed.error().ToString();
  EXPECT_EQ(*listed, (std::vector<EvictionCandidate>{{d, 3, 5}}));
  ASSERT_TRUE((*store)->TouchBlobs({d}, 50).ok());
  EXPECT_EQ((*store)->ListEvictionCandidates(10)->at(0).last_used_unix, 50);
}

TEST(SqliteMetaStoreTest, RefusesNewerSchema) {
  std::string path = FreshDir() + "/meta.db";
  ASSERT_TRUE(SqliteMetaStore::Open(path));
  ASSERT_NO_FATAL_FAILURE(ExecSql(path, "UPDATE schema_version SET version = 999"));
  auto r = SqliteMetaStore::Open(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnsupported) << r.error().ToString();
}

}  // namespace wharf::testing

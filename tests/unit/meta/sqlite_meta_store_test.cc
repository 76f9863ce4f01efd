// SQLite joins the MetaStore conformance suite; plus what only SQLite can be asked.
#include "meta/sqlite/sqlite_meta_store.h"

#include <sqlite3.h>
#include <unistd.h>

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

MetaStoreCase SqliteCase() {
  return {"Sqlite", "", [] { return "sqlite:" + FreshDir() + "/meta.db"; }};
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
  EXPECT_EQ(scalar("SELECT version FROM schema_version"), "1");
  sqlite3_close(db);
}

TEST(SqliteMetaStoreTest, RefusesNewerSchema) {
  std::string path = FreshDir() + "/meta.db";
  ASSERT_TRUE(SqliteMetaStore::Open(path));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 999", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto r = SqliteMetaStore::Open(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnsupported) << r.error().ToString();
}

}  // namespace wharf::testing

// PostgreSQL joins the MetaStore conformance suite against a private server this binary starts
// (tests/support/pg_server.h); plus what only PostgreSQL can be asked: migrations racing,
// forced serialization failures, an unreachable server.
#include "meta/postgres/postgres_meta_store.h"

#include <libpq-fe.h>

#include <thread>

#include "conformance/meta_store_suite.h"
#include "support/pg_server.h"

namespace wharf::testing {
namespace {

// A fresh database per test on the one server of this binary; a server that cannot start
// fails every test with the reason (never a quiet skip).
MetaStoreCase PostgresCase() {
  return {"Postgres",
          "",
          [] {
            PgServer& pg = PgServer::Shared();
            std::string url = pg.FreshDatabase();
            if (url.empty()) ADD_FAILURE() << "no PostgreSQL for the test: " << pg.error();
            return url;
          },
          {}};
}

// A raw libpq connection for poking at the database behind the store's back.
class RawConn {
 public:
  explicit RawConn(const std::string& url) : c_(PQconnectdb(url.c_str())) {}
  ~RawConn() { PQfinish(c_); }
  bool ok() const { return PQstatus(c_) == CONNECTION_OK; }
  // Runs `sql`; returns the first column of the first row ("" if none), or "ERROR: ...".
  std::string Exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    std::string out;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    } else if (PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    return out;
  }

 private:
  PGconn* c_;
};

ManifestRecord ManifestRecordForTest() {
  ManifestRecord m;
  m.content = "{}";
  m.digest = DigestOf(m.content);
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  return m;
}

std::string FreshUrl() {
  PgServer& pg = PgServer::Shared();
  std::string url = pg.FreshDatabase();
  EXPECT_FALSE(url.empty()) << pg.error();
  return url;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Postgres, MetaStoreSuite, ::testing::Values(PostgresCase()));

// ---- PostgreSQL-specific ----

TEST(PostgresMetaStoreTest, MigratesOnceWhenManyOpenAtOnce) {
  std::string url = FreshUrl();
  ASSERT_FALSE(url.empty());
  constexpr int kGateways = 6;
  std::vector<Status> results(kGateways);
  std::vector<std::thread> threads;
  for (int i = 0; i < kGateways; ++i) {
    threads.emplace_back([&, i] {
      auto r = PostgresMetaStore::Open(url);
      results[i] = r ? Status::Ok() : r.error();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& st : results) EXPECT_TRUE(st.ok()) << st.ToString();
  RawConn raw(url);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.Exec("SELECT count(*) FROM wharf_schema"), "1");
  EXPECT_EQ(raw.Exec("SELECT version FROM wharf_schema"), "7");
  // One identity, whoever migrated: every gateway that raced reads the same.
  EXPECT_EQ(raw.Exec("SELECT count(*) FROM store_identity"), "1");
}

TEST(PostgresMetaStoreTest, RefusesNewerSchema) {
  std::string url = FreshUrl();
  ASSERT_TRUE(PostgresMetaStore::Open(url));
  RawConn raw(url);
  ASSERT_EQ(raw.Exec("UPDATE wharf_schema SET version = 999"), "");
  auto r = PostgresMetaStore::Open(url);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnsupported) << r.error().ToString();
}

TEST(PostgresMetaStoreTest, UnreachableServerIsUnavailableWithTheReason) {
  // Port 1 on loopback: nothing listens there.
  auto r = OpenMetaStore("postgres://wharf@127.0.0.1:1/wharf?connect_timeout=2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnavailable) << r.error().ToString();
  EXPECT_NE(r.error().message().find("cannot connect"), std::string::npos) << r.error().message();
  auto bad = OpenMetaStore("postgres://wharf@/nosuchdb?host=/nonexistent-dir");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kUnavailable) << bad.error().ToString();
}

TEST(PostgresMetaStoreTest, SerializationFailureIsRetried) {
  // Deterministic: a raw transaction locks the upload's row; the store's AppendUpload reads the
  // row, then blocks on it; the raw transaction commits a change; the store's transaction fails
  // to serialize (40001), is run again, and succeeds on the new state.
  std::string url = FreshUrl();
  auto opened = PostgresMetaStore::Open(url);
  ASSERT_TRUE(opened) << opened.error().ToString();
  PostgresMetaStore& store = **opened;
  UploadSession u;
  u.id = "u1";
  ASSERT_TRUE(store.CreateUpload(u).ok());
  RawConn raw(url), watcher(url);
  ASSERT_TRUE(raw.ok() && watcher.ok());
  ASSERT_EQ(raw.Exec("BEGIN ISOLATION LEVEL SERIALIZABLE"), "");
  ASSERT_EQ(raw.Exec("UPDATE uploads SET updated_unix = 7 WHERE id = 'u1'"), "");
  uint64_t retries_before = store.retries();
  Status appended;
  std::thread t([&] { appended = store.AppendUpload("u1", 0, 5, "h", {}, ""); });
  // Wait (by polling the server, not by sleeping a guess) until the store's backend waits on
  // our row lock.
  std::string waiting;
  for (int i = 0; i < 2000 && waiting != "1"; ++i) {
    waiting = watcher.Exec(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
        "datname = current_database()");
    if (waiting != "1") std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(waiting, "1") << "the store never blocked on the locked row";
  ASSERT_EQ(raw.Exec("COMMIT"), "");
  t.join();
  EXPECT_TRUE(appended.ok()) << appended.ToString();
  EXPECT_GT(store.retries(), retries_before);
  auto got = store.GetUpload("u1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->offset, 5u);
  EXPECT_EQ(got->updated_unix > 7, true);
}

TEST(PostgresMetaStoreTest, ServerGoneIsUnavailableNotACrash) {
  // A server of its own, stopped under a live store: calls fail with kUnavailable.
  auto server = PgServer::Start();
  ASSERT_TRUE(server) << server.error().ToString();
  std::string url = (*server)->FreshDatabase();
  ASSERT_FALSE(url.empty()) << (*server)->error();
  auto opened = OpenMetaStore(url);
  ASSERT_TRUE(opened) << opened.error().ToString();
  MetaStore& store = **opened;
  ASSERT_TRUE(store.PutManifest("r", ManifestRecordForTest(), "t").ok());
  (*server)->Stop();
  auto tag = store.ResolveTag("r", "t");
  ASSERT_FALSE(tag);
  EXPECT_EQ(tag.error().code(), Code::kUnavailable) << tag.error().ToString();
  Status put = store.PutManifest("r", ManifestRecordForTest(), "u");
  EXPECT_EQ(put.code(), Code::kUnavailable) << put.ToString();
}

}  // namespace wharf::testing

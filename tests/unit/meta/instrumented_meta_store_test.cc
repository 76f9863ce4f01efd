// InstrumentedMetaStore over SQLite: answers exactly as the inner store does, and times and
// counts every call by operation (and errors by code).
#include "meta/instrumented_meta_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/digest.h"
#include "common/fs.h"

namespace wharf {
namespace {

namespace fs = std::filesystem;

uint64_t Calls(MetricsRegistry& m, const std::string& op) {
  std::vector<uint64_t> buckets;
  double sum = 0;
  uint64_t n = 0;
  m.Histogram("wharf_meta_op_seconds", "", {{"op", op}}).Snapshot(&buckets, &sum, &n);
  return n;
}

uint64_t Errors(MetricsRegistry& m, const std::string& op, const std::string& code) {
  return m.Counter("wharf_meta_op_errors_total", "", {{"op", op}, {"code", code}}).Value();
}

TEST(InstrumentedMetaStoreTest, ForwardsAndCountsEveryCall) {
  fs::path dir = fs::temp_directory_path() / ("wharf-instrumented-" + RandomHex(8));
  fs::create_directories(dir);
  auto inner = OpenMetaStore("sqlite:" + (dir / "meta.db").string());
  ASSERT_TRUE(inner.has_value()) << inner.error().ToString();
  MetricsRegistry metrics;
  InstrumentedMetaStore store(std::move(*inner), metrics);

  UploadSession s;
  s.id = "u1";
  s.repo = "team/app";
  ASSERT_TRUE(store.CreateUpload(s).ok());
  auto got = store.GetUpload("u1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->repo, "team/app");
  EXPECT_EQ(store.GetUpload("nope").error().code(), Code::kNotFound);
  EXPECT_EQ(store.CreateUpload(s).code(), Code::kConflict);
  const Digest d = DigestOf("absent");
  EXPECT_EQ(store.GetBlob(d).error().code(), Code::kNotFound);
  auto linked = store.BlobLinked("team/app", d);
  ASSERT_TRUE(linked.has_value());
  EXPECT_FALSE(*linked);
  ASSERT_TRUE(store.DeleteUpload("u1").ok());

  EXPECT_EQ(Calls(metrics, "create_upload"), 2u);
  EXPECT_EQ(Calls(metrics, "get_upload"), 2u);
  EXPECT_EQ(Calls(metrics, "get_blob"), 1u);
  EXPECT_EQ(Calls(metrics, "blob_linked"), 1u);
  EXPECT_EQ(Calls(metrics, "delete_upload"), 1u);
  EXPECT_EQ(Calls(metrics, "put_manifest"), 0u);
  EXPECT_EQ(Errors(metrics, "get_upload", "not_found"), 1u);
  EXPECT_EQ(Errors(metrics, "create_upload", "conflict"), 1u);
  EXPECT_EQ(Errors(metrics, "get_blob", "not_found"), 1u);
  EXPECT_EQ(Errors(metrics, "blob_linked", "not_found"), 0u);
  EXPECT_NE(metrics.Render().find("wharf_meta_op_seconds_count{op=\"get_upload\"} 2"),
            std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wharf

// MetaStoreSuite cases for GetStoredTotals. Included by meta_store_suite.h; not a header of its
// own.
#pragma once

#include <ostream>

namespace wharf {

// Readable failures.
inline void PrintTo(const StoredTotals& t, std::ostream* os) {
  *os << "{blobs=" << t.blobs << " blob_bytes=" << t.blob_bytes << " manifests=" << t.manifests
      << " manifest_bytes=" << t.manifest_bytes << " files=" << t.files
      << " file_bytes=" << t.file_bytes << " repositories=" << t.repositories << " tags=" << t.tags
      << "}";
}

}  // namespace wharf

namespace wharf::testing {

TEST_P(MetaStoreSuite, StoredTotalsCountWhatIsStored) {
  EXPECT_EQ(Must(s().GetStoredTotals()), StoredTotals{});

  BlobRecord a = Blob("blob a", {Chunk("a1", 4), Chunk("a2", 3)});
  BlobRecord b = Blob("blob b", {Chunk("b1", 10)});
  META_ASSERT_OK(s().PutBlob("r1", a));
  META_ASSERT_OK(s().PutBlob("r1", b));
  META_ASSERT_OK(s().LinkBlob("r2", a.digest));  // linked twice, stored once
  ManifestRecord m = Manifest("manifest one");
  m.blobs = {a.digest};
  META_ASSERT_OK(s().PutManifest("r1", m, "v1"));
  META_ASSERT_OK(s().PutManifest("r1", m, "latest"));
  META_ASSERT_OK(s().PutManifest("r2", m, "v1"));  // a second repository holds a copy
  ManifestRecord bare = Manifest(std::string("bin\0ary", 7));
  META_ASSERT_OK(s().PutManifest("r3", bare, std::nullopt));
  NewUpload("u1", "", {Chunk("f1", 6)});
  META_ASSERT_OK(s().CommitFile("u1", MakeFile("file1", {Chunk("f1", 6)})));
  NewUpload("u2", "r4");  // a session alone stores nothing and makes no repository

  StoredTotals want;
  want.blobs = 2;
  want.blob_bytes = 7 + 10;
  want.manifests = 3;
  want.manifest_bytes = 2 * m.content.size() + 7;
  want.files = 1;
  want.file_bytes = 6;
  want.repositories = 3;
  want.tags = 3;
  EXPECT_EQ(Must(s().GetStoredTotals()), want);

  // Deletes show at once; an emptied repository no longer counts.
  META_ASSERT_OK(s().DeleteManifest("r3", bare.digest));
  META_ASSERT_OK(s().DeleteTag("r1", "latest"));
  ASSERT_TRUE(Must(s().UnlinkBlob("r1", b.digest)));
  ASSERT_TRUE(s().DeleteFile("file1"));
  want.blobs = 1;
  want.blob_bytes = 7;
  want.manifests = 2;
  want.manifest_bytes = 2 * m.content.size();
  want.files = 0;
  want.file_bytes = 0;
  want.repositories = 2;
  want.tags = 2;
  EXPECT_EQ(Must(s().GetStoredTotals()), want);

  // Another store object on the same database sees the same.
  std::unique_ptr<MetaStore> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(Must(other->GetStoredTotals()), want);
}

}  // namespace wharf::testing

// BlobService over a real SQLite store and the fake cluster of blob_test_env.h: the ledger
// rule, the events and the read-through fallback.
#include "blob_test_env.h"

namespace wharf::testing {
namespace {

using BlobServiceTest = BlobTest;

TEST_F(BlobServiceTest, EventsFireOnlyAfterACommitOrDelete) {
  BlobService blobs(ctx_);
  std::vector<Event> events;
  blobs.Subscribe([&events](const Event& e) { events.push_back(e); });
  Run([&]() -> awaitable<void> {
    const std::string data = Bytes(10000, 'a');  // three chunks of 4 KiB
    const Digest digest = DigestOf(data);
    // A failed commit (wrong digest) says nothing.
    Result<std::string> id = co_await blobs.StartUpload("team/app");
    EXPECT_TRUE(id);
    Result<Upload> up = co_await blobs.ResumeUpload("team/app", *id);
    EXPECT_TRUE(up);
    StringSource wrong(data);
    auto bad = co_await blobs.Commit(std::move(*up), DigestOf("other"), BodyClaim{}, &wrong);
    EXPECT_EQ(bad ? Code::kOk : bad.error().code(), Code::kDigestMismatch);
    EXPECT_TRUE(events.empty());
    // A chunked upload: append, then commit.
    id = co_await blobs.StartUpload("team/app");
    up = co_await blobs.ResumeUpload("team/app", *id);
    StringSource first(data.substr(0, 5000));
    Result<uint64_t> end = co_await blobs.Append(*up, BodyClaim{}, first);
    EXPECT_TRUE(end && *end == 5000);
    EXPECT_TRUE(events.empty());
    StringSource rest(data.substr(5000));
    BodyClaim claim;
    claim.range = BodyClaim::Range{5000, data.size() - 5000};
    auto blob = co_await blobs.Commit(std::move(*up), digest, claim, &rest);
    EXPECT_TRUE(blob) << blob.error().ToString();
    EXPECT_EQ(events.size(), 1u);
    if (!events.empty()) {
      EXPECT_EQ(events[0].kind, EventKind::kBlobCommitted);
      EXPECT_EQ(events[0].repo, "team/app");
      EXPECT_EQ(events[0].digest, digest);
      EXPECT_EQ(events[0].reference, digest.ToString());
      EXPECT_EQ(events[0].size, data.size());
    }
    auto reader = co_await blobs.OpenBlob("team/app", digest);
    EXPECT_TRUE(reader);
    if (reader) {
      EXPECT_EQ(*(co_await ReadAllOf(**reader)), data);
    }
    // A manifest whose blob is not linked is refused, silently.
    events.clear();
    ManifestRecord m;
    m.content = "{\"layers\":1}";
    m.digest = DigestOf(m.content);
    m.media_type = "application/vnd.oci.image.manifest.v1+json";
    m.blobs = {digest};
    Digest missing;
    Status st = co_await blobs.PutManifest("team/other", "v1", m, &missing);
    EXPECT_EQ(st.code(), Code::kNotFound);
    EXPECT_EQ(missing, digest);
    EXPECT_TRUE(events.empty());
    // Stored with a tag: a manifest event and a tag event.
    st = co_await blobs.PutManifest("team/app", "v1", m, &missing);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(events.size(), 2u);
    if (events.size() == 2) {
      EXPECT_EQ(events[0].kind, EventKind::kManifestCommitted);
      EXPECT_EQ(events[0].reference, m.digest.ToString());
      EXPECT_EQ(events[0].media_type, m.media_type);
      EXPECT_EQ(events[0].size, m.content.size());
      EXPECT_EQ(events[1].kind, EventKind::kTagCommitted);
      EXPECT_EQ(events[1].reference, "v1");
      EXPECT_EQ(events[1].digest, m.digest);
    }
    // Deletes: a failed one is silent.
    events.clear();
    Reference tag;
    tag.tag = "nope";
    EXPECT_EQ((co_await blobs.DeleteManifest("team/app", tag)).code(), Code::kNotFound);
    EXPECT_TRUE(events.empty());
    tag.tag = "v1";
    EXPECT_TRUE((co_await blobs.DeleteManifest("team/app", tag)).ok());
    Reference by_digest;
    by_digest.digest = m.digest;
    EXPECT_TRUE((co_await blobs.DeleteManifest("team/app", by_digest)).ok());
    EXPECT_TRUE((co_await blobs.DeleteBlob("team/app", digest)).ok());
    EXPECT_EQ((co_await blobs.DeleteBlob("team/app", digest)).code(), Code::kNotFound);
    std::vector<EventKind> kinds;
    for (const Event& e : events) kinds.push_back(e.kind);
    EXPECT_EQ(kinds, (std::vector<EventKind>{EventKind::kTagDeleted, EventKind::kManifestDeleted,
                                             EventKind::kBlobDeleted}));
  });
}

TEST_F(BlobServiceTest, MissesFallBackToTheReadThroughSource) {
  TestSource source;
  BlobService blobs(ctx_, &source);
  BlobService none(ctx_);  // the default: NoReadThrough
  Run([&]() -> awaitable<void> {
    // A local blob is served locally; the source is not asked.
    StringSource body("local bytes");
    auto local = co_await blobs.PutBlob("up/stream", DigestOf("local bytes"), body);
    EXPECT_TRUE(local);
    auto reader = co_await blobs.OpenBlob("up/stream", DigestOf("local bytes"));
    EXPECT_TRUE(reader);
    if (reader) {
      EXPECT_EQ(*(co_await ReadAllOf(**reader)), "local bytes");
    }
    EXPECT_EQ(source.blob_lookups, 0);
    // A miss goes to the source.
    reader = co_await blobs.OpenBlob("up/stream", DigestOf(source.blob));
    EXPECT_TRUE(reader);
    if (reader) {
      EXPECT_EQ(*(co_await ReadAllOf(**reader)), source.blob);
    }
    EXPECT_EQ(source.blob_lookups, 1);
    reader = co_await blobs.OpenBlob("up/stream", DigestOf("nowhere"));
    EXPECT_EQ(reader ? Code::kOk : reader.error().code(), Code::kNotFound);
    // A blob stored but not linked in this repository is a local miss too.
    reader = co_await blobs.OpenBlob("elsewhere", DigestOf("local bytes"));
    EXPECT_EQ(reader ? Code::kOk : reader.error().code(), Code::kNotFound);
    EXPECT_EQ(source.blob_lookups, 3);
    // Manifests: an unknown tag falls back; NoReadThrough answers not found.
    Reference v1;
    v1.tag = "v1";
    auto m = co_await blobs.GetManifest("up/stream", v1);
    EXPECT_TRUE(m);
    if (m) {
      EXPECT_EQ(m->content, "{\"upstream\":true}");
    }
    EXPECT_EQ(source.manifest_lookups, 1);
    m = co_await none.GetManifest("up/stream", v1);
    EXPECT_EQ(m ? Code::kOk : m.error().code(), Code::kNotFound);
    auto r = co_await none.OpenBlob("up/stream", DigestOf(source.blob));
    EXPECT_EQ(r ? Code::kOk : r.error().code(), Code::kNotFound);
  });
}

TEST_F(BlobServiceTest, CommitRefusesABodyThatDisagreesWithItsRange) {
  BlobService blobs(ctx_);
  Run([&]() -> awaitable<void> {
    const std::string data = Bytes(9000, 'q');
    Result<std::string> id = co_await blobs.StartUpload("r");
    Result<Upload> up = co_await blobs.ResumeUpload("r", *id);
    StringSource head(data.substr(0, 3000));
    EXPECT_TRUE(co_await blobs.Append(*up, BodyClaim{}, head));
    // The body is 6000 bytes; its range claims 7000.
    StringSource tail(data.substr(3000));
    BodyClaim claim;
    claim.range = BodyClaim::Range{3000, 7000};
    const size_t puts_before = fake_->put_ids.size();
    auto blob = co_await blobs.Commit(std::move(*up), DigestOf(data), claim, &tail);
    EXPECT_EQ(blob ? Code::kOk : blob.error().code(), Code::kConflict);
    // Nothing stored: no blob, the chunks of the refused body are garbage, the session intact.
    auto reader = co_await blobs.OpenBlob("r", DigestOf(data));
    EXPECT_EQ(reader ? Code::kOk : reader.error().code(), Code::kNotFound);
    EXPECT_GT(fake_->put_ids.size(), puts_before);
    for (size_t i = puts_before; i < fake_->put_ids.size(); ++i) {
      EXPECT_EQ(StateOf(fake_->put_ids[i]), ChunkState::kGarbage) << fake_->put_ids[i];
    }
    up = co_await blobs.ResumeUpload("r", *id);
    EXPECT_TRUE(up);
    if (up) {
      EXPECT_EQ(up->offset(), 3000u);
    }
    // A range that does not start at the offset is refused before the body is read.
    StringSource again(data.substr(3000));
    claim.range = BodyClaim::Range{2000, 7000};
    blob = co_await blobs.Commit(std::move(*up), DigestOf(data), claim, &again);
    EXPECT_EQ(blob ? Code::kOk : blob.error().code(), Code::kRangeInvalid);
  });
}

}  // namespace
}  // namespace wharf::testing

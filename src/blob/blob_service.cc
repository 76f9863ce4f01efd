#include "blob/blob_service.h"

#include <algorithm>
#include <ctime>
#include <utility>

#include "common/async.h"
#include "common/fs.h"
#include "meta/lookup_cache.h"
#include "registry/errors.h"
#include "registry/route.h"

namespace wharf {
namespace {

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

// Checks a claim against the upload before its body is read.
Status CheckClaim(const Upload& upload, const BodyClaim& claim) {
  if (!claim.range) return Status::Ok();
  if (claim.range->first != upload.offset()) {
    return RangeInvalid("chunk starts at " + std::to_string(claim.range->first) +
                        ", upload is at " + std::to_string(upload.offset()));
  }
  if (claim.length && *claim.length != claim.range->length) {
    return RangeInvalid("Content-Range length differs from Content-Length");
  }
  return Status::Ok();
}

// kConflict from the store or the writer (a chunk owned by someone else) is a broken invariant
// here; the service's own kConflict means "body length differs from its Content-Range".
Status NotAConflict(Status st) {
  if (st.code() != Code::kConflict) return st;
  return Internal(st.ToString());
}

Status UploadUnknown(std::string message = std::string()) {
  if (message.empty()) message = GetOciErrorInfo(OciError::kBlobUploadUnknown).message;
  return NotFound(std::move(message));
}

}  // namespace

struct BlobService::Written {
  std::vector<ChunkRef> chunks;
  uint64_t bytes = 0;  // of the body (the prefix not counted)
  Hasher hasher;
  std::string tail;  // bytes past the last chunk, kept (WriteBody's max_tail)
};

BlobService::BlobService(BlobContext ctx, ReadThroughSource* read_through)
    : ctx_(std::move(ctx)), read_through_(read_through ? read_through : &none_) {}

// ---- Uploads ----

awaitable<Result<std::string>> BlobService::StartUpload(std::string repo) {
  UploadSession s;
  s.id = NewUploadId();
  s.repo = std::move(repo);
  s.hash_state = Hasher().SaveState();
  MetaStore* meta = ctx_.meta;
  auto create = [meta, s] { return meta->CreateUpload(s); };
  Status st = co_await Offload(create);
  if (!st.ok()) co_return Err(std::move(st));
  co_return s.id;
}

awaitable<Result<Upload>> BlobService::ResumeUpload(std::string repo, std::string upload_id) {
  if (!ValidUploadId(upload_id)) co_return Err(UploadUnknown("malformed upload id"));
  MetaStore* meta = ctx_.meta;
  auto get = [meta, upload_id] { return meta->GetUpload(upload_id); };
  Result<UploadSession> s = co_await Offload(get);
  if (!s) {
    if (s.error().code() == Code::kNotFound) co_return Err(UploadUnknown());
    co_return Err(s.error());
  }
  if (s->repo != repo) co_return Err(UploadUnknown("upload belongs to another repository"));
  Result<Hasher> hasher = Hasher::RestoreState(DigestAlgorithm::kSha256, s->hash_state);
  if (!hasher) co_return Err(Internal("restore hash: " + hasher.error().message()));
  co_return Upload{std::move(*s), std::move(*hasher)};
}

BlobContext BlobService::ContextFor(std::string request_id) const {
  BlobContext ctx = ctx_;
  ctx.request_id = std::move(request_id);
  return ctx;
}

awaitable<Result<BlobService::Written>> BlobService::WriteBody(std::string upload_id, Hasher hasher,
                                                               ByteSource* body,
                                                               std::string request_id,
                                                               std::string_view prefix,
                                                               size_t max_tail) {
  BlobWriter writer(ContextFor(std::move(request_id)), std::move(upload_id), std::move(hasher));
  Status st = co_await writer.Prefill(prefix);
  if (st.ok() && body != nullptr) st = co_await writer.WriteFrom(*body);
  // Finish even after a failure: it waits for the chunks in flight.
  Written w;
  Result<std::vector<ChunkRef>> chunks = co_await writer.FinishKeepingTail(max_tail, &w.tail);
  if (!st.ok()) co_return Err(std::move(st));
  if (!chunks) co_return Err(std::move(chunks).error());
  w.chunks = std::move(*chunks);
  w.bytes = writer.bytes();
  w.hasher = std::move(writer.hasher());
  co_return w;
}

awaitable<Result<BlobService::Written>> BlobService::AppendBody(Upload& upload,
                                                                const BodyClaim& claim,
                                                                ByteSource* body,
                                                                std::string request_id,
                                                                bool keep_tail) {
  // A tail is kept only below a chunk: a full chunk's worth is always written.
  const size_t max_tail =
      keep_tail ? static_cast<size_t>(std::min<uint64_t>(kMaxUploadTailBytes, ctx_.chunk_size - 1))
                : 0;
  // The upload's hasher moves into the writer; the caller puts the writer's back.
  Result<Written> w = co_await WriteBody(upload.id(), std::move(upload.hasher), body,
                                         std::move(request_id), upload.session.tail, max_tail);
  if (!w) co_return Err(NotAConflict(std::move(w).error()));
  if (claim.range && w->bytes != claim.range->length) {
    co_await ReleaseWritten(w->chunks);
    co_return Err(Conflict("body length differs from Content-Range"));
  }
  co_return w;
}

awaitable<void> BlobService::ReleaseWritten(const std::vector<ChunkRef>& chunks) {
  if (chunks.empty()) co_return;
  std::vector<std::string> ids;
  for (const ChunkRef& c : chunks) ids.push_back(c.id);
  MetaStore* meta = ctx_.meta;
  auto release = [meta, ids] { return meta->ReleaseChunks(ids); };
  Status st = co_await Offload(release);
  if (!st.ok()) ctx_.log->warn("chunk release failed count={} err={}", ids.size(), st);
}

awaitable<void> BlobService::DropSession(std::string id) {
  MetaStore* meta = ctx_.meta;
  auto drop = [meta, id] { return meta->DeleteUpload(id); };
  Status st = co_await Offload(drop);
  if (!st.ok() && st.code() != Code::kNotFound) {
    ctx_.log->warn("upload delete failed upload={} err={}", id, st);
  }
}

awaitable<Result<uint64_t>> BlobService::Append(Upload& upload, BodyClaim claim, ByteSource& body,
                                                std::string request_id) {
  if (Status st = CheckClaim(upload, claim); !st.ok()) co_return Err(std::move(st));
  Result<Written> w =
      co_await AppendBody(upload, claim, &body, std::move(request_id), /*keep_tail=*/true);
  if (!w) co_return Err(std::move(w).error());
  const uint64_t end = upload.offset() + w->bytes;
  std::string state = w->hasher.SaveState();
  MetaStore* meta = ctx_.meta;
  // The new tail replaces the old one in the same transaction as the offset: a 202 means the
  // bytes are durable, whether in chunks or in the session.
  auto append = [meta, id = upload.id(), from = upload.offset(), end, state, chunks = w->chunks,
                 tail = w->tail] { return meta->AppendUpload(id, from, end, state, chunks, tail); };
  Status st = co_await Offload(append);
  if (!st.ok()) {
    co_await ReleaseWritten(w->chunks);
    if (st.code() == Code::kConflict) {  // a concurrent append moved the offset first
      co_return Err(RangeInvalid("concurrent write to this upload"));
    }
    co_return Err(std::move(st));
  }
  upload.session.offset = end;
  upload.session.hash_state = std::move(state);
  upload.session.chunks.insert(upload.session.chunks.end(), w->chunks.begin(), w->chunks.end());
  upload.session.tail = std::move(w->tail);
  upload.hasher = std::move(w->hasher);
  co_return end;
}

awaitable<Result<Digest>> BlobService::HashChunks(std::vector<ChunkRef> chunks, uint64_t size,
                                                  DigestAlgorithm algorithm,
                                                  std::string request_id) {
  auto hasher = std::make_shared<Hasher>(algorithm);
  ByteSink sink = [hasher](std::string_view piece) -> awaitable<Status> {
    auto update = [&hasher, piece] { hasher->Update(piece); };
    co_await Offload(update);
    co_return Status::Ok();
  };
  const BlobContext ctx = ContextFor(std::move(request_id));
  Status st = co_await ReadChunks(ctx, chunks, 0, size, sink);
  if (!st.ok()) co_return Err(std::move(st));
  co_return hasher->Finish();
}

awaitable<Result<BlobInfo>> BlobService::CommitSession(std::string repo, std::string upload_id,
                                                       Digest want, Digest actual, uint64_t size,
                                                       std::vector<ChunkRef> chunks) {
  if (actual != want) {
    co_await DropSession(upload_id);
    co_return Err(
        DigestMismatch("content digest is " + actual.ToString() + ", not " + want.ToString()));
  }
  BlobRecord blob;
  blob.digest = want;
  blob.size = size;
  blob.chunks = std::move(chunks);
  blob.created_unix = NowUnix();
  MetaStore* meta = ctx_.meta;
  auto commit = [meta, upload_id, repo, blob] { return meta->CommitBlob(upload_id, repo, blob); };
  Result<bool> stored = co_await Offload(commit);
  if (!stored) co_return Err(NotAConflict(stored.error()));
  ctx_.log->info("blob committed repo={} digest={} size={} new={}", repo, want.ToString(), size,
                 *stored);
  events_.Publish(Event{EventKind::kBlobCommitted, repo, want.ToString(), want, "", size});
  if (write_through_) {
    Status st = co_await write_through_->BlobStored(repo, want);
    if (!st.ok()) co_return Err(std::move(st));
  }
  co_return BlobInfo{want, size, *stored};
}

awaitable<Result<BlobInfo>> BlobService::Commit(Upload upload, Digest want, BodyClaim claim,
                                                ByteSource* body, std::string request_id) {
  if (Status st = CheckClaim(upload, claim); !st.ok()) co_return Err(std::move(st));
  std::vector<ChunkRef> chunks = std::move(upload.session.chunks);
  uint64_t size = upload.offset();
  if (body || !upload.session.tail.empty()) {
    // The pending tail (and the last body, if any) become the last chunk(s).
    Result<Written> w = co_await AppendBody(upload, claim, body, request_id, /*keep_tail=*/false);
    if (!w) co_return Err(std::move(w).error());
    chunks.insert(chunks.end(), w->chunks.begin(), w->chunks.end());
    size += w->bytes;
    upload.hasher = std::move(w->hasher);
  }
  Digest actual;
  if (want.algorithm() == DigestAlgorithm::kSha256) {
    actual = upload.hasher.Finish();
  } else {
    Result<Digest> d = co_await HashChunks(chunks, size, want.algorithm(), request_id);
    if (!d) co_return Err(d.error());
    actual = *d;
  }
  co_return co_await CommitSession(upload.repo(), upload.id(), std::move(want), std::move(actual),
                                   size, std::move(chunks));
}

awaitable<Status> BlobService::Cancel(const Upload& upload) {
  MetaStore* meta = ctx_.meta;
  auto drop = [meta, id = upload.id()] { return meta->DeleteUpload(id); };
  co_return co_await Offload(drop);
}

awaitable<Result<BlobInfo>> BlobService::PutBlob(std::string repo, Digest want, ByteSource& body,
                                                 std::string request_id) {
  Result<std::string> id = co_await StartUpload(repo);
  if (!id) co_return Err(id.error());
  Result<Written> w =
      co_await WriteBody(*id, Hasher(want.algorithm()), &body, std::move(request_id));
  if (!w) {
    co_await DropSession(*id);
    co_return Err(std::move(w).error());
  }
  Digest actual = w->hasher.Finish();
  co_return co_await CommitSession(std::move(repo), *id, std::move(want), std::move(actual),
                                   w->bytes, std::move(w->chunks));
}

awaitable<Result<bool>> BlobService::Mount(std::string repo, Digest digest,
                                           std::optional<std::string> from) {
  MetaStore* meta = ctx_.meta;
  auto mount = [meta, &repo, &digest, &from]() -> Status {
    if (from) {
      Result<bool> linked = meta->BlobLinked(*from, digest);
      if (!linked) return linked.error();
      if (!*linked) return NotFound("not linked in the source repository");
    }
    // Without `from`: automatic content discovery (any stored blob of that digest).
    return meta->LinkBlob(repo, digest);
  };
  Status st = co_await Offload(mount);
  if (st.code() == Code::kNotFound) co_return false;
  if (!st.ok()) co_return Err(std::move(st));
  events_.Publish(Event{EventKind::kBlobMounted, repo, digest.ToString(), digest, "", 0});
  if (write_through_) {
    Status wt = co_await write_through_->BlobStored(repo, digest);
    if (!wt.ok()) co_return Err(std::move(wt));
  }
  co_return true;
}

ManifestRecord ManifestRecordOf(Digest digest, std::string content, ManifestInfo info,
                                bool allow_foreign) {
  ManifestRecord m;
  m.digest = std::move(digest);
  m.media_type = std::move(info.media_type);
  m.content = std::move(content);
  m.subject = std::move(info.subject);
  m.artifact_type = std::move(info.artifact_type);
  m.annotations_json = std::move(info.annotations);
  m.blobs = std::move(info.blobs);
  if (!allow_foreign) m.blobs.insert(m.blobs.end(), info.foreign.begin(), info.foreign.end());
  m.manifests = std::move(info.manifests);
  m.created_unix = static_cast<int64_t>(std::time(nullptr));
  return m;
}

// ---- Blob reads and deletes ----

awaitable<Result<std::unique_ptr<BlobReader>>> BlobService::OpenBlob(std::string repo,
                                                                     Digest digest,
                                                                     std::string request_id) {
  MetaStore* meta = ctx_.meta;
  if (record_pulls_ && pulls_.size() < kMaxPendingPulls) pulls_.insert(digest);
  std::optional<BlobRecord> hit;  // answered on the loop: no hop to the pool
  if (ctx_.lookup) hit = ctx_.lookup->FindLinkedBlob(repo, digest);
  if (hit) {
    co_return std::unique_ptr<BlobReader>(std::make_unique<ChunkReader>(
        ContextFor(std::move(request_id)), std::move(hit->chunks), hit->size));
  }
  auto get = [meta, &repo, &digest] { return meta->GetLinkedBlob(repo, digest); };
  Result<BlobRecord> blob = co_await Offload(get);
  if (blob) {
    co_return std::unique_ptr<BlobReader>(std::make_unique<ChunkReader>(
        ContextFor(std::move(request_id)), std::move(blob->chunks), blob->size));
  }
  if (blob.error().code() != Code::kNotFound) co_return Err(blob.error());
  co_return co_await read_through_->OpenBlob(std::move(repo), std::move(digest));
}

std::vector<Digest> BlobService::TakePulls() {
  std::vector<Digest> out(pulls_.begin(), pulls_.end());
  pulls_.clear();
  return out;
}

awaitable<Status> BlobService::DeleteBlob(std::string repo, Digest digest) {
  MetaStore* meta = ctx_.meta;
  auto unlink = [meta, &repo, &digest] { return meta->UnlinkBlob(repo, digest); };
  Result<bool> deleted = co_await Offload(unlink);
  if (!deleted) co_return deleted.error();
  ctx_.log->info("blob unlinked repo={} digest={} last_link={}", repo, digest.ToString(), *deleted);
  events_.Publish(Event{EventKind::kBlobDeleted, repo, digest.ToString(), digest, "", 0});
  co_return Status::Ok();
}

// ---- Plain files ----

awaitable<Result<FileRecord>> BlobService::PutFile(std::string content_type, ByteSource& body,
                                                   std::string request_id, std::string name) {
  MetaStore* meta = ctx_.meta;
  UploadSession session;
  session.id = RandomHex(16);
  auto create = [meta, session] { return meta->CreateUpload(session); };
  Status st = co_await Offload(create);
  if (!st.ok()) co_return Err(std::move(st));
  Result<Written> w = co_await WriteBody(session.id, Hasher(), &body, std::move(request_id));
  FileRecord file;
  if (w) {
    file.id = RandomHex(16);
    file.digest = w->hasher.Finish();
    file.size = w->bytes;
    file.content_type = std::move(content_type);
    file.chunks = std::move(w->chunks);
    file.created_unix = NowUnix();
    file.name = std::move(name);
    auto commit = [meta, id = session.id, file] { return meta->CommitFile(id, file); };
    st = co_await Offload(commit);
  } else {
    st = w.error();
  }
  if (!st.ok()) {
    // Its chunks become garbage; the collector removes them from the cluster.
    auto drop = [meta, id = session.id] { return meta->DeleteUpload(id); };
    Status dropped = co_await Offload(drop);
    if (!dropped.ok())
      ctx_.log->warn("upload cleanup failed upload={} err={}", session.id, dropped);
    co_return Err(std::move(st));
  }
  co_return file;
}

awaitable<Result<OpenedFile>> BlobService::OpenFile(std::string id, std::string request_id) {
  MetaStore* meta = ctx_.meta;
  auto get = [meta, id] { return meta->GetFile(id); };
  Result<FileRecord> file = co_await Offload(get);
  if (!file) co_return Err(file.error());
  OpenedFile out;
  out.reader =
      std::make_unique<ChunkReader>(ContextFor(std::move(request_id)), file->chunks, file->size);
  out.record = std::move(*file);
  co_return out;
}

awaitable<Status> BlobService::DeleteFile(std::string id) {
  MetaStore* meta = ctx_.meta;
  auto del = [meta, id] { return meta->DeleteFile(id); };
  Result<FileRecord> file = co_await Offload(del);
  if (!file) co_return file.error();
  co_return Status::Ok();
}

// ---- Manifests and tags ----

awaitable<Status> BlobService::FetchBlob(std::string repo, Digest digest) {
  Result<std::unique_ptr<BlobReader>> reader = co_await read_through_->OpenBlob(repo, digest);
  if (!reader) co_return reader.error();
  ByteSink discard = [](std::string_view) -> awaitable<Status> { co_return Status::Ok(); };
  const uint64_t size = (*reader)->size();
  co_return co_await (*reader)->Read(0, size, std::move(discard));
}

awaitable<Status> BlobService::PutManifest(std::string repo, std::optional<std::string> tag,
                                           ManifestRecord manifest, Digest* missing) {
  MetaStore* meta = ctx_.meta;
  Digest absent;
  auto put = [meta, &repo, &manifest, &tag, &absent] {
    return meta->PutManifest(repo, manifest, tag, &absent);
  };
  Status st = co_await Offload(put);
  // A blob the manifest references that is not here, but that the read-through source has (a
  // site's upstream: the blob was evicted from this site, or pushed through another one, and the
  // client skipped the upload because HEAD found it there): fetch it into this repository and
  // try again, once per referenced blob.
  for (size_t fetched = 0;
       st.code() == Code::kNotFound && fetched < manifest.blobs.size() &&
       std::find(manifest.blobs.begin(), manifest.blobs.end(), absent) != manifest.blobs.end();
       ++fetched) {
    Status got = co_await FetchBlob(repo, absent);
    if (!got.ok()) {
      if (got.code() != Code::kNotFound) {
        ctx_.log->warn("manifest blob fetch failed repo={} digest={} err={}", repo,
                       absent.ToString(), got);
      }
      break;
    }
    ctx_.log->info("manifest blob fetched from the read-through source repo={} digest={}", repo,
                   absent.ToString());
    st = co_await Offload(put);
  }
  if (!st.ok()) {
    if (missing) *missing = absent;
    co_return st;
  }
  ctx_.log->info("manifest stored repo={} digest={} tag={} type={}", repo,
                 manifest.digest.ToString(), tag.value_or(""), manifest.media_type);
  Event e{EventKind::kManifestCommitted, repo,
          manifest.digest.ToString(),    manifest.digest,
          manifest.media_type,           manifest.content.size()};
  events_.Publish(e);
  if (tag) {
    e.kind = EventKind::kTagCommitted;
    e.reference = *tag;
    events_.Publish(e);
  }
  if (write_through_) co_return co_await write_through_->ManifestStored(repo, tag, manifest);
  co_return Status::Ok();
}

awaitable<Result<ManifestRecord>> BlobService::GetManifest(std::string repo, Reference ref) {
  MetaStore* meta = ctx_.meta;
  LookupCache* lookup = ctx_.lookup;
  Digest digest = ref.digest;
  if (!ref.is_digest() && read_through_->ResolvesTags(repo)) {
    co_return co_await read_through_->GetManifest(std::move(repo), std::move(ref));
  }
  std::optional<Digest> cached_tag;
  if (!ref.is_digest() && lookup) cached_tag = lookup->FindTag(repo, ref.tag);
  if (cached_tag) {
    digest = std::move(*cached_tag);
  } else if (!ref.is_digest()) {
    // The tag and its manifest in one hop to the pool (a cached manifest skips the query).
    auto resolve = [meta, &repo, &ref]() -> Result<ManifestRecord> {
      WHARF_ASSIGN_OR_RETURN(Digest d, meta->ResolveTag(repo, ref.tag));
      return meta->GetManifest(repo, d);
    };
    Result<ManifestRecord> m = co_await Offload(resolve);
    if (m || m.error().code() != Code::kNotFound) co_return m;
    co_return co_await read_through_->GetManifest(std::move(repo), std::move(ref));
  }
  if (lookup) {
    if (std::optional<ManifestRecord> hit = lookup->FindManifest(repo, digest)) {
      co_return std::move(*hit);
    }
  }
  auto get = [meta, &repo, &digest] { return meta->GetManifest(repo, digest); };
  Result<ManifestRecord> m = co_await Offload(get);
  if (m || m.error().code() != Code::kNotFound) co_return m;
  co_return co_await read_through_->GetManifest(std::move(repo), std::move(ref));
}

awaitable<Status> BlobService::DeleteManifest(std::string repo, Reference ref) {
  MetaStore* meta = ctx_.meta;
  auto del = [meta, &repo, &ref] {
    return ref.is_digest() ? meta->DeleteManifest(repo, ref.digest)
                           : meta->DeleteTag(repo, ref.tag);
  };
  Status st = co_await Offload(del);
  if (!st.ok()) co_return st;
  ctx_.log->info("manifest deleted repo={} reference={}", repo, ref.ToString());
  Event e;
  e.kind = ref.is_digest() ? EventKind::kManifestDeleted : EventKind::kTagDeleted;
  e.repo = std::move(repo);
  e.reference = ref.ToString();
  e.digest = ref.digest;
  events_.Publish(e);
  if (write_through_) co_return co_await write_through_->ManifestDeleted(e.repo, ref);
  co_return Status::Ok();
}

}  // namespace wharf

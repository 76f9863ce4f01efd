// Blob uploads: POST /v2/<name>/blobs/uploads/ (start, monolithic ?digest=, ?mount=&from=),
// PATCH / PUT / GET / DELETE /v2/<name>/blobs/uploads/<id>.
//
// A session lives in the MetaStore (offset, SHA-256 midstate, the chunks received so far), so
// any gateway can continue it and it survives a restart. Each PATCH streams its body into new
// chunks (owned by "upload:<id>" in the chunk ledger from before they are written) and then
// appends them with AppendUpload, which checks the offset atomically: of two racing PATCHes
// one wins and the other gets 416 and its chunks are released. PUT ?digest= verifies the
// digest over every byte and commits the blob (CommitBlob moves the chunks to the blob and
// deletes the session); a mismatch deletes the session, so nothing of it stays.
#include <ctime>
#include <optional>
#include <utility>

#include "gateway/blob_serve.h"
#include "gateway/registry_internal.h"
#include "http/range.h"
#include "registry/names.h"

namespace wharf::registry {
namespace {

void AddUploadHeaders(Exchange& ex, const std::string& name, const std::string& id,
                      uint64_t offset) {
  ex.AddHeader("Location", UploadLocation(name, id));
  ex.AddHeader("Range", UploadRange(offset));
  ex.AddHeader("Docker-Upload-UUID", id);
}

// The session named by the route, checked to belong to the route's repository. On failure
// the error is sent and nullopt returned.
awaitable<std::optional<UploadSession>> LoadSession(GatewayContext& ctx, Exchange& ex,
                                                    const Route& route) {
  if (!ValidUploadId(route.upload_id)) {
    co_await SendError(ex, OciError::kBlobUploadUnknown, "malformed upload id");
    co_return std::nullopt;
  }
  auto get = [&ctx, &route] { return ctx.meta->GetUpload(route.upload_id); };
  Result<UploadSession> s = co_await Offload(get);
  if (!s) {
    if (s.error().code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUploadUnknown);
    } else {
      co_await SendServerError(ctx, ex, s.error(), "get upload");
    }
    co_return std::nullopt;
  }
  if (s->repo != route.name) {
    co_await SendError(ex, OciError::kBlobUploadUnknown, "upload belongs to another repository");
    co_return std::nullopt;
  }
  co_return std::move(*s);
}

awaitable<Result<std::string>> CreateSession(GatewayContext& ctx, const std::string& repo) {
  UploadSession s;
  s.id = NewUploadId();
  s.repo = repo;
  s.hash_state = Hasher().SaveState();
  auto create = [&ctx, &s] { return ctx.meta->CreateUpload(s); };
  Status st = co_await Offload(create);
  if (!st.ok()) co_return Err(std::move(st));
  co_return s.id;
}

// Deletes a session that will not complete (its chunks become garbage). Best effort.
awaitable<void> DropSession(GatewayContext& ctx, const std::string& id) {
  auto drop = [&ctx, &id] { return ctx.meta->DeleteUpload(id); };
  Status st = co_await Offload(drop);
  if (!st.ok() && st.code() != Code::kNotFound) {
    ctx.log->warn("upload delete failed upload={} err={}", id, st);
  }
}

// Releases chunks a failed PATCH wrote but never appended to its session. Best effort.
awaitable<void> ReleaseWritten(GatewayContext& ctx, const std::vector<ChunkRef>& chunks) {
  if (chunks.empty()) co_return;
  std::vector<std::string> ids;
  for (const ChunkRef& c : chunks) ids.push_back(c.id);
  auto release = [&ctx, &ids] { return ctx.meta->ReleaseChunks(ids); };
  Status st = co_await Offload(release);
  if (!st.ok()) ctx.log->warn("chunk release failed count={} err={}", ids.size(), st);
}

struct Written {
  std::vector<ChunkRef> chunks;
  uint64_t bytes = 0;
  Hasher hasher;
};

// Streams the request body into new chunks owned by session `id`, hashing with `hasher`.
awaitable<Result<Written>> WriteRequestBody(GatewayContext& ctx, Exchange& ex, std::string id,
                                            Hasher hasher) {
  BlobWriter writer(BlobContextOf(ctx), std::move(id), std::move(hasher));
  ExchangeSource source(ex);
  Status body = co_await writer.WriteFrom(source);
  // Finish even after a failure: it waits for the chunks in flight.
  Result<std::vector<ChunkRef>> chunks = co_await writer.Finish();
  if (!body.ok()) co_return Err(std::move(body));
  if (!chunks) co_return Err(std::move(chunks).error());
  Written w;
  w.chunks = std::move(*chunks);
  w.bytes = writer.bytes();
  w.hasher = std::move(writer.hasher());
  co_return w;
}

// Checks a PATCH/PUT Content-Range against the session's offset. On failure sends 416 (with
// the session's Range) and returns false.
awaitable<std::optional<std::optional<ByteRange>>> CheckContentRange(Exchange& ex,
                                                                     const UploadSession& s) {
  std::string_view header = ex.header(http::field::content_range);
  if (header.empty()) co_return std::optional<ByteRange>();
  Result<ByteRange> range = ParseUploadContentRange(header);
  std::string problem;
  if (!range) {
    problem = "malformed Content-Range: " + range.error().message();
  } else if (range->first != s.offset) {
    problem = "chunk starts at " + std::to_string(range->first) + ", upload is at " +
              std::to_string(s.offset);
  } else if (auto len = ex.content_length(); len && *len != range->length()) {
    problem = "Content-Range length differs from Content-Length";
  }
  if (problem.empty()) co_return std::optional<ByteRange>(*range);
  AddUploadHeaders(ex, s.repo, s.id, s.offset);
  co_await SendError(ex, OciError::kRangeInvalid, problem);
  co_return std::nullopt;
}

awaitable<void> SendBodyError(GatewayContext& ctx, Exchange& ex, Status st) {
  if (st.code() == Code::kNotFound) {  // the session was deleted while the body streamed
    co_await SendError(ex, OciError::kBlobUploadUnknown);
    co_return;
  }
  co_await SendServerError(ctx, ex, std::move(st), "write upload body");
}

awaitable<void> PatchUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<UploadSession> s = co_await LoadSession(ctx, ex, route);
  if (!s) co_return;
  auto range = co_await CheckContentRange(ex, *s);
  if (!range) co_return;
  Result<Hasher> hasher = Hasher::RestoreState(DigestAlgorithm::kSha256, s->hash_state);
  if (!hasher) {
    co_await SendServerError(ctx, ex, Internal(hasher.error().message()), "restore hash");
    co_return;
  }
  Result<Written> w = co_await WriteRequestBody(ctx, ex, s->id, std::move(*hasher));
  if (!w) {
    co_await SendBodyError(ctx, ex, std::move(w).error());
    co_return;
  }
  if (*range && w->bytes != (*range)->length()) {
    co_await ReleaseWritten(ctx, w->chunks);
    co_await SendError(ex, OciError::kSizeInvalid, "body length differs from Content-Range");
    co_return;
  }
  uint64_t end = s->offset + w->bytes;
  std::string state = w->hasher.SaveState();
  auto append = [&ctx, &s, &w, &state, end] {
    return ctx.meta->AppendUpload(s->id, s->offset, end, std::move(state), w->chunks);
  };
  Status st = co_await Offload(append);
  if (!st.ok()) {
    co_await ReleaseWritten(ctx, w->chunks);
    if (st.code() == Code::kConflict) {  // a concurrent PATCH moved the offset first
      AddUploadHeaders(ex, s->repo, s->id, s->offset);
      co_await SendError(ex, OciError::kRangeInvalid, "concurrent write to this upload");
    } else {
      co_await SendBodyError(ctx, ex, std::move(st));
    }
    co_return;
  }
  AddUploadHeaders(ex, s->repo, s->id, end);
  (void)co_await ex.Respond(http::status::accepted, std::string(), "");
}

// SHA-512 of a chunk list (a chunked upload's session hash is SHA-256; this re-reads its
// bytes in the rare case the client closes it with a sha512 digest).
awaitable<Result<Digest>> HashChunks(GatewayContext& ctx, std::vector<ChunkRef> chunks,
                                     uint64_t size, DigestAlgorithm algorithm) {
  auto hasher = std::make_shared<Hasher>(algorithm);
  std::function<awaitable<Status>(std::string_view)> sink =
      [hasher](std::string_view piece) -> awaitable<Status> {
    auto update = [&hasher, piece] { hasher->Update(piece); };
    co_await Offload(update);
    co_return Status::Ok();
  };
  Status st = co_await ReadChunks(BlobContextOf(ctx), chunks, 0, size, sink);
  if (!st.ok()) co_return Err(std::move(st));
  co_return hasher->Finish();
}

// Verifies `actual` against `want` and commits the session as blob `want`: 201, or
// DIGEST_INVALID with the session deleted.
awaitable<void> CommitUpload(GatewayContext& ctx, Exchange& ex, std::string name, std::string id,
                             Digest want, Digest actual, uint64_t size,
                             std::vector<ChunkRef> chunks) {
  if (actual != want) {
    co_await DropSession(ctx, id);
    co_await SendError(ex, OciError::kDigestInvalid,
                       "content digest is " + actual.ToString() + ", not " + want.ToString());
    co_return;
  }
  BlobRecord blob;
  blob.digest = want;
  blob.size = size;
  blob.chunks = std::move(chunks);
  blob.created_unix = static_cast<int64_t>(std::time(nullptr));
  auto commit = [&ctx, &id, &name, &blob] { return ctx.meta->CommitBlob(id, name, blob); };
  Result<bool> stored = co_await Offload(commit);
  if (!stored) {
    if (stored.error().code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUploadUnknown);
    } else {
      co_await SendServerError(ctx, ex, stored.error(), "commit blob");
    }
    co_return;
  }
  ctx.log->info("blob committed repo={} digest={} size={} new={}", name, want.ToString(), size,
                *stored);
  ex.AddHeader("Location", BlobLocation(name, want));
  ex.AddHeader("Docker-Content-Digest", want.ToString());
  (void)co_await ex.Respond(http::status::created, std::string(), "");
}

// The digest query parameter of a PUT or monolithic POST; sends DIGEST_INVALID if malformed.
awaitable<std::optional<Digest>> DigestParam(Exchange& ex) {
  std::optional<std::string> q = ex.query("digest");
  if (!q) {
    co_await SendError(ex, OciError::kDigestInvalid, "the digest parameter is required");
    co_return std::nullopt;
  }
  Result<Digest> d = Digest::Parse(*q);
  if (!d) {
    co_await SendError(ex, OciError::kDigestInvalid, d.error().message());
    co_return std::nullopt;
  }
  co_return *d;
}

awaitable<void> PutUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<Digest> want = co_await DigestParam(ex);
  if (!want) co_return;
  std::optional<UploadSession> s = co_await LoadSession(ctx, ex, route);
  if (!s) co_return;
  auto range = co_await CheckContentRange(ex, *s);
  if (!range) co_return;
  Result<Hasher> hasher = Hasher::RestoreState(DigestAlgorithm::kSha256, s->hash_state);
  if (!hasher) {
    co_await SendServerError(ctx, ex, Internal(hasher.error().message()), "restore hash");
    co_return;
  }
  std::vector<ChunkRef> chunks = std::move(s->chunks);
  uint64_t size = s->offset;
  if (ex.chunked() || ex.content_length().value_or(0) > 0) {
    Result<Written> w = co_await WriteRequestBody(ctx, ex, s->id, std::move(*hasher));
    if (!w) {
      co_await SendBodyError(ctx, ex, std::move(w).error());
      co_return;
    }
    chunks.insert(chunks.end(), w->chunks.begin(), w->chunks.end());
    size += w->bytes;
    *hasher = std::move(w->hasher);
  }
  Digest actual;
  if (want->algorithm() == DigestAlgorithm::kSha256) {
    actual = hasher->Finish();
  } else {
    Result<Digest> d = co_await HashChunks(ctx, chunks, size, want->algorithm());
    if (!d) {
      co_await SendServerError(ctx, ex, d.error(), "rehash upload");
      co_return;
    }
    actual = *d;
  }
  co_await CommitUpload(ctx, ex, route.name, s->id, *want, actual, size, std::move(chunks));
}

awaitable<void> MonolithicUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<Digest> want = co_await DigestParam(ex);
  if (!want) co_return;
  Result<std::string> id = co_await CreateSession(ctx, route.name);
  if (!id) {
    co_await SendServerError(ctx, ex, id.error(), "create upload");
    co_return;
  }
  Result<Written> w = co_await WriteRequestBody(ctx, ex, *id, Hasher(want->algorithm()));
  if (!w) {
    co_await DropSession(ctx, *id);
    co_await SendBodyError(ctx, ex, std::move(w).error());
    co_return;
  }
  Digest actual = w->hasher.Finish();
  co_await CommitUpload(ctx, ex, route.name, *id, *want, actual, w->bytes, std::move(w->chunks));
}

// Cross-repository mount. Returns true if it answered (201, or an error); false to fall back
// to an ordinary upload, as the spec requires when the blob cannot be mounted.
awaitable<bool> TryMount(GatewayContext& ctx, Exchange& ex, const Route& route, std::string mount) {
  Result<Digest> digest = Digest::Parse(mount);
  if (!digest) {
    co_await SendError(ex, OciError::kDigestInvalid, digest.error().message());
    co_return true;
  }
  std::optional<std::string> from = ex.query("from");
  if (from && !ValidRepositoryName(*from)) co_return false;
  auto mount_fn = [&ctx, &route, &digest, &from]() -> Status {
    if (from) {
      Result<bool> linked = ctx.meta->BlobLinked(*from, *digest);
      if (!linked) return linked.error();
      if (!*linked) return NotFound("not linked in the source repository");
    }
    // Without `from`: automatic content discovery (any stored blob of that digest).
    return ctx.meta->LinkBlob(route.name, *digest);
  };
  Status st = co_await Offload(mount_fn);
  if (st.code() == Code::kNotFound) co_return false;
  if (!st.ok()) {
    co_await SendServerError(ctx, ex, st, "mount blob");
    co_return true;
  }
  ex.AddHeader("Location", BlobLocation(route.name, *digest));
  ex.AddHeader("Docker-Content-Digest", digest->ToString());
  (void)co_await ex.Respond(http::status::created, std::string(), "");
  co_return true;
}

awaitable<void> UploadStatus(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<UploadSession> s = co_await LoadSession(ctx, ex, route);
  if (!s) co_return;
  AddUploadHeaders(ex, s->repo, s->id, s->offset);
  (void)co_await ex.Respond(http::status::no_content, std::string(), "");
}

awaitable<void> CancelUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<UploadSession> s = co_await LoadSession(ctx, ex, route);
  if (!s) co_return;
  auto drop = [&ctx, &s] { return ctx.meta->DeleteUpload(s->id); };
  Status st = co_await Offload(drop);
  if (!st.ok()) {
    if (st.code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUploadUnknown);
    } else {
      co_await SendServerError(ctx, ex, st, "delete upload");
    }
    co_return;
  }
  (void)co_await ex.Respond(http::status::no_content, std::string(), "");
}

}  // namespace

awaitable<void> HandleUploadStart(GatewayContext& ctx, Exchange& ex, Route route) {
  if (ex.method() != http::verb::post) {
    ex.AddHeader("Allow", "POST");
    co_await SendError(ex, OciError::kUnsupported);
    co_return;
  }
  if (std::optional<std::string> mount = ex.query("mount")) {
    if (co_await TryMount(ctx, ex, route, *mount)) co_return;
  } else if (ex.query("digest")) {
    co_await MonolithicUpload(ctx, ex, std::move(route));
    co_return;
  }
  Result<std::string> id = co_await CreateSession(ctx, route.name);
  if (!id) {
    co_await SendServerError(ctx, ex, id.error(), "create upload");
    co_return;
  }
  AddUploadHeaders(ex, route.name, *id, 0);
  (void)co_await ex.Respond(http::status::accepted, std::string(), "");
}

awaitable<void> HandleUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  switch (ex.method()) {
    case http::verb::patch:
      co_await PatchUpload(ctx, ex, std::move(route));
      break;
    case http::verb::put:
      co_await PutUpload(ctx, ex, std::move(route));
      break;
    case http::verb::get:
      co_await UploadStatus(ctx, ex, std::move(route));
      break;
    case http::verb::delete_:
      co_await CancelUpload(ctx, ex, std::move(route));
      break;
    default:
      ex.AddHeader("Allow", "GET, PATCH, PUT, DELETE");
      co_await SendError(ex, OciError::kUnsupported);
      break;
  }
}

}  // namespace wharf::registry

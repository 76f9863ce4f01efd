// Blob uploads: POST /v2/<name>/blobs/uploads/ (start, monolithic ?digest=, ?mount=&from=),
// PATCH / PUT / GET / DELETE /v2/<name>/blobs/uploads/<id>.
//
// These handlers only parse and answer; BlobService (blob/blob_service.h) does the work: a
// session lives in the MetaStore (offset, SHA-256 midstate, the chunks received so far), so
// any gateway can continue it and it survives a restart. Each PATCH streams its body into new
// chunks and appends them with an atomic offset check: of two racing PATCHes one wins and the
// other gets 416. PUT ?digest= (with or without a last body, held to its Content-Range as a
// PATCH is) verifies the digest over every byte and commits the blob; a mismatch deletes the
// session, so nothing of it stays.
#include <optional>
#include <utility>

#include "gateway/blob_serve.h"
#include "gateway/registry_internal.h"
#include "http/range.h"
#include "registry/names.h"

namespace wharf::registry {
namespace {

void AddUploadHeaders(const GatewayContext& ctx, Exchange& ex, const std::string& name,
                      const std::string& id, uint64_t offset) {
  ex.AddHeader("Location", UploadLocation(ctx, ex, name, id));
  ex.AddHeader("Range", UploadRange(offset));
  ex.AddHeader("Docker-Upload-UUID", id);
}

// The session named by the route, resumed (BlobService::ResumeUpload). On failure the error
// is sent and nullopt returned.
awaitable<std::optional<Upload>> LoadSession(GatewayContext& ctx, Exchange& ex,
                                             const Route& route) {
  Result<Upload> u = co_await ctx.blobs->ResumeUpload(route.name, route.upload_id);
  if (u) co_return std::move(*u);
  if (u.error().code() == Code::kNotFound) {
    co_await SendError(ex, OciError::kBlobUploadUnknown, u.error().message());
  } else {
    co_await SendServerError(ctx, ex, u.error(), "get upload");
  }
  co_return std::nullopt;
}

// What a PATCH or PUT says about its body: Content-Range (parsed) and Content-Length. A
// malformed Content-Range sends 416 (with the session's Range) and returns nullopt.
awaitable<std::optional<BodyClaim>> ParseClaim(GatewayContext& ctx, Exchange& ex, const Upload& u) {
  BodyClaim claim;
  claim.length = ex.content_length();
  std::string_view header = ex.header(http::field::content_range);
  if (header.empty()) co_return claim;
  Result<ByteRange> range = ParseUploadContentRange(header);
  if (range) {
    claim.range = BodyClaim::Range{range->first, range->length()};
    co_return claim;
  }
  AddUploadHeaders(ctx, ex, u.repo(), u.id(), u.offset());
  co_await SendError(ex, OciError::kRangeInvalid,
                     "malformed Content-Range: " + range.error().message());
  co_return std::nullopt;
}

// Answers a failed append or commit of `u`: 416 with the session's Range for a range that
// does not fit it, SIZE_INVALID for a body whose length differs from its Content-Range,
// BLOB_UPLOAD_UNKNOWN for a session that vanished, DIGEST_INVALID, else a server error.
awaitable<void> SendUploadError(GatewayContext& ctx, Exchange& ex, std::string repo, std::string id,
                                uint64_t offset, Status st, std::string what) {
  switch (st.code()) {
    case Code::kRangeInvalid:
      AddUploadHeaders(ctx, ex, repo, id, offset);
      co_await SendError(ex, OciError::kRangeInvalid, st.message());
      co_return;
    case Code::kConflict:
      co_await SendError(ex, OciError::kSizeInvalid, st.message());
      co_return;
    case Code::kNotFound:  // the session was deleted while the body streamed
      co_await SendError(ex, OciError::kBlobUploadUnknown);
      co_return;
    case Code::kDigestMismatch:
      co_await SendError(ex, OciError::kDigestInvalid, st.message());
      co_return;
    default:
      co_await SendServerError(ctx, ex, std::move(st), std::move(what));
  }
}

void AddBlobHeaders(const GatewayContext& ctx, Exchange& ex, const std::string& name,
                    const Digest& digest) {
  ex.AddHeader("Location", BlobLocation(ctx, ex, name, digest));
  ex.AddHeader("Docker-Content-Digest", digest.ToString());
}

awaitable<void> PatchUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<Upload> u = co_await LoadSession(ctx, ex, route);
  if (!u) co_return;
  std::optional<BodyClaim> claim = co_await ParseClaim(ctx, ex, *u);
  if (!claim) co_return;
  ExchangeSource body(ex);
  Result<uint64_t> end = co_await ctx.blobs->Append(*u, *claim, body, ex.request_id());
  if (!end) {  // the session is as it was
    co_await SendUploadError(ctx, ex, u->repo(), u->id(), u->offset(), end.error(),
                             "write upload body");
    co_return;
  }
  AddUploadHeaders(ctx, ex, u->repo(), u->id(), *end);
  (void)co_await ex.Respond(http::status::accepted, std::string(), "");
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
  std::optional<Upload> u = co_await LoadSession(ctx, ex, route);
  if (!u) co_return;
  std::optional<BodyClaim> claim = co_await ParseClaim(ctx, ex, *u);
  if (!claim) co_return;
  std::string repo = u->repo(), id = u->id();  // for the headers of an error
  const uint64_t offset = u->offset();
  ExchangeSource source(ex);
  ByteSource* body = ex.chunked() || ex.content_length().value_or(0) > 0 ? &source : nullptr;
  Result<BlobInfo> blob =
      co_await ctx.blobs->Commit(std::move(*u), *want, *claim, body, ex.request_id());
  if (!blob) {
    co_await SendUploadError(ctx, ex, std::move(repo), std::move(id), offset, blob.error(),
                             "commit blob");
    co_return;
  }
  AddBlobHeaders(ctx, ex, route.name, blob->digest);
  (void)co_await ex.Respond(http::status::created, std::string(), "");
}

awaitable<void> MonolithicUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<Digest> want = co_await DigestParam(ex);
  if (!want) co_return;
  ExchangeSource body(ex);
  Result<BlobInfo> blob = co_await ctx.blobs->PutBlob(route.name, *want, body, ex.request_id());
  if (!blob) {
    Status st = blob.error();
    if (st.code() == Code::kDigestMismatch) {
      co_await SendError(ex, OciError::kDigestInvalid, st.message());
    } else if (st.code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUploadUnknown);
    } else {
      co_await SendServerError(ctx, ex, std::move(st), "monolithic upload");
    }
    co_return;
  }
  AddBlobHeaders(ctx, ex, route.name, blob->digest);
  (void)co_await ex.Respond(http::status::created, std::string(), "");
}

// Repositories a mount without `from` looks through for one the caller may pull that links
// the blob; past this many it opens an ordinary upload instead.
constexpr size_t kMaxMountSearch = 1000;

// A repository that links `digest` and that `caller` may pull, or nullopt.
Result<std::optional<std::string>> FindPullableSource(MetaStore* meta,
                                                      const auth::Authenticator& authn,
                                                      const auth::Caller& caller,
                                                      const Digest& digest) {
  std::string cursor;
  size_t searched = 0;
  while (searched < kMaxMountSearch) {
    WHARF_ASSIGN_OR_RETURN(Page page, meta->ListRepositories(cursor, 500));
    for (const std::string& repo : page.items) {
      if (!authn.Allowed(caller, repo, auth::Action::kPull)) continue;
      if (++searched > kMaxMountSearch) break;
      WHARF_ASSIGN_OR_RETURN(bool linked, meta->BlobLinked(repo, digest));
      if (linked) return std::optional<std::string>(repo);
    }
    if (!page.more || page.items.empty()) break;
    cursor = page.items.back();
  }
  return std::optional<std::string>();
}

// Cross-repository mount. Returns true if it answered (201, or an error); false to fall back
// to an ordinary upload, as the spec requires when the blob cannot be mounted. With access
// control (push on the target was checked by the auth filter) a mount needs pull on `from`;
// without `from` it links only a blob that some repository the caller may pull links, so a
// caller cannot probe repositories it may not read for a digest and take their blobs.
awaitable<bool> TryMount(GatewayContext& ctx, Exchange& ex, const Route& route, std::string mount) {
  Result<Digest> digest = Digest::Parse(mount);
  if (!digest) {
    co_await SendError(ex, OciError::kDigestInvalid, digest.error().message());
    co_return true;
  }
  std::optional<std::string> from = ex.query("from");
  if (from && !ValidRepositoryName(*from)) co_return false;
  if (ctx.auth) {
    std::shared_ptr<const auth::Caller> caller = ctx.auth->CallerOf(ex);
    if (!caller) caller = std::make_shared<const auth::Caller>();
    const auth::Authenticator& authn = ctx.auth->authenticator();
    if (from && !authn.Allowed(*caller, *from, auth::Action::kPull)) co_return false;
    if (!from) {
      MetaStore* meta = ctx.meta;
      const Digest& d = *digest;
      auto find = [meta, &authn, &caller, &d] {
        return FindPullableSource(meta, authn, *caller, d);
      };
      Result<std::optional<std::string>> source = co_await Offload(find);
      if (!source) {
        co_await SendServerError(ctx, ex, source.error(), "mount blob");
        co_return true;
      }
      if (!*source) co_return false;
      from = std::move(*source);
    }
  }
  Result<bool> mounted = co_await ctx.blobs->Mount(route.name, *digest, std::move(from));
  if (!mounted) {
    co_await SendServerError(ctx, ex, mounted.error(), "mount blob");
    co_return true;
  }
  if (!*mounted) co_return false;
  AddBlobHeaders(ctx, ex, route.name, *digest);
  (void)co_await ex.Respond(http::status::created, std::string(), "");
  co_return true;
}

awaitable<void> UploadStatus(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<Upload> u = co_await LoadSession(ctx, ex, route);
  if (!u) co_return;
  AddUploadHeaders(ctx, ex, u->repo(), u->id(), u->offset());
  (void)co_await ex.Respond(http::status::no_content, std::string(), "");
}

awaitable<void> CancelUpload(GatewayContext& ctx, Exchange& ex, Route route) {
  std::optional<Upload> u = co_await LoadSession(ctx, ex, route);
  if (!u) co_return;
  Status st = co_await ctx.blobs->Cancel(*u);
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
  Result<std::string> id = co_await ctx.blobs->StartUpload(route.name);
  if (!id) {
    co_await SendServerError(ctx, ex, id.error(), "create upload");
    co_return;
  }
  AddUploadHeaders(ctx, ex, route.name, *id, 0);
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

// GET / HEAD / DELETE /v2/<name>/blobs/<digest>.
//
// A blob is visible in a repository only through a link: content pushed to another repository
// is BLOB_UNKNOWN here until it is pushed or mounted here too (BlobService::OpenBlob reads the
// linked blob in one metadata round trip, then falls back to the read-through source).
#include <utility>

#include "gateway/blob_serve.h"
#include "gateway/registry_internal.h"
#include "http/conditional.h"

namespace wharf::registry {
namespace {

awaitable<void> GetBlob(GatewayContext& ctx, Exchange& ex, const Route& route,
                        const Digest& digest) {
  Result<std::unique_ptr<BlobReader>> blob =
      co_await ctx.blobs->OpenBlob(route.name, digest, ex.request_id());
  if (!blob) {
    // A site in async mode takes pushes while its upstream is down, and a HEAD is how every
    // client asks whether to upload a blob: answer it for the site alone (a GET still says the
    // upstream is unreachable).
    const bool push_probe = blob.error().code() == Code::kUnavailable &&
                            ex.method() == http::verb::head && ctx.options->site_write_async;
    if (blob.error().code() == Code::kNotFound || push_probe) {
      co_await SendError(ex, OciError::kBlobUnknown,
                         "blob unknown to repository: " + digest.ToString());
    } else {
      co_await SendServerError(ctx, ex, blob.error(), "get blob");
    }
    co_return;
  }
  ex.AddHeader("Docker-Content-Digest", digest.ToString());
  const std::string etag = "\"" + digest.ToString() + "\"";
  ex.AddHeader("ETag", etag);
  ex.AddHeader("Cache-Control", "max-age=31536000");
  if (co_await RespondIfNotModified(ex, etag)) co_return;
  Status st = co_await ServeBlob(ctx, ex, **blob, "application/octet-stream");
  if (!st.ok() && !ex.responded() && ctx.lookup &&
      ctx.lookup->InvalidateLinkedBlob(route.name, digest)) {
    // The record may have been the lookup cache's, of a blob another process (wharf gc, another
    // gateway) has collected since: ask the store before blaming the cluster.
    Result<std::unique_ptr<BlobReader>> again =
        co_await ctx.blobs->OpenBlob(route.name, digest, ex.request_id());
    if (!again && again.error().code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUnknown,
                         "blob unknown to repository: " + digest.ToString());
      co_return;
    }
  }
  if (!st.ok() && !ex.responded()) {
    co_await SendServerError(ctx, ex, Unavailable("no copy of the blob's data can be read now"),
                             "get blob");
    co_return;
  }
  if (!st.ok()) {
    ctx.log->warn("blob read failed repo={} digest={} request_id={} err={}", route.name,
                  digest.ToString(), ex.request_id(), st);
  }
}

awaitable<void> DeleteBlob(GatewayContext& ctx, Exchange& ex, const Route& route,
                           const Digest& digest) {
  Status st = co_await ctx.blobs->DeleteBlob(route.name, digest);
  if (!st.ok()) {
    if (st.code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUnknown, "blob unknown: " + digest.ToString());
    } else {
      co_await SendServerError(ctx, ex, st, "unlink blob");
    }
    co_return;
  }
  ex.AddHeader("Docker-Content-Digest", digest.ToString());
  (void)co_await ex.Respond(http::status::accepted, std::string(), "");
}

}  // namespace

awaitable<void> HandleBlob(GatewayContext& ctx, Exchange& ex, Route route) {
  http::verb m = ex.method();
  if (m != http::verb::get && m != http::verb::head && m != http::verb::delete_) {
    ex.AddHeader("Allow", "GET, HEAD, DELETE");
    co_await SendError(ex, OciError::kUnsupported);
    co_return;
  }
  Result<Digest> digest = Digest::Parse(route.reference);
  if (!digest) {
    co_await SendError(ex, OciError::kDigestInvalid, digest.error().message());
    co_return;
  }
  if (m == http::verb::delete_) {
    co_await DeleteBlob(ctx, ex, route, *digest);
  } else {
    co_await GetBlob(ctx, ex, route, *digest);
  }
}

}  // namespace wharf::registry

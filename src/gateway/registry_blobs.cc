// GET / HEAD / DELETE /v2/<name>/blobs/<digest>.
//
// A blob is visible in a repository only through a link (MetaStore::BlobLinked): content
// pushed to another repository is BLOB_UNKNOWN here until it is pushed or mounted here too.
#include <utility>

#include "gateway/blob_serve.h"
#include "gateway/registry_internal.h"

namespace wharf::registry {
namespace {

awaitable<void> ServeBlobGet(GatewayContext& ctx, Exchange& ex, const Route& route,
                             const Digest& digest) {
  auto get = [&ctx, &digest] { return ctx.meta->GetBlob(digest); };
  Result<BlobRecord> blob = co_await Offload(get);
  if (!blob) {
    if (blob.error().code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUnknown, "blob unknown: " + digest.ToString());
    } else {
      co_await SendServerError(ctx, ex, blob.error(), "get blob");
    }
    co_return;
  }
  ex.AddHeader("Docker-Content-Digest", digest.ToString());
  ex.AddHeader("ETag", "\"" + digest.ToString() + "\"");
  ex.AddHeader("Cache-Control", "max-age=31536000");
  Status st = co_await ServeBlob(ctx, ex, blob->chunks, blob->size, "application/octet-stream");
  if (!st.ok()) {
    ctx.log->warn("blob read failed repo={} digest={} request_id={} err={}", route.name,
                  digest.ToString(), ex.request_id(), st);
  }
}

awaitable<void> DeleteBlob(GatewayContext& ctx, Exchange& ex, const Route& route,
                           const Digest& digest) {
  auto unlink = [&ctx, &route, &digest] { return ctx.meta->UnlinkBlob(route.name, digest); };
  Result<bool> deleted = co_await Offload(unlink);
  if (!deleted) {
    if (deleted.error().code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kBlobUnknown, "blob unknown: " + digest.ToString());
    } else {
      co_await SendServerError(ctx, ex, deleted.error(), "unlink blob");
    }
    co_return;
  }
  ctx.log->info("blob unlinked repo={} digest={} last_link={}", route.name, digest.ToString(),
                *deleted);
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
    co_return;
  }
  auto linked_fn = [&ctx, &route, &digest] { return ctx.meta->BlobLinked(route.name, *digest); };
  Result<bool> linked = co_await Offload(linked_fn);
  if (!linked) {
    co_await SendServerError(ctx, ex, linked.error(), "blob linked");
    co_return;
  }
  if (!*linked) {
    co_await SendError(ex, OciError::kBlobUnknown,
                       "blob unknown to repository: " + digest->ToString());
    co_return;
  }
  co_await ServeBlobGet(ctx, ex, route, *digest);
}

}  // namespace wharf::registry

// Routing of /v2 requests, the base endpoint, and the error helpers of every registry handler.
#include "gateway/registry_handlers.h"

#include <utility>

#include "common/metrics.h"
#include "gateway/registry_internal.h"
#include "registry/route.h"

namespace wharf {
namespace registry {

awaitable<void> SendError(Exchange& ex, OciError e, std::string message, nlohmann::json detail,
                          unsigned status_override) {
  unsigned code = status_override != 0 ? status_override : static_cast<unsigned>(OciErrorStatus(e));
  std::string body = OciErrorBody(e, message, detail);
  (void)co_await ex.Respond(static_cast<http::status>(code), std::move(body));
}

awaitable<void> SendServerError(GatewayContext& ctx, Exchange& ex, Status st, std::string what) {
  switch (st.code()) {
    case Code::kUnavailable:
    case Code::kNoSpace:
      ctx.log->warn("registry unavailable op={} request_id={} err={}", what, ex.request_id(), st);
      ex.AddHeader("Retry-After", "1");
      co_await SendError(ex, OciError::kUnavailable, st.message());
      co_return;
    case Code::kCancelled:
      ex.CloseAfter();
      co_await SendError(ex, OciError::kBlobUploadInvalid, st.message());
      co_return;
    case Code::kInvalidArgument:
      // A malformed request body (e.g. broken chunked encoding).
      ex.CloseAfter();
      co_await SendError(ex, OciError::kBlobUploadInvalid, st.message());
      co_return;
    default:
      ctx.log->error("registry failure op={} request_id={} err={}", what, ex.request_id(), st);
      // The detail (SQL, an OS error) is logged above; the client gets the request id.
      co_await SendError(ex, OciError::kInternal,
                         what + " failed: internal error (request id " + ex.request_id() + ")");
      co_return;
  }
}

std::string BlobLocation(const GatewayContext& ctx, const Exchange& ex, const std::string& name,
                         const Digest& digest) {
  return ctx.urls.Absolute(ex, "/v2/" + name + "/blobs/" + digest.ToString());
}

std::string UploadLocation(const GatewayContext& ctx, const Exchange& ex, const std::string& name,
                           const std::string& upload_id) {
  return ctx.urls.Absolute(ex, "/v2/" + name + "/blobs/uploads/" + upload_id);
}

std::string ManifestLocation(const GatewayContext& ctx, const Exchange& ex, const std::string& name,
                             const Digest& digest) {
  return ctx.urls.Absolute(ex, "/v2/" + name + "/manifests/" + digest.ToString());
}

std::string UploadRange(uint64_t offset) {
  return "0-" + std::to_string(offset == 0 ? 0 : offset - 1);
}

namespace {

awaitable<void> HandleBase(Exchange& ex) {
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) {
    ex.AddHeader("Allow", "GET, HEAD");
    co_await SendError(ex, OciError::kUnsupported);
    co_return;
  }
  (void)co_await ex.Respond(http::status::ok, "{}");
}

awaitable<void> SendNoRoute(Exchange& ex, Status st) {
  if (st.code() == Code::kInvalidArgument) {
    co_await SendError(ex, OciError::kNameInvalid, st.message());
    co_return;
  }
  // No OCI code names "no such endpoint"; NAME_UNKNOWN is what clients expect from a 404.
  co_await SendError(ex, OciError::kNameUnknown, "no such endpoint: " + st.message());
}

awaitable<void> SendProxyRefusal(Exchange& ex, std::string why) {
  static auto& refused = Metrics().Counter(
      "wharf_gateway_proxy_refused_total",
      "Writes refused because their repository is a pull-through cache's (--proxy).");
  refused.Inc();
  ex.AddHeader("Allow", "GET, HEAD");
  co_await SendError(ex, OciError::kUnsupported, std::move(why));
}

}  // namespace
}  // namespace registry

std::optional<std::string> ProxyRefusal(const GatewayOptions& options, const Route& route,
                                        http::verb method) {
  if (options.proxies.empty() || route.name.empty()) return std::nullopt;
  const bool upload = route.kind == RouteKind::kUploadStart || route.kind == RouteKind::kUpload;
  const bool read =
      method == http::verb::get || method == http::verb::head || method == http::verb::options;
  if (!upload && read) return std::nullopt;
  const upstream::ProxyUpstreamOptions* p = upstream::ProxiedBy(options.proxies, route.name);
  if (!p) return std::nullopt;
  return "repository " + route.name + " is a pull-through cache of --proxy " + p->name + " (" +
         p->urls.front() + "): pull only, pushes and deletes are refused";
}

awaitable<void> HandleRegistry(GatewayContext& ctx, Exchange& ex) {
  using namespace registry;  // NOLINT: the handlers of this file's own component
  ex.AddHeader("Docker-Distribution-API-Version", "registry/2.0");
  auto route = ParseRoute(ex.path());
  if (!route) {
    co_await SendNoRoute(ex, route.error());
    co_return;
  }
  if (auto why = ProxyRefusal(*ctx.options, *route, ex.method())) {
    co_await SendProxyRefusal(ex, std::move(*why));
    co_return;
  }
  switch (route->kind) {
    case RouteKind::kBase:
      co_await HandleBase(ex);
      break;
    case RouteKind::kCatalog:
      co_await HandleCatalog(ctx, ex);
      break;
    case RouteKind::kTagsList:
      co_await HandleTagsList(ctx, ex, std::move(*route));
      break;
    case RouteKind::kManifest:
      co_await HandleManifest(ctx, ex, std::move(*route));
      break;
    case RouteKind::kBlob:
      co_await HandleBlob(ctx, ex, std::move(*route));
      break;
    case RouteKind::kUploadStart:
      co_await HandleUploadStart(ctx, ex, std::move(*route));
      break;
    case RouteKind::kUpload:
      co_await HandleUpload(ctx, ex, std::move(*route));
      break;
    case RouteKind::kReferrers:
      co_await HandleReferrers(ctx, ex, std::move(*route));
      break;
  }
}

}  // namespace wharf

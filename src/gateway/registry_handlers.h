// The OCI Distribution API v1.1 (and the Docker Registry HTTP API v2 it grew from) on the
// gateway: every /v2 endpoint. The handlers parse and answer; content goes through BlobService
// (blob/blob_service.h: uploads, blobs, manifests, tags), the listings read the MetaStore, and
// blob bytes go out through ServeBlob (gateway/blob_serve.h).
//
// Handlers by endpoint group:
//   registry_handlers.cc   routing, /v2/, errors
//   registry_blobs.cc      GET/HEAD/DELETE /v2/<name>/blobs/<digest>
//   registry_uploads.cc    POST/PATCH/PUT/GET/DELETE /v2/<name>/blobs/uploads/...
//   registry_manifests.cc  PUT/GET/HEAD/DELETE /v2/<name>/manifests/<reference>
//   registry_lists.cc      tags/list, _catalog, referrers
#pragma once

#include <optional>
#include <string>

#include "common/asio.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "registry/route.h"

namespace wharf {

// Answers one request whose path starts with "/v2". Always responds (an OCI JSON error body
// for every failure; 4xx for bad input, 503 when the cluster or the store cannot serve now,
// 500 only for bugs). Runs on the gateway's executor; blocking store calls are offloaded.
awaitable<void> HandleRegistry(GatewayContext& ctx, Exchange& ex);

// Why `method` on `route` is refused because its repository is a pull-through cache's
// (GatewayOptions::proxies): every method but GET and HEAD on its manifests, blobs and uploads
// (pushes, mounts into it, deletes). nullopt: not refused. The gateway answers 405 UNSUPPORTED.
std::optional<std::string> ProxyRefusal(const GatewayOptions& options, const Route& route,
                                        http::verb method);

}  // namespace wharf

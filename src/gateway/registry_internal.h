// Shared by the registry handler files only (not a public interface).
#pragma once

#include <optional>
#include <string>

#include "common/async.h"
#include "common/digest.h"
#include "common/status.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "registry/errors.h"
#include "registry/route.h"

namespace wharf::registry {

// Sends the spec's JSON error body for `e` with the table's HTTP status (or `status_override`
// when non-zero). An empty `message` uses the table's default.
awaitable<void> SendError(Exchange& ex, OciError e, std::string message = std::string(),
                          nlohmann::json detail = nlohmann::json(), unsigned status_override = 0);

// Sends the error for a failed store/cluster call: kUnavailable/kNoSpace -> 503 UNAVAILABLE,
// kCancelled (the client went away) -> 400 BLOB_UPLOAD_INVALID, anything else -> 500 UNKNOWN
// (logged). Callers map the codes that mean bad input themselves before calling this.
awaitable<void> SendServerError(GatewayContext& ctx, Exchange& ex, Status st, std::string what);

// "Location" values: absolute URLs on the gateway's public base for this request
// (gateway/public_url.h), relative when it has none.
std::string BlobLocation(const GatewayContext& ctx, const Exchange& ex, const std::string& name,
                         const Digest& digest);
std::string UploadLocation(const GatewayContext& ctx, const Exchange& ex, const std::string& name,
                           const std::string& upload_id);
std::string ManifestLocation(const GatewayContext& ctx, const Exchange& ex, const std::string& name,
                             const Digest& digest);
// The value of an upload's Range header: "0-<offset-1>" ("0-0" when nothing was received,
// as distribution answers).
std::string UploadRange(uint64_t offset);

// Endpoint groups. Each answers every method of its route (405 UNSUPPORTED for others).
awaitable<void> HandleBlob(GatewayContext& ctx, Exchange& ex, Route route);
awaitable<void> HandleUploadStart(GatewayContext& ctx, Exchange& ex, Route route);
awaitable<void> HandleUpload(GatewayContext& ctx, Exchange& ex, Route route);
awaitable<void> HandleManifest(GatewayContext& ctx, Exchange& ex, Route route);
awaitable<void> HandleTagsList(GatewayContext& ctx, Exchange& ex, Route route);
awaitable<void> HandleCatalog(GatewayContext& ctx, Exchange& ex);
awaitable<void> HandleReferrers(GatewayContext& ctx, Exchange& ex, Route route);

}  // namespace wharf::registry

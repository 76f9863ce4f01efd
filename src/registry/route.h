// Which /v2 endpoint a request path names (OCI Distribution Specification v1.1, "Endpoints").
//
//   /v2/                                  kBase
//   /v2/_catalog                          kCatalog
//   /v2/<name>/tags/list                  kTagsList
//   /v2/<name>/manifests/<reference>      kManifest
//   /v2/<name>/blobs/<digest>             kBlob
//   /v2/<name>/blobs/uploads[/]           kUploadStart  (POST)
//   /v2/<name>/blobs/uploads/<upload_id>  kUpload       (GET, PATCH, PUT, DELETE)
//   /v2/<name>/referrers/<digest>         kReferrers
//
// A name may itself contain "/blobs/", "/manifests/", ... (e.g. "a/blobs/b" is a valid name),
// so a path is matched by its trailing segments and everything before them is the name.
// Names are not percent-decoded: the grammar has no '%', so an encoded name is invalid.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf {

enum class RouteKind {
  kBase,
  kCatalog,
  kTagsList,
  kManifest,
  kBlob,
  kUploadStart,
  kUpload,
  kReferrers,
};

struct Route {
  RouteKind kind = RouteKind::kBase;
  std::string name;       // the repository; empty for kBase and kCatalog
  std::string reference;  // tag or digest text (kManifest), digest text (kBlob, kReferrers);
                          // not validated here: handlers parse it and choose the error code
  std::string upload_id;  // kUpload only; not validated here (see ValidUploadId)
  friend bool operator==(const Route&, const Route&) = default;
};

// The same with views into the path (no allocation), for callers that only look.
struct RouteView {
  RouteKind kind = RouteKind::kBase;
  std::string_view name, reference, upload_id;
};

// Parses the path of a request target. Anything from the first '?' or '#' on is ignored.
// kNotFound: the path names no endpoint (the caller answers 404 with no OCI code, or
// NAME_UNKNOWN as it sees fit); kInvalidArgument: the path has the shape of an endpoint but
// its name fails ValidRepositoryName (the caller answers NAME_INVALID).
Result<Route> ParseRoute(std::string_view path);
Result<RouteView> ParseRouteView(std::string_view path);

// Upload session ids wharf issues: 32 to 128 lowercase hex digits.
bool ValidUploadId(std::string_view id);
// A fresh random upload id (32 hex digits, 128 bits from the OS).
std::string NewUploadId();

}  // namespace wharf

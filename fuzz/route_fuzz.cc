// ParseRoute over any request path (registry/route.h): every route it returns names exactly
// the path it was given, and its name is valid.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "registry/names.h"
#include "registry/route.h"

namespace {

using wharf::Code;
using wharf::Route;
using wharf::RouteKind;

// The paths that name `route` (an upload start may end in '/' or not).
std::vector<std::string> PathsOf(const Route& r) {
  const std::string base = "/v2/" + r.name;
  switch (r.kind) {
    case RouteKind::kBase:
      return {"/v2", "/v2/"};
    case RouteKind::kCatalog:
      return {"/v2/_catalog"};
    case RouteKind::kTagsList:
      return {base + "/tags/list"};
    case RouteKind::kManifest:
      return {base + "/manifests/" + r.reference};
    case RouteKind::kBlob:
      return {base + "/blobs/" + r.reference};
    case RouteKind::kUploadStart:
      return {base + "/blobs/uploads", base + "/blobs/uploads/"};
    case RouteKind::kUpload:
      return {base + "/blobs/uploads/" + r.upload_id};
    case RouteKind::kReferrers:
      return {base + "/referrers/" + r.reference};
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size);
  auto route = wharf::ParseRoute(in);
  if (!route) {
    FUZZ_CHECK(route.error().code() == Code::kNotFound ||
               route.error().code() == Code::kInvalidArgument);
  } else {
    std::string_view path = in.substr(0, in.find_first_of("?#"));
    bool named = route->kind != RouteKind::kBase && route->kind != RouteKind::kCatalog;
    FUZZ_CHECK(named == !route->name.empty());
    if (named) FUZZ_CHECK(wharf::ValidRepositoryName(route->name));
    FUZZ_CHECK(route->upload_id.empty() || route->kind == RouteKind::kUpload);
    FUZZ_CHECK(route->reference.find('/') == std::string::npos);
    FUZZ_CHECK(route->upload_id.find('/') == std::string::npos);
    bool matches = false;
    for (const std::string& p : PathsOf(*route)) matches = matches || p == path;
    FUZZ_CHECK(matches);
    // Deterministic, and the query string plays no part.
    auto again = wharf::ParseRoute(path);
    FUZZ_CHECK(again && *again == *route);
  }

  if (wharf::ValidUploadId(in)) {
    FUZZ_CHECK(in.size() >= 32 && in.size() <= 128);
    for (char c : in) FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  }
  return 0;
}

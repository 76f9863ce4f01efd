#include "registry/route.h"

#include <cstring>

#include "common/fs.h"
#include "registry/names.h"

namespace wharf {
namespace {

// A generous bound on what is worth splitting (a 255-character name plus a suffix).
constexpr size_t kMaxPathLength = 4096;

Result<RouteView> MakeRoute(RouteKind kind, std::string_view name, std::string_view ref) {
  if (!ValidRepositoryName(name)) return Err(InvalidArgument("invalid repository name"));
  RouteView route;
  route.kind = kind;
  route.name = name;
  (kind == RouteKind::kUpload ? route.upload_id : route.reference) = ref;
  return route;
}

}  // namespace

Result<RouteView> ParseRouteView(std::string_view path) {
  // Runs for every registry request (in the auth filter and the handler): two memchrs, three
  // memrchrs from the end and no allocation. (find_first_of("?#") costs a memchr per
  // character, and the path was once split into a vector of all its segments.)
  for (char end : {'?', '#'}) {
    const void* at = path.empty() ? nullptr : memchr(path.data(), end, path.size());
    if (at) path = path.substr(0, static_cast<const char*>(at) - path.data());
  }
  if (path == "/v2" || path == "/v2/") return RouteView{};
  if (path == "/v2/_catalog") return RouteView{RouteKind::kCatalog, {}, {}, {}};
  if (path.size() > kMaxPathLength) return Err(NotFound("path too long"));
  if (!path.starts_with("/v2/")) return Err(NotFound("not a /v2 path"));

  // rest = name "/" ... "/" prev "/" last; s1, s2, s3 are the last three slashes in it. The
  // name before prev is rest[0, s2); before the segment ahead of prev, rest[0, s3).
  std::string_view rest = path.substr(4);
  constexpr size_t npos = std::string_view::npos;
  auto slash_before = [&rest](size_t end) -> size_t {  // the last '/' in rest[0, end)
    const void* p = end == 0 || end == npos ? nullptr : memrchr(rest.data(), '/', end);
    return p ? static_cast<const char*>(p) - rest.data() : npos;
  };
  size_t s1 = slash_before(rest.size());
  size_t s2 = slash_before(s1);
  if (s2 == npos) return Err(NotFound("no such endpoint"));  // fewer than three segments
  size_t s3 = slash_before(s2);
  std::string_view last = rest.substr(s1 + 1), prev = rest.substr(s2 + 1, s1 - s2 - 1);
  std::string_view third = s3 == npos ? std::string_view() : rest.substr(s3 + 1, s2 - s3 - 1);

  if (prev == "tags" && last == "list") {
    return MakeRoute(RouteKind::kTagsList, rest.substr(0, s2), {});
  }
  if (prev == "blobs" && last == "uploads") {
    return MakeRoute(RouteKind::kUploadStart, rest.substr(0, s2), {});
  }
  if (s3 != npos && third == "blobs" && prev == "uploads") {
    RouteKind kind = last.empty() ? RouteKind::kUploadStart : RouteKind::kUpload;
    return MakeRoute(kind, rest.substr(0, s3), last);
  }
  if (last.empty()) return Err(NotFound("no such endpoint"));
  if (prev == "manifests") return MakeRoute(RouteKind::kManifest, rest.substr(0, s2), last);
  if (prev == "blobs") return MakeRoute(RouteKind::kBlob, rest.substr(0, s2), last);
  if (prev == "referrers") return MakeRoute(RouteKind::kReferrers, rest.substr(0, s2), last);
  return Err(NotFound("no such endpoint"));
}

Result<Route> ParseRoute(std::string_view path) {
  WHARF_ASSIGN_OR_RETURN(RouteView v, ParseRouteView(path));
  return Route{v.kind, std::string(v.name), std::string(v.reference), std::string(v.upload_id)};
}

bool ValidUploadId(std::string_view id) {
  if (id.size() < 32 || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NewUploadId() { return RandomHex(16); }

}  // namespace wharf

#include "registry/route.h"

#include <vector>

#include "common/fs.h"
#include "registry/names.h"

namespace wharf {
namespace {

// A generous bound on what is worth splitting (a 255-character name plus a suffix).
constexpr size_t kMaxPathLength = 4096;

std::vector<std::string_view> SplitSegments(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    size_t slash = s.find('/');
    out.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) return out;
    s.remove_prefix(slash + 1);
  }
}

// The name is segs[0, end) joined by '/', which is exactly the start of `rest`.
std::string_view NamePrefix(std::string_view rest, const std::vector<std::string_view>& segs,
                            size_t end) {
  if (end == 0) return {};
  const std::string_view& last = segs[end - 1];
  return rest.substr(0, static_cast<size_t>(last.data() + last.size() - rest.data()));
}

Result<Route> MakeRoute(RouteKind kind, std::string_view name, std::string_view ref) {
  if (!ValidRepositoryName(name)) return Err(InvalidArgument("invalid repository name"));
  Route route;
  route.kind = kind;
  route.name = std::string(name);
  if (kind == RouteKind::kUpload) {
    route.upload_id = std::string(ref);
  } else {
    route.reference = std::string(ref);
  }
  return route;
}

}  // namespace

Result<Route> ParseRoute(std::string_view path) {
  size_t query = path.find_first_of("?#");
  if (query != std::string_view::npos) path = path.substr(0, query);
  if (path == "/v2" || path == "/v2/") return Route{};
  if (path == "/v2/_catalog") {
    Route route;
    route.kind = RouteKind::kCatalog;
    return route;
  }
  if (path.size() > kMaxPathLength) return Err(NotFound("path too long"));
  if (!path.starts_with("/v2/")) return Err(NotFound("not a /v2 path"));

  std::string_view rest = path.substr(4);
  std::vector<std::string_view> segs = SplitSegments(rest);
  size_t n = segs.size();
  if (n < 3) return Err(NotFound("no such endpoint"));
  std::string_view last = segs[n - 1], prev = segs[n - 2];

  if (prev == "tags" && last == "list") {
    return MakeRoute(RouteKind::kTagsList, NamePrefix(rest, segs, n - 2), {});
  }
  if (prev == "blobs" && last == "uploads") {
    return MakeRoute(RouteKind::kUploadStart, NamePrefix(rest, segs, n - 2), {});
  }
  if (n >= 4 && segs[n - 3] == "blobs" && prev == "uploads") {
    RouteKind kind = last.empty() ? RouteKind::kUploadStart : RouteKind::kUpload;
    return MakeRoute(kind, NamePrefix(rest, segs, n - 3), last);
  }
  if (last.empty()) return Err(NotFound("no such endpoint"));
  if (prev == "manifests") {
    return MakeRoute(RouteKind::kManifest, NamePrefix(rest, segs, n - 2), last);
  }
  if (prev == "blobs") return MakeRoute(RouteKind::kBlob, NamePrefix(rest, segs, n - 2), last);
  if (prev == "referrers") {
    return MakeRoute(RouteKind::kReferrers, NamePrefix(rest, segs, n - 2), last);
  }
  return Err(NotFound("no such endpoint"));
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

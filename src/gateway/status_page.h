// The operator's status page, GET /ui/: one server-rendered HTML page, read-only, with inline
// CSS and no outside assets (no scripts, fonts or images), so that it works offline and behind
// any proxy. Its sections:
//
//   Cluster       every group of the cached cluster map, writable or not; each member with its
//                 state, address, chunk count and a capacity bar (used / capacity)
//   Stored        what the metadata store holds (StoredTotals), as last counted by the
//                 gateway's stats loop
//   Repositories  one bounded page of repositories the caller may pull, each with its first
//                 tags and their sizes; "and N more" past the page, and a link to the next one
//   Garbage       the garbage collector's last round (what it freed), when one ran
//
// Sections are rendered from StatusPageData by RenderStatusPage (pure: no I/O, tested with
// hostile names); HandleStatusPage gathers the data (MetaStore calls offloaded) and answers.
// Every name from outside (repositories, tags, ids, addresses, the caller) is HTML-escaped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "gateway/garbage_collector.h"
#include "http/server.h"
#include "master/cluster_map.h"
#include "meta/meta_store.h"

namespace wharf {

struct GatewayContext;

// Repositories on one page, tags shown per repository, and how far past a page the "and N
// more" counts go (a bounded read: beyond it the page says "and more than N").
inline constexpr size_t kStatusPageRepos = 25;
inline constexpr size_t kStatusPageTags = 10;
inline constexpr size_t kStatusPageCountLimit = 1000;

struct StatusPageTag {
  std::string name;
  std::string digest;  // "" when the tag vanished between listing and reading
  // config + layers + the manifest itself for an image; the children's manifests for an index.
  std::optional<uint64_t> size;
  bool index = false;
};

struct StatusPageRepo {
  std::string name;
  std::vector<StatusPageTag> tags;  // at most kStatusPageTags
  uint64_t more_tags = 0;           // tags after the shown ones (counted up to the limit)
  bool more_tags_capped = false;    // more than more_tags
};

// The last round of the garbage collector, as the gateway saw it end.
struct StatusPageGc {
  GcReport report;
  int64_t finished_unix = 0;
  uint64_t rounds = 0;
};

struct StatusPageData {
  std::string version;
  int64_t now_unix = 0;
  std::string caller;  // "" anonymous (or an open gateway)
  std::optional<ClusterMap> cluster;
  std::optional<StoredTotals> totals;
  int64_t totals_unix = 0;
  std::vector<StatusPageRepo> repos;  // at most kStatusPageRepos
  bool first_page = true;             // no `last` was given
  uint64_t more_repos = 0;            // visible repositories after this page (up to the limit)
  bool more_repos_capped = false;
  std::string repos_error;  // the store could not list (the rest of the page still renders)
  std::optional<StatusPageGc> gc;
};

// &, <, >, " and ' as entities; bytes that are not valid UTF-8 and control characters (other
// than tab and newline) as U+FFFD, so that no name can open a tag, an attribute or a comment.
std::string HtmlEscape(std::string_view text);

// The whole page (text/html; charset=utf-8).
std::string RenderStatusPage(const StatusPageData& data);

// The page's query: `last` (the repository after which the page starts) must be a valid
// repository name; anything else is kInvalidArgument. nullopt when absent.
Result<std::optional<std::string>> ParseStatusPageLast(std::optional<std::string> last);

// GET/HEAD /ui/ (and /ui, redirected). Other paths under /ui: 404; other methods: 405 with Allow.
awaitable<void> HandleStatusPage(GatewayContext& ctx, Exchange& ex);

}  // namespace wharf

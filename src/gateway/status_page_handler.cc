// HandleStatusPage: gathers the status page's data (cluster map from the cache, totals and the
// GC's last round from GatewayStats, repositories and tags from the MetaStore off the event
// loop) and answers with RenderStatusPage.
#include <fmt/format.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "common/async.h"
#include "common/version.h"
#include "gateway/gateway.h"
#include "gateway/status_page.h"

namespace wharf {
namespace {

using MayList = std::function<bool(const std::string&)>;

// The bytes an image pulls (config, layers and the manifest itself), or for an index the sum
// of its children's manifests. nullopt for content that is not a manifest we can read.
std::optional<uint64_t> ManifestSize(const std::string& content, bool* index) {
  nlohmann::json j = nlohmann::json::parse(content, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto size_of = [](const nlohmann::json& d) -> uint64_t {
    if (!d.is_object()) return 0;
    auto it = d.find("size");
    return it != d.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
  };
  uint64_t total = 0;
  if (auto it = j.find("manifests"); it != j.end() && it->is_array()) {
    *index = true;
    for (const auto& d : *it) total += size_of(d);
    return total;
  }
  total = content.size();
  if (auto it = j.find("config"); it != j.end()) total += size_of(*it);
  if (auto it = j.find("layers"); it != j.end() && it->is_array()) {
    for (const auto& d : *it) total += size_of(d);
  }
  return total;
}

// Up to `n` repositories after `last` that `may_list` admits (all when it is empty); `more`
// when the store holds further ones (admitted or not: the caller counts those).
Result<Page> VisibleRepositories(MetaStore* meta, std::string last, size_t n,
                                 const MayList& may_list) {
  Page out;
  while (out.items.size() < n) {
    WHARF_ASSIGN_OR_RETURN(Page page, meta->ListRepositories(last, n));
    for (size_t i = 0; i < page.items.size(); ++i) {
      if (may_list && !may_list(page.items[i])) continue;
      out.items.push_back(page.items[i]);
      if (out.items.size() == n) {
        out.more = i + 1 < page.items.size() || page.more;
        return out;
      }
    }
    if (!page.more || page.items.empty()) return out;
    last = page.items.back();
  }
  return out;
}

Result<StatusPageRepo> ReadRepo(MetaStore* meta, const std::string& name) {
  StatusPageRepo repo;
  repo.name = name;
  WHARF_ASSIGN_OR_RETURN(Page tags, meta->ListTags(name, "", kStatusPageTags));
  for (const std::string& tag : tags.items) {
    StatusPageTag t;
    t.name = tag;
    Result<Digest> digest = meta->ResolveTag(name, tag);
    if (digest) {
      t.digest = digest->ToString();
      Result<ManifestRecord> m = meta->GetManifest(name, *digest);
      if (m) t.size = ManifestSize(m->content, &t.index);
    } else if (digest.error().code() != Code::kNotFound) {
      return Err(digest.error());
    }
    repo.tags.push_back(std::move(t));
  }
  if (tags.more && !tags.items.empty()) {
    WHARF_ASSIGN_OR_RETURN(Page rest,
                           meta->ListTags(name, tags.items.back(), kStatusPageCountLimit));
    repo.more_tags = rest.items.size();
    repo.more_tags_capped = rest.more;
  }
  return repo;
}

// Fills the repository section of `d` (blocking: runs on the pool).
Status ReadRepos(MetaStore* meta, const std::optional<std::string>& last, const MayList& may_list,
                 StatusPageData& d) {
  WHARF_ASSIGN_OR_RETURN(Page page,
                         VisibleRepositories(meta, last.value_or(""), kStatusPageRepos, may_list));
  for (const std::string& name : page.items) {
    WHARF_ASSIGN_OR_RETURN(StatusPageRepo repo, ReadRepo(meta, name));
    d.repos.push_back(std::move(repo));
  }
  if (page.more && !page.items.empty()) {
    // Counted over a bounded read of the store's names, so that a huge catalog costs no more.
    WHARF_ASSIGN_OR_RETURN(Page rest,
                           meta->ListRepositories(page.items.back(), kStatusPageCountLimit));
    for (const std::string& name : rest.items) {
      if (!may_list || may_list(name)) ++d.more_repos;
    }
    d.more_repos_capped = rest.more;
  }
  return Status::Ok();
}

awaitable<void> RespondText(Exchange& ex, http::status status, std::string text) {
  (void)co_await ex.Respond(status, std::move(text) + "\n", "text/plain; charset=utf-8");
}

}  // namespace

awaitable<void> HandleStatusPage(GatewayContext& ctx, Exchange& ex) {
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) {
    ex.AddHeader("Allow", "GET, HEAD");
    co_await RespondText(ex, http::status::method_not_allowed, "the status page is read-only");
    co_return;
  }
  if (ex.path() == "/ui") {
    ex.AddHeader("Location", ctx.urls.Absolute(ex, "/ui/"));
    co_await RespondText(ex, http::status::moved_permanently, "see /ui/");
    co_return;
  }
  if (ex.path() != "/ui/") {
    co_await RespondText(ex, http::status::not_found, "no such page");
    co_return;
  }
  Result<std::optional<std::string>> last = ParseStatusPageLast(ex.query("last"));
  if (!last) {
    co_await RespondText(ex, http::status::bad_request, last.error().message());
    co_return;
  }
  // With access control, only the repositories the caller may pull (the auth filter
  // identified it), as the catalog.
  MayList may_list;
  StatusPageData d;
  if (ctx.auth) {
    std::shared_ptr<const auth::Caller> caller = ctx.auth->CallerOf(ex);
    if (!caller) caller = std::make_shared<const auth::Caller>();
    d.caller = caller->principal.name;
    const auth::Authenticator* authn = &ctx.auth->authenticator();
    may_list = [authn, caller](const std::string& repo) { return authn->MayList(*caller, repo); };
  }
  d.version = std::string(WharfVersion());
  d.now_unix = ctx.options->now_unix ? ctx.options->now_unix() : SystemNowUnix();
  d.cluster = ctx.cluster->map();
  if (ctx.stats) {
    if (auto t = ctx.stats->totals()) {
      d.totals = t->totals;
      d.totals_unix = t->counted_unix;
    }
    if (auto gc = ctx.stats->gc()) d.gc = StatusPageGc{gc->report, gc->finished_unix, gc->rounds};
  }
  d.first_page = !last->has_value();
  MetaStore* meta = ctx.meta;
  auto read = [meta, &last, &may_list, &d] { return ReadRepos(meta, *last, may_list, d); };
  Status st = co_await Offload(read);
  if (!st.ok()) {
    ctx.log->warn("status page: listing repositories failed request_id={} err={}", ex.request_id(),
                  st);
    d.repos.clear();
    d.repos_error = st.code() == Code::kUnavailable
                        ? "The metadata store is unavailable now; retry later."
                        : "The repositories could not be listed (see the gateway's log).";
  }
  ex.AddHeader("Cache-Control", "no-store");
  ex.AddHeader("X-Content-Type-Options", "nosniff");
  // No scripts, no outside resources: the page needs none, so none may run.
  ex.AddHeader("Content-Security-Policy",
               "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action "
               "'none'; frame-ancestors 'none'");
  (void)co_await ex.Respond(http::status::ok, RenderStatusPage(d), "text/html; charset=utf-8");
}

}  // namespace wharf

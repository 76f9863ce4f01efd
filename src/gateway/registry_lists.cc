// Listings: GET /v2/<name>/tags/list, GET /v2/_catalog (both with n/last pagination and a
// Link header to the next page), GET /v2/<name>/referrers/<digest> (with artifactType).
#include <charconv>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "gateway/registry_internal.h"
#include "registry/manifest.h"

namespace wharf::registry {
namespace {

// Largest page served, whatever `n` asks (the spec lets a registry return fewer; the Link
// header then leads to the rest).
constexpr size_t kMaxPageSize = 1000;

struct PageRequest {
  size_t n = kMaxPageSize;
  bool n_given = false;
  std::string last;
};

// n and last. nullopt (after sending 400) for an n that is not a non-negative integer.
awaitable<std::optional<PageRequest>> ParsePageRequest(Exchange& ex) {
  PageRequest req;
  if (std::optional<std::string> n = ex.query("n")) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(n->data(), n->data() + n->size(), v);
    if (n->empty() || ec == std::errc::result_out_of_range) {
      v = kMaxPageSize;  // a huge n asks for everything: serve the largest page
      ec = n->empty() ? std::errc::invalid_argument : std::errc();
      end = n->data() + n->size();
    }
    if (ec != std::errc() || end != n->data() + n->size()) {
      // distribution's code for this case; the spec defines none.
      nlohmann::json body;
      body["errors"] = nlohmann::json::array();
      nlohmann::json e;
      e["code"] = "PAGINATION_NUMBER_INVALID";
      e["message"] = "invalid number of results requested";
      body["errors"].push_back(e);
      (void)co_await ex.Respond(http::status::bad_request, body.dump());
      co_return std::nullopt;
    }
    req.n = std::min<uint64_t>(v, kMaxPageSize);
    req.n_given = true;
  }
  if (std::optional<std::string> last = ex.query("last")) req.last = std::move(*last);
  co_return req;
}

// Adds `Link: <base?n=N&last=X>; rel="next"` when the page is not the last one.
void AddNextLink(Exchange& ex, const std::string& base, const PageRequest& req, const Page& page) {
  if (!page.more || page.items.empty()) return;
  std::string link = "<" + base + "?n=" + std::to_string(req.n) +
                     "&last=" + PercentEncode(page.items.back()) + ">; rel=\"next\"";
  ex.AddHeader("Link", link);
}

// A page of the repositories `may_list` admits, after `last`, of at most n names: pages of
// the store are read until n names are admitted or the store has no more.
Result<Page> ListVisibleRepositories(MetaStore* meta, const std::string& last, size_t n,
                                     const std::function<bool(const std::string&)>& may_list) {
  Page out;
  std::string cursor = last;
  while (out.items.size() < n) {
    WHARF_ASSIGN_OR_RETURN(Page page, meta->ListRepositories(cursor, n));
    for (size_t i = 0; i < page.items.size(); ++i) {
      if (!may_list(page.items[i])) continue;
      out.items.push_back(page.items[i]);
      if (out.items.size() == n) {
        out.more = i + 1 < page.items.size() || page.more;
        return out;
      }
    }
    if (!page.more || page.items.empty()) return out;
    cursor = page.items.back();
  }
  return out;
}

awaitable<bool> RequireGet(Exchange& ex) {
  if (ex.method() == http::verb::get || ex.method() == http::verb::head) co_return true;
  ex.AddHeader("Allow", "GET, HEAD");
  co_await SendError(ex, OciError::kUnsupported);
  co_return false;
}

}  // namespace

awaitable<void> HandleTagsList(GatewayContext& ctx, Exchange& ex, Route route) {
  if (!co_await RequireGet(ex)) co_return;
  std::optional<PageRequest> req = co_await ParsePageRequest(ex);
  if (!req) co_return;
  auto list = [&ctx, &route, &req]() -> Result<std::optional<Page>> {
    WHARF_ASSIGN_OR_RETURN(bool exists, ctx.meta->RepositoryExists(route.name));
    if (!exists) return std::optional<Page>();
    if (req->n == 0) return std::optional<Page>(Page{});
    WHARF_ASSIGN_OR_RETURN(Page page, ctx.meta->ListTags(route.name, req->last, req->n));
    return std::optional<Page>(std::move(page));
  };
  Result<std::optional<Page>> page = co_await Offload(list);
  if (!page) {
    co_await SendServerError(ctx, ex, page.error(), "list tags");
    co_return;
  }
  if (!*page) {
    co_await SendError(ex, OciError::kNameUnknown, "repository unknown: " + route.name);
    co_return;
  }
  nlohmann::json body = nlohmann::json::object();
  body["name"] = route.name;
  body["tags"] = (*page)->items;
  AddNextLink(ex, "/v2/" + route.name + "/tags/list", *req, **page);
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

awaitable<void> HandleCatalog(GatewayContext& ctx, Exchange& ex) {
  if (!co_await RequireGet(ex)) co_return;
  std::optional<PageRequest> req = co_await ParsePageRequest(ex);
  if (!req) co_return;
  // With access control, only the repositories the caller may pull (the auth filter
  // identified it).
  std::function<bool(const std::string&)> may_list;
  if (ctx.auth) {
    std::shared_ptr<const auth::Caller> caller = ctx.auth->CallerOf(ex);
    if (!caller) caller = std::make_shared<const auth::Caller>();
    const auth::Authenticator* authn = &ctx.auth->authenticator();
    may_list = [authn, caller](const std::string& repo) { return authn->MayList(*caller, repo); };
  }
  auto list = [&ctx, &req, &may_list]() -> Result<Page> {
    if (req->n == 0) return Page{};
    if (may_list) return ListVisibleRepositories(ctx.meta, req->last, req->n, may_list);
    return ctx.meta->ListRepositories(req->last, req->n);
  };
  Result<Page> page = co_await Offload(list);
  if (!page) {
    co_await SendServerError(ctx, ex, page.error(), "list repositories");
    co_return;
  }
  nlohmann::json body = nlohmann::json::object();
  body["repositories"] = page->items;
  AddNextLink(ex, "/v2/_catalog", *req, *page);
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

awaitable<void> HandleReferrers(GatewayContext& ctx, Exchange& ex, Route route) {
  if (!co_await RequireGet(ex)) co_return;
  Result<Digest> subject = Digest::Parse(route.reference);
  if (!subject) {
    co_await SendError(ex, OciError::kDigestInvalid, subject.error().message());
    co_return;
  }
  auto list = [&ctx, &route, &subject] { return ctx.meta->ListReferrers(route.name, *subject); };
  Result<std::vector<ReferrerRecord>> records = co_await Offload(list);
  if (!records) {
    co_await SendServerError(ctx, ex, records.error(), "list referrers");
    co_return;
  }
  std::optional<std::string> filter = ex.query("artifactType");
  std::vector<Descriptor> descs;
  for (ReferrerRecord& r : *records) {
    if (filter && r.artifact_type != *filter) continue;
    Descriptor d;
    d.media_type = std::move(r.media_type);
    d.digest = std::move(r.digest);
    d.size = static_cast<int64_t>(r.size);
    d.artifact_type = std::move(r.artifact_type);
    if (Result<Annotations> a = ParseAnnotations(r.annotations_json)) d.annotations = std::move(*a);
    descs.push_back(std::move(d));
  }
  if (filter) ex.AddHeader("OCI-Filters-Applied", "artifactType");
  (void)co_await ex.Respond(http::status::ok, MakeReferrersIndex(descs), kOciIndexMediaType);
}

}  // namespace wharf::registry

// Gateway: GET /admin/queue, the site's write queue (`--site-write async`, upstream/site_queue.h),
// behind the "admin" action of the access policy like every /admin view.
//
//   GET /admin/queue[?state=pending|running|done|failed][&n=N][&last=ID]
//     {"mode": "sync" | "async", "target": "http://centre:5000",
//      "pending": N, "running": N, "failed": N, "done": N, "oldest_unix": N (0: none),
//      "items": [{"id": N, "kind": "blob"|"manifest"|"tag", "repository": "...",
//                 "digest": "sha256:..." | "", "tag": "..." | "", "state": "...",
//                 "attempts": N, "next_attempt_unix": N, "last_error": "...",
//                 "created_unix": N, "updated_unix": N, "holder": "..."}, ...],
//      "next_last": ID | null}
//
// Items of this gateway's target in id order, after `last`, at most n (default and cap 1000);
// next_last: pass it as `last` for the next page (null at the end). Without site mode: 404.
// 400 for a bad state, n or last.
//
// GET /admin/replication[?target=URL][&state=...][&n=N][&last=ID]: the same for the queue of
// each push target of the --replicate rules (only `target`'s with it: page through one with
// last), and the state of each pull rule:
//     {"targets": [{"url": "https://dr:5000", "pending": N, ..., "items": [...],
//                   "next_last": ID | null}, ...],
//      "pull_rules": [{"rule": "...", "source": "...", "last_run_unix": N, "last_ok_unix": N,
//                      "copied": N, "last_error": "..."}, ...]}
// Without --replicate: 404; a target no rule has: 404.
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/async.h"
#include "gateway/gateway.h"
#include "http/status_http.h"
#include "upstream/replication.h"
#include "upstream/site_queue.h"

namespace wharf {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxQueuePage = 1000;

std::optional<int64_t> ParseId(const std::string& s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

json ItemJson(const QueueItem& it) {
  return {{"id", it.id},
          {"kind", QueueKindName(it.key.kind)},
          {"repository", it.key.repo},
          {"digest", it.key.digest},
          {"tag", it.key.tag},
          {"state", QueueStateName(it.state)},
          {"attempts", it.attempts},
          {"next_attempt_unix", it.next_attempt_unix},
          {"last_error", it.last_error},
          {"created_unix", it.created_unix},
          {"updated_unix", it.updated_unix},
          {"holder", it.holder}};
}

// The state, n and last parameters of a queue listing. kInvalidArgument.
struct QueuePage {
  std::optional<QueueState> state;
  size_t n = kMaxQueuePage;
  int64_t last = 0;
};

Result<QueuePage> ParsePage(const Exchange& ex) {
  QueuePage page;
  if (std::optional<std::string> s = ex.query("state")) {
    for (QueueState st :
         {QueueState::kPending, QueueState::kRunning, QueueState::kDone, QueueState::kFailed}) {
      if (*s == QueueStateName(st)) page.state = st;
    }
    if (!page.state) return Err(InvalidArgument("state: want pending, running, done or failed"));
  }
  if (std::optional<std::string> s = ex.query("n")) {
    std::optional<int64_t> v = ParseId(*s);
    if (!v) return Err(InvalidArgument("n: want a non-negative number"));
    page.n = std::min<size_t>(static_cast<size_t>(*v), kMaxQueuePage);
  }
  if (std::optional<std::string> s = ex.query("last")) {
    std::optional<int64_t> v = ParseId(*s);
    if (!v) return Err(InvalidArgument("last: want an item id"));
    page.last = *v;
  }
  return page;
}

// The counts and one page of items of queue `target`: {"pending", ..., "items", "next_last"}.
// nullopt: the store did not answer (logged).
awaitable<std::optional<json>> QueueJson(MetaStore* meta, std::string target, QueuePage page,
                                         GatewayContext& ctx, std::string request_id) {
  auto stats = [meta, &target] { return meta->GetQueueStats(target); };
  Result<QueueStats> counts = co_await Offload(stats);
  const size_t n = page.n;
  auto list = [meta, &target, &page, n] {
    return n == 0 ? Result<std::vector<QueueItem>>(std::vector<QueueItem>{})
                  : meta->ListQueueItems(target, page.state, page.last, n);
  };
  Result<std::vector<QueueItem>> items = co_await Offload(list);
  if (!counts || !items) {
    const Status& err = !counts ? counts.error() : items.error();
    ctx.log->warn("admin: reading the queue failed target={} request_id={} err={}", target,
                  request_id, err);
    co_return std::nullopt;
  }
  json body;
  body["pending"] = counts->pending;
  body["running"] = counts->running;
  body["failed"] = counts->failed;
  body["done"] = counts->done;
  body["oldest_unix"] = counts->oldest_unix;
  body["items"] = json::array();
  for (const QueueItem& it : *items) body["items"].push_back(ItemJson(it));
  body["next_last"] = items->size() == n && n > 0 ? json(items->back().id) : json(nullptr);
  co_return body;
}

}  // namespace

awaitable<void> Gateway::HandleAdminQueue(Exchange& ex) {
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) {
    ex.AddHeader("Allow", "GET, HEAD");
    co_await RespondError(ex, Status(Code::kUnsupported, "GET only"));
    co_return;
  }
  if (!site_) {
    co_await RespondError(ex, NotFound("not a site: no --site-upstream, no write queue"));
    co_return;
  }
  Result<QueuePage> page = ParsePage(ex);
  if (!page) {
    co_await RespondError(ex, page.error());
    co_return;
  }
  std::optional<json> q =
      co_await QueueJson(meta_.get(), options_.site_upstream, *page, ctx_, ex.request_id());
  if (!q) {
    co_await RespondError(ex, Unavailable("the metadata store did not answer"));
    co_return;
  }
  json body = std::move(*q);
  body["mode"] = options_.site_write_async ? "async" : "sync";
  body["target"] = options_.site_upstream;
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

awaitable<void> Gateway::HandleAdminReplication(Exchange& ex) {
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) {
    ex.AddHeader("Allow", "GET, HEAD");
    co_await RespondError(ex, Status(Code::kUnsupported, "GET only"));
    co_return;
  }
  if (!replicator_) {
    co_await RespondError(ex, NotFound("no --replicate rules: no replication jobs"));
    co_return;
  }
  Result<QueuePage> page = ParsePage(ex);
  if (!page) {
    co_await RespondError(ex, page.error());
    co_return;
  }
  std::optional<std::string> only = ex.query("target");
  json body;
  body["targets"] = json::array();
  bool found = !only;
  for (const auto& [queue, url] : replicator_->PushTargets()) {
    if (only && *only != url) continue;
    found = true;
    std::optional<json> q = co_await QueueJson(meta_.get(), queue, *page, ctx_, ex.request_id());
    if (!q) {
      co_await RespondError(ex, Unavailable("the metadata store did not answer"));
      co_return;
    }
    (*q)["url"] = url;
    body["targets"].push_back(std::move(*q));
  }
  if (!found) {
    co_await RespondError(ex, NotFound("target: no push rule has the target " + *only));
    co_return;
  }
  body["pull_rules"] = json::array();
  for (const upstream::Replicator::PullState& p : replicator_->PullStates()) {
    body["pull_rules"].push_back({{"rule", p.rule},
                                  {"source", p.source},
                                  {"last_run_unix", p.last_run_unix},
                                  {"last_ok_unix", p.last_ok_unix},
                                  {"copied", p.copied},
                                  {"last_error", p.last_error}});
  }
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

}  // namespace wharf

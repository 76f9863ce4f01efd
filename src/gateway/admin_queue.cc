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
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/async.h"
#include "gateway/gateway.h"
#include "http/status_http.h"
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
  std::optional<QueueState> state;
  if (std::optional<std::string> s = ex.query("state")) {
    for (QueueState st :
         {QueueState::kPending, QueueState::kRunning, QueueState::kDone, QueueState::kFailed}) {
      if (*s == QueueStateName(st)) state = st;
    }
    if (!state) {
      co_await RespondError(ex, InvalidArgument("state: want pending, running, done or failed"));
      co_return;
    }
  }
  size_t n = kMaxQueuePage;
  if (std::optional<std::string> s = ex.query("n")) {
    std::optional<int64_t> v = ParseId(*s);
    if (!v) {
      co_await RespondError(ex, InvalidArgument("n: want a non-negative number"));
      co_return;
    }
    n = std::min<size_t>(static_cast<size_t>(*v), kMaxQueuePage);
  }
  int64_t last = 0;
  if (std::optional<std::string> s = ex.query("last")) {
    std::optional<int64_t> v = ParseId(*s);
    if (!v) {
      co_await RespondError(ex, InvalidArgument("last: want an item id"));
      co_return;
    }
    last = *v;
  }
  MetaStore* meta = meta_.get();
  const std::string target = options_.site_upstream;
  auto stats = [meta, &target] { return meta->GetQueueStats(target); };
  Result<QueueStats> counts = co_await Offload(stats);
  auto list = [meta, &target, state, last, n] {
    return n == 0 ? Result<std::vector<QueueItem>>(std::vector<QueueItem>{})
                  : meta->ListQueueItems(target, state, last, n);
  };
  Result<std::vector<QueueItem>> items = co_await Offload(list);
  if (!counts || !items) {
    const Status& err = !counts ? counts.error() : items.error();
    ctx_.log->warn("admin queue: reading the queue failed request_id={} err={}", ex.request_id(),
                   err);
    co_await RespondError(ex, Unavailable("the metadata store did not answer"));
    co_return;
  }
  json body;
  body["mode"] = options_.site_write_async ? "async" : "sync";
  body["target"] = target;
  body["pending"] = counts->pending;
  body["running"] = counts->running;
  body["failed"] = counts->failed;
  body["done"] = counts->done;
  body["oldest_unix"] = counts->oldest_unix;
  body["items"] = json::array();
  for (const QueueItem& it : *items) body["items"].push_back(ItemJson(it));
  body["next_last"] = items->size() == n && n > 0 ? json(items->back().id) : json(nullptr);
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

}  // namespace wharf

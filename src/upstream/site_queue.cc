#include "upstream/site_queue.h"

#include <algorithm>

#include "common/async.h"
#include "common/metrics.h"
#include "upstream/site_cache.h"

namespace wharf::upstream {
namespace {

constexpr int kMaxIndexDepth = 4;  // an index of indexes of ... (OCI allows nesting)

// The queue's metrics: named after its SiteQueueOptions::metrics, with its labels.
Labels With(const SiteQueueOptions& o, Labels more = {}) {
  Labels l = o.labels;
  l.insert(l.end(), more.begin(), more.end());
  return l;
}
CounterMetric& Shipped(const SiteQueueOptions& o, QueueKind kind, std::string_view outcome) {
  return Metrics().Counter(
      o.metrics + "_shipped_total",
      "Items of the " + o.what +
          " queue completed (outcome gone: the content was no longer "
          "stored here, nothing to ship).",
      With(o, {{"kind", std::string(QueueKindName(kind))}, {"outcome", std::string(outcome)}}));
}
CounterMetric& Failures(const SiteQueueOptions& o, QueueKind kind) {
  return Metrics().Counter(o.metrics + "_failures_total",
                           "Attempts to ship an item of the " + o.what + " queue that failed.",
                           With(o, {{"kind", std::string(QueueKindName(kind))}}));
}
CounterMetric& Enqueued(const SiteQueueOptions& o, QueueKind kind) {
  return Metrics().Counter(o.metrics + "_enqueued_total",
                           "Pushes queued for shipping by the " + o.what + " queue.",
                           With(o, {{"kind", std::string(QueueKindName(kind))}}));
}
CounterMetric& BytesShipped(const SiteQueueOptions& o) {
  return Metrics().Counter(o.metrics + "_bytes_total",
                           "Blob bytes the " + o.what +
                               " queue sent (blobs the target had "
                               "already are not sent, and not counted).",
                           With(o));
}
GaugeMetric& Depth(const SiteQueueOptions& o) {
  return Metrics().Gauge(o.metrics + "_depth",
                         "Items of the " + o.what + " queue not shipped yet (pending or running).",
                         With(o));
}
GaugeMetric& Oldest(const SiteQueueOptions& o) {
  return Metrics().Gauge(o.metrics + "_oldest_seconds",
                         "Age of the oldest item of the " + o.what + " queue not shipped yet.",
                         With(o));
}
GaugeMetric& GivenUp(const SiteQueueOptions& o) {
  return Metrics().Gauge(o.metrics + "_failed",
                         "Items of the " + o.what + " queue given up after their retries (GET " +
                             o.admin_path + " lists them; pushing the content again revives them).",
                         With(o));
}

std::string RefOf(const QueueItem& it) {
  return !it.key.tag.empty() ? it.key.repo + ":" + it.key.tag : it.key.repo + "@" + it.key.digest;
}

}  // namespace

struct SiteQueue::Flight {
  explicit Flight(asio::any_io_executor ex) : done(ex) {
    done.expires_at(std::chrono::steady_clock::time_point::max());
  }
  asio::steady_timer done;  // cancelled when the push ends
  bool finished = false;
};

SiteQueue::SiteQueue(asio::any_io_executor ex, SiteQueueOptions options, MetaStore* meta,
                     SiteCache* site, Logger log)
    : ex_(std::move(ex)), options_(std::move(options)), meta_(meta), site_(site), log_(log) {
  options_.workers = std::max(options_.workers, 1);
  idle_.assign(static_cast<size_t>(options_.workers), nullptr);
}

int64_t SiteQueue::NowUnix() const {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

Result<uint64_t> SiteQueue::Recover() {
  auto& recovered =
      Metrics().Counter(options_.metrics + "_recovered_total",
                        "Items of the " + options_.what +
                            " queue this gateway found left running by its previous run "
                            "(killed while shipping) and made pending again at start.",
                        With(options_));
  Result<uint64_t> n = meta_->RecoverQueueItems(options_.holder);
  if (n) recovered.Inc(*n);
  if (n && *n > 0) {
    log_->info("{}: took back items left running by a previous run holder={} items={}",
               options_.log_prefix, options_.holder, *n);
  }
  return n;
}

void SiteQueue::Start() {
  for (size_t i = 0; i < idle_.size(); ++i) asio::co_spawn(ex_, Worker(i), asio::detached);
  asio::co_spawn(ex_, Housekeeping(), asio::detached);
  log_->info("{} started target={} holder={} workers={}", options_.log_prefix, options_.target,
             options_.holder, options_.workers);
}

void SiteQueue::Stop() {
  stopped_ = true;
  Wake();
}

void SiteQueue::Wake() {
  for (asio::steady_timer* t : idle_) {
    if (t) t->cancel();
  }
}

awaitable<Status> SiteQueue::Enqueue(QueueKey key) {
  MetaStore* meta = meta_;
  auto put = [meta, &key] { return meta->EnqueueItem(key); };
  Result<QueueItem> item = co_await Offload(put);
  if (!item) {
    log_->warn("{}: enqueue failed kind={} repo={} ref={} err={}", options_.log_prefix,
               QueueKindName(key.kind), key.repo, key.digest + key.tag, item.error());
    if (key.kind == QueueKind::kDelete) {
      co_return Status(item.error().code(),
                       "deleted here, but queueing the deletion for " + options_.what +
                           " failed (delete it there by hand): " + item.error().message());
    }
    co_return Status(item.error().code(), "stored here, but queueing it for " + options_.what +
                                              " failed (push again): " + item.error().message());
  }
  Enqueued(options_, key.kind).Inc();
  Wake();
  co_return Status::Ok();
}

awaitable<Status> SiteQueue::EnqueueBlob(std::string repo, Digest digest) {
  // Named, not a temporary in the co_await: GCC 12 destroys such temporaries twice.
  QueueKey key{QueueKind::kBlob, options_.target, std::move(repo), digest.ToString(), ""};
  Status st = co_await Enqueue(std::move(key));
  co_return st;
}

awaitable<Status> SiteQueue::EnqueueManifest(std::string repo, std::optional<std::string> tag,
                                             ManifestRecord manifest) {
  QueueKey key{QueueKind::kManifest, options_.target, repo, manifest.digest.ToString(), ""};
  Status st = co_await Enqueue(std::move(key));
  if (!st.ok() || !tag) co_return st;
  QueueKey tag_key{QueueKind::kTag, options_.target, std::move(repo), "", *tag};
  st = co_await Enqueue(std::move(tag_key));
  co_return st;
}

awaitable<Status> SiteQueue::EnqueueDelete(std::string repo, std::string digest, std::string tag) {
  QueueKey key{QueueKind::kDelete, options_.target, std::move(repo), std::move(digest),
               std::move(tag)};
  Status st = co_await Enqueue(std::move(key));
  co_return st;
}

awaitable<Result<bool>> SiteQueue::TagQueued(std::string repo, std::string tag) {
  MetaStore* meta = meta_;
  QueueKey key{QueueKind::kTag, options_.target, std::move(repo), "", std::move(tag)};
  auto get = [meta, &key] { return meta->GetQueueItem(key); };
  Result<QueueItem> item = co_await Offload(get);
  if (!item) {
    if (item.error().code() == Code::kNotFound) co_return false;
    co_return Err(item.error());
  }
  co_return item->state != QueueState::kDone;
}

awaitable<void> SiteQueue::Worker(size_t index) {
  asio::steady_timer timer(ex_);
  idle_[index] = &timer;
  MetaStore* meta = meta_;
  const std::string target = options_.target;
  const std::string holder = options_.holder;
  const int64_t lease = options_.lease.count();
  auto claim = [meta, &target, &holder, lease] {
    return meta->ClaimQueueItems(target, holder, lease, 1);
  };
  while (!stopped_) {
    auto wait = options_.poll;
    const auto now = std::chrono::steady_clock::now();
    bool idle = true;
    if (now >= paused_until_) {
      Result<std::vector<QueueItem>> got = co_await Offload(claim);
      if (stopped_) break;
      if (!got) {
        if (auto held = store_log_.Admit()) {
          log_->warn("{}: claiming failed err={}{}", options_.log_prefix, got.error(), Held(*held));
        }
      } else if (!got->empty()) {
        QueueItem item = std::move(got->front());
        ++in_flight_;
        Result<Outcome> shipped = co_await Ship(item);
        --in_flight_;
        co_await Finish(std::move(item), std::move(shipped));
        idle = false;
      }
    } else {
      wait = std::min(wait,
                      std::chrono::duration_cast<std::chrono::milliseconds>(paused_until_ - now));
    }
    if (!idle || stopped_) continue;
    boost::system::error_code ec;
    timer.expires_after(wait);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  idle_[index] = nullptr;
}

awaitable<void> SiteQueue::Finish(QueueItem item, Result<Outcome> result) {
  MetaStore* meta = meta_;
  Status st;
  if (result) {
    unavailable_streak_ = 0;
    down_log_.Reset();
    Shipped(options_, item.key.kind, *result == Outcome::kShipped ? "shipped" : "gone").Inc();
    if (*result == Outcome::kShipped) {
      log_->info("{}: shipped kind={} ref={} attempts={}", options_.log_prefix,
                 QueueKindName(item.key.kind), RefOf(item), item.attempts);
    } else {
      log_->warn("{}: not stored here any more, nothing shipped kind={} ref={}",
                 options_.log_prefix, QueueKindName(item.key.kind), RefOf(item));
    }
    auto complete = [meta, &item] { return meta->CompleteQueueItem(item); };
    st = co_await Offload(complete);
  } else {
    Failures(options_, item.key.kind).Inc();
    const Status& err = result.error();
    std::optional<int64_t> retry = QueueBackoffSeconds(
        item.attempts, options_.backoff_initial_seconds, options_.backoff_max_seconds);
    if (err.code() == Code::kUnavailable) {
      // The upstream is down (or refusing us): every worker waits, not just this item.
      ++unavailable_streak_;
      const int64_t pause = QueueBackoffSeconds(
          unavailable_streak_, options_.backoff_initial_seconds, options_.backoff_max_seconds);
      paused_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(pause);
      if (auto held = down_log_.Admit()) {
        log_->warn(
            "{}: upstream unavailable, shipping paused for {}s kind={} ref={} "
            "attempts={} err={}{}",
            options_.log_prefix, pause, QueueKindName(item.key.kind), RefOf(item), item.attempts,
            err, Held(*held));
      }
    } else if (item.attempts >= options_.max_attempts) {
      retry.reset();
      log_->error("{}: giving up kind={} ref={} attempts={} err={}", options_.log_prefix,
                  QueueKindName(item.key.kind), RefOf(item), item.attempts, err);
    } else {
      log_->warn("{}: ship failed, retrying in {}s kind={} ref={} attempts={} err={}",
                 options_.log_prefix, *retry, QueueKindName(item.key.kind), RefOf(item),
                 item.attempts, err);
    }
    const std::string message = err.ToString();
    auto fail = [meta, &item, &message, retry] {
      return meta->FailQueueItem(item, message, retry);
    };
    st = co_await Offload(fail);
  }
  if (!st.ok()) {
    // kConflict: the claim ran out and another gateway took the item; it ships it again.
    log_->warn("{}: recording the outcome failed kind={} ref={} err={}", options_.log_prefix,
               QueueKindName(item.key.kind), RefOf(item), st);
  }
}

awaitable<Result<SiteQueue::Outcome>> SiteQueue::Ship(const QueueItem& item) {
  switch (item.key.kind) {
    case QueueKind::kBlob:
    case QueueKind::kManifest: {
      Result<Digest> digest = Digest::Parse(item.key.digest);
      if (!digest) co_return Err(Corruption("queue item with a bad digest " + item.key.digest));
      if (item.key.kind == QueueKind::kBlob) co_return co_await ShipBlob(item.key.repo, *digest);
      co_return co_await ShipManifest(item.key.repo, *digest, item.key.digest, 0);
    }
    case QueueKind::kTag: {
      MetaStore* meta = meta_;
      const std::string& repo = item.key.repo;
      const std::string& tag = item.key.tag;
      auto resolve = [meta, &repo, &tag] { return meta->ResolveTag(repo, tag); };
      Result<Digest> now = co_await Offload(resolve);
      if (!now) {
        if (now.error().code() == Code::kNotFound) co_return Outcome::kGone;  // tag deleted
        co_return Err(now.error());
      }
      co_return co_await ShipManifest(repo, *now, tag, 0);
    }
    case QueueKind::kDelete:
      co_return co_await ShipDelete(item.key.repo, item.key.digest, item.key.tag);
  }
  co_return Err(Internal("queue item of an unknown kind"));
}

awaitable<Result<SiteQueue::Outcome>> SiteQueue::ShipDelete(std::string repo, std::string digest,
                                                            std::string tag) {
  MetaStore* meta = meta_;
  // Pushed here again since the deletion: the target keeps it (the push's own item ships it).
  Status here;
  if (!digest.empty()) {
    Result<Digest> d = Digest::Parse(digest);
    if (!d) co_return Err(Corruption("queue item with a bad digest " + digest));
    auto get = [meta, &repo, &d]() -> Status {
      auto m = meta->GetManifest(repo, *d);
      return m ? Status::Ok() : m.error();
    };
    here = co_await Offload(get);
  } else {
    auto resolve = [meta, &repo, &tag]() -> Status {
      auto t = meta->ResolveTag(repo, tag);
      return t ? Status::Ok() : t.error();
    };
    here = co_await Offload(resolve);
  }
  if (here.ok()) co_return Outcome::kGone;
  if (here.code() != Code::kNotFound) co_return Err(here);
  const std::string reference = digest.empty() ? tag : digest;
  Status st = co_await site_->DeleteManifest(repo, reference);
  if (!st.ok() && st.code() != Code::kNotFound) co_return Err(st);
  log_->info("{}: deleted repo={} reference={}{}", options_.log_prefix, repo, reference,
             st.ok() ? "" : " (the target did not have it)");
  co_return Outcome::kShipped;
}

awaitable<Result<SiteQueue::Outcome>> SiteQueue::ShipBlob(std::string repo, Digest digest) {
  MetaStore* meta = meta_;
  auto linked = [meta, &repo, &digest] { return meta->BlobLinked(repo, digest); };
  Result<bool> here = co_await Offload(linked);
  if (!here) co_return Err(here.error());
  if (!*here) co_return Outcome::kGone;
  const std::string key = digest.ToString();
  // One push of a digest at a time: a manifest making sure of its blobs meets the blob's own
  // item (or another manifest's) here and waits, then finds it upstream with a HEAD.
  for (auto it = pushing_.find(key); it != pushing_.end(); it = pushing_.find(key)) {
    std::shared_ptr<Flight> flight = it->second;
    while (!flight->finished) {
      boost::system::error_code ec;
      co_await flight->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  auto flight = std::make_shared<Flight>(ex_);
  pushing_[key] = flight;
  Result<uint64_t> pushed = co_await site_->PushBlob(repo, digest);
  pushing_.erase(key);
  flight->finished = true;
  flight->done.cancel();
  if (!pushed) co_return Err(pushed.error());
  if (*pushed > 0) BytesShipped(options_).Inc(*pushed);
  co_return Outcome::kShipped;
}

awaitable<Result<SiteQueue::Outcome>> SiteQueue::ShipManifest(std::string repo, Digest digest,
                                                              std::string reference, int depth) {
  if (depth > kMaxIndexDepth) co_return Err(InvalidArgument("indexes nested too deep"));
  MetaStore* meta = meta_;
  auto get = [meta, &repo, &digest] { return meta->GetManifest(repo, digest); };
  Result<ManifestRecord> m = co_await Offload(get);
  if (!m) {
    if (m.error().code() == Code::kNotFound) co_return Outcome::kGone;
    co_return Err(m.error());
  }
  for (const Digest& child : m->manifests) {
    auto c = co_await ShipManifest(repo, child, child.ToString(), depth + 1);
    if (!c) co_return c;
    if (*c == Outcome::kGone) {
      co_return Err(NotFound("child manifest " + child.ToString() + " is not stored here"));
    }
  }
  for (const Digest& blob : m->blobs) {
    auto b = co_await ShipBlob(repo, blob);
    if (!b) co_return Err(b.error());
    // kGone: a layer this manifest names but this repository does not link (a foreign layer
    // pushed with --refuse-foreign-layers off); the upstream judges the manifest.
  }
  Status put = co_await site_->PushManifest(repo, reference, std::move(*m));
  if (!put.ok()) co_return Err(put);
  co_return Outcome::kShipped;
}

awaitable<void> SiteQueue::Housekeeping() {
  MetaStore* meta = meta_;
  const std::string target = options_.target;
  const std::string holder = options_.holder;
  const int64_t lease = options_.lease.count();
  auto stats = [meta, &target] { return meta->GetQueueStats(target); };
  auto renew = [meta, &holder, lease] { return meta->RenewQueueClaims(holder, lease); };
  const auto renew_every = std::max<std::chrono::milliseconds>(options_.lease / 3, options_.poll);
  const auto prune_every = std::chrono::minutes(1);
  auto last_renew = std::chrono::steady_clock::now();
  auto last_prune = std::chrono::steady_clock::time_point{};
  while (!stopped_) {
    Result<QueueStats> s = co_await Offload(stats);
    if (s) {
      Depth(options_).Set(static_cast<double>(s->pending + s->running));
      GivenUp(options_).Set(static_cast<double>(s->failed));
      Oldest(options_).Set(s->oldest_unix == 0 ? 0.0
                                               : static_cast<double>(std::max<int64_t>(
                                                     NowUnix() - s->oldest_unix, 0)));
    } else if (auto held = store_log_.Admit()) {
      log_->warn("{}: reading its counts failed err={}{}", options_.log_prefix, s.error(),
                 Held(*held));
    }
    const auto now = std::chrono::steady_clock::now();
    if (in_flight_ > 0 && now - last_renew >= renew_every) {
      last_renew = now;
      Result<uint64_t> n = co_await Offload(renew);
      if (!n) log_->warn("{}: renewing claims failed err={}", options_.log_prefix, n.error());
    }
    if (now - last_prune >= prune_every) {
      last_prune = now;
      const int64_t cutoff = NowUnix() - options_.keep_done.count();
      auto prune = [meta, cutoff] { return meta->PruneQueue(cutoff, 1000); };
      Result<uint64_t> n = co_await Offload(prune);
      if (!n) log_->warn("{}: pruning done items failed err={}", options_.log_prefix, n.error());
    }
    co_await SleepFor(options_.poll);
  }
}

}  // namespace wharf::upstream

#include "upstream/replication.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "auth/policy.h"
#include "common/async.h"
#include "common/metrics.h"
#include "common/units.h"
#include "registry/manifest.h"
#include "registry/names.h"

namespace wharf::upstream {
namespace {

constexpr int kMaxIndexDepth = 4;

Result<std::string> ReadPassword(const std::string& path) {
  auto pw = ReadPasswordFile(path);
  if (!pw) return Err(InvalidArgument("replication: password_file " + path + ": cannot read it"));
  return std::move(*pw);
}

int64_t NowUnix() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

CounterMetric& PullCopies(const std::string& rule, std::string_view outcome) {
  return Metrics().Counter("wharf_replication_pulled_total",
                           "Tags a pull rule of --replicate copied here (outcome copied) or "
                           "failed to.",
                           {{"rule", rule}, {"outcome", std::string(outcome)}});
}
CounterMetric& PullBytes(const std::string& rule) {
  return Metrics().Counter("wharf_replication_pulled_bytes_total",
                           "Blob bytes pull rules of --replicate fetched.", {{"rule", rule}});
}

bool HasWildcard(std::string_view pattern) { return pattern.find('*') != std::string_view::npos; }

}  // namespace

// A push target: its client (a SiteCache, used only to ship) and its queue.
struct Replicator::Target {
  ReplicationTarget target;
  std::unique_ptr<SiteCache> cache;
  std::unique_ptr<SiteQueue> queue;
};

// A pull rule's source.
struct Replicator::Pull {
  const ReplicationRule* rule = nullptr;
  std::unique_ptr<SiteCache> cache;  // its client
  PullState state;
};

Replicator::Replicator(asio::any_io_executor ex, ReplicationConfig config, MetaStore* meta,
                       std::string holder, WriteThrough* inner, Logger log)
    : ex_(std::move(ex)),
      config_(std::move(config)),
      meta_(meta),
      holder_(std::move(holder)),
      inner_(inner),
      log_(log) {}

Replicator::~Replicator() = default;

Result<std::unique_ptr<Replicator>> Replicator::Create(asio::any_io_executor ex,
                                                       ReplicationConfig config, MetaStore* meta,
                                                       std::string holder, WriteThrough* inner,
                                                       Logger log) {
  std::unique_ptr<Replicator> r(
      new Replicator(ex, std::move(config), meta, std::move(holder), inner, log));
  auto client_for = [&](const ReplicationTarget& t,
                        const std::string& label) -> Result<std::unique_ptr<SiteCache>> {
    SiteOptions so;
    so.upstream.url = t.url;
    so.upstream.ca_file = t.ca_file;
    so.upstream.user = t.user;
    if (!t.password_file.empty()) {
      WHARF_ASSIGN_OR_RETURN(so.upstream.password, ReadPassword(t.password_file));
    }
    so.label = label;
    auto cache = SiteCache::Create(ex, std::move(so), log);
    if (!cache) {
      return Err(InvalidArgument("replication target " + t.url + ": " + cache.error().message()));
    }
    return std::move(*cache);
  };
  for (const ReplicationRule& rule : r->config_.rules) {
    for (const ReplicationTarget& t : rule.targets) {
      if (rule.mode == ReplicationMode::kPull) {
        auto p = std::make_unique<Pull>();
        p->rule = &rule;
        WHARF_ASSIGN_OR_RETURN(p->cache, client_for(t, "replication source"));
        p->state.rule = rule.name;
        p->state.source = t.url;
        r->pulls_.push_back(std::move(p));
        continue;
      }
      auto known = std::find_if(r->targets_.begin(), r->targets_.end(),
                                [&t](const auto& x) { return x->target.url == t.url; });
      if (known != r->targets_.end()) continue;
      auto target = std::make_unique<Target>();
      target->target = t;
      WHARF_ASSIGN_OR_RETURN(target->cache, client_for(t, "replication target"));
      SiteQueueOptions qo;
      qo.target = ReplicationQueueTarget(t.url);
      qo.holder = r->holder_;
      qo.workers = r->config_.concurrency;
      qo.max_attempts = r->config_.max_attempts;
      qo.backoff_initial_seconds = r->config_.backoff_initial.count();
      qo.backoff_max_seconds = r->config_.backoff_max.count();
      qo.metrics = "wharf_replication_queue";
      qo.labels = {{"target", t.url}};
      qo.what = "replication to " + t.url;
      qo.admin_path = "/admin/replication";
      qo.log_prefix = "replication " + t.url;
      target->queue = std::make_unique<SiteQueue>(ex, qo, meta, target->cache.get(), log);
      r->targets_.push_back(std::move(target));
    }
  }
  return r;
}

void Replicator::Attach(BlobService* blobs) {
  blobs_ = blobs;
  for (auto& t : targets_) t->cache->Attach(blobs);
  for (auto& p : pulls_) p->cache->Attach(blobs);
}

Status Replicator::Start() {
  for (auto& t : targets_) {
    auto recovered = t->queue->Recover();
    if (!recovered) return recovered.error();
  }
  for (auto& t : targets_) t->queue->Start();
  for (size_t i = 0; i < pulls_.size(); ++i) asio::co_spawn(ex_, PullLoop(i), asio::detached);
  for (const ReplicationRule& rule : config_.rules) {
    std::string urls;
    for (const auto& t : rule.targets) urls += (urls.empty() ? "" : ",") + t.url;
    log_->info("replication rule name={} mode={} repositories={} tags={} targets={}", rule.name,
               rule.mode == ReplicationMode::kPush ? "push" : "pull",
               fmt::join(rule.repositories, ","), fmt::join(rule.tags, ","), urls);
  }
  return Status::Ok();
}

void Replicator::Stop() {
  stopped_ = true;
  for (auto& t : targets_) t->queue->Stop();
}

awaitable<Status> Replicator::BlobStored(std::string repo, Digest digest) {
  // Blobs are shipped with the manifests that name them.
  if (inner_) co_return co_await inner_->BlobStored(std::move(repo), std::move(digest));
  co_return Status::Ok();
}

awaitable<Status> Replicator::ManifestStored(std::string repo, std::optional<std::string> tag,
                                             ManifestRecord manifest) {
  if (inner_) {
    Status st = co_await inner_->ManifestStored(repo, tag, manifest);
    if (!st.ok()) co_return st;
  }
  auto matches = [&repo, &tag](const ReplicationRule& rule) {
    return RuleMatchesPush(rule, repo, tag);
  };
  for (Target* t : TargetsOf(matches)) {
    Status st = co_await t->queue->EnqueueManifest(repo, tag, manifest);
    if (!st.ok()) co_return st;
  }
  co_return Status::Ok();
}

awaitable<Status> Replicator::ManifestDeleted(std::string repo, Reference ref) {
  if (inner_) {
    Status st = co_await inner_->ManifestDeleted(repo, ref);
    if (!st.ok()) co_return st;
  }
  const std::optional<std::string> tag =
      ref.is_digest() ? std::nullopt : std::optional<std::string>(ref.tag);
  const std::string digest = ref.is_digest() ? ref.digest.ToString() : "";
  auto matches = [&repo, &tag](const ReplicationRule& rule) {
    return RuleMatchesDelete(rule, repo, tag);
  };
  for (Target* t : TargetsOf(matches)) {
    Status st = co_await t->queue->EnqueueDelete(repo, digest, ref.tag);
    if (!st.ok()) {
      log_->error(
          "replication: deleted here, but queueing the deletion failed repo={} "
          "reference={} target={} err={}",
          repo, ref.ToString(), t->target.url, st);
      co_return st;
    }
  }
  co_return Status::Ok();
}

std::vector<Replicator::Target*> Replicator::TargetsOf(
    const std::function<bool(const ReplicationRule&)>& matches) {
  std::vector<Target*> out;
  std::set<std::string> seen;
  for (const ReplicationRule& rule : config_.rules) {
    if (!matches(rule)) continue;
    for (const ReplicationTarget& t : rule.targets) {
      if (!seen.insert(t.url).second) continue;
      auto it = std::find_if(targets_.begin(), targets_.end(),
                             [&t](const auto& x) { return x->target.url == t.url; });
      if (it != targets_.end()) out.push_back(it->get());
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Replicator::PushTargets() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& t : targets_) out.emplace_back(t->queue->options().target, t->target.url);
  return out;
}

std::vector<Replicator::PullState> Replicator::PullStates() const {
  std::vector<PullState> out;
  for (const auto& p : pulls_) out.push_back(p->state);
  return out;
}

// ---- Pull rules ----

awaitable<void> Replicator::PullLoop(size_t index) {
  Pull& p = *pulls_[index];
  while (!stopped_) {
    p.state.last_run_unix = NowUnix();
    Status st = co_await PullOnce(p);
    if (st.ok()) {
      p.state.last_ok_unix = p.state.last_run_unix;
      p.state.last_error.clear();
    } else {
      p.state.last_error = st.ToString();
      log_->warn("replication: pull run failed rule={} source={} err={}", p.rule->name,
                 p.state.source, st);
    }
    // Sleep the interval in short steps, so Stop ends the loop soon.
    const auto until = std::chrono::steady_clock::now() + p.rule->interval;
    while (!stopped_ && std::chrono::steady_clock::now() < until) {
      co_await SleepFor(std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(500), std::chrono::duration_cast<std::chrono::milliseconds>(
                                              until - std::chrono::steady_clock::now())));
    }
  }
}

awaitable<Result<std::vector<std::string>>> Replicator::Repositories(Pull& p) {
  std::set<std::string> out;
  bool need_catalog = false;
  for (const std::string& pattern : p.rule->repositories) {
    if (HasWildcard(pattern)) {
      need_catalog = true;
    } else {
      out.insert(pattern);
    }
  }
  if (need_catalog) {
    auto catalog = co_await p.cache->client().Catalog();
    if (!catalog) co_return Err(catalog.error());
    for (const std::string& repo : *catalog) {
      if (!ValidRepositoryName(repo)) continue;
      for (const std::string& pattern : p.rule->repositories) {
        if (auth::MatchRepositoryPattern(pattern, repo)) out.insert(repo);
      }
    }
  }
  co_return std::vector<std::string>(out.begin(), out.end());
}

awaitable<Status> Replicator::PullOnce(Pull& p) {
  auto repos = co_await Repositories(p);
  if (!repos) co_return repos.error();
  Status first_error;
  for (const std::string& repo : *repos) {
    if (stopped_) break;
    auto tags = co_await p.cache->client().ListTags(repo);
    if (!tags) {
      if (tags.error().code() == Code::kNotFound) continue;  // named in the rule, not there
      if (first_error.ok()) first_error = tags.error();
      continue;
    }
    for (const std::string& tag : *tags) {
      if (stopped_) break;
      if (!ValidTag(tag) || !RuleMatchesTag(*p.rule, tag)) continue;
      auto copied = co_await CopyTag(p, repo, tag);
      if (!copied) {
        PullCopies(p.rule->name, "failed").Inc();
        log_->warn("replication: pulling a tag failed rule={} source={} ref={}:{} err={}",
                   p.rule->name, p.state.source, repo, tag, copied.error());
        if (first_error.ok()) first_error = copied.error();
      } else if (*copied) {
        ++p.state.copied;
        PullCopies(p.rule->name, "copied").Inc();
      }
    }
  }
  co_return first_error;
}

awaitable<Result<bool>> Replicator::CopyTag(Pull& p, const std::string& repo,
                                            const std::string& tag) {
  auto head = co_await p.cache->client().HeadManifest(repo, tag);
  if (!head) co_return Err(head.error());
  MetaStore* meta = meta_;
  auto resolve = [meta, &repo, &tag] { return meta->ResolveTag(repo, tag); };
  Result<Digest> here = co_await Offload(resolve);
  if (here && *here == head->digest) co_return false;  // up to date
  ManifestRecord record;
  Status st = co_await CopyManifest(p, repo, head->digest, &record, 0);
  if (!st.ok()) co_return Err(st);
  Digest missing;
  std::optional<std::string> tag_opt = tag;
  st = co_await blobs_->PutManifest(repo, tag_opt, std::move(record), &missing);
  if (!st.ok()) co_return Err(st);
  log_->info("replication: pulled rule={} source={} ref={}:{} digest={}", p.rule->name,
             p.state.source, repo, tag, head->digest.ToString());
  co_return true;
}

awaitable<Status> Replicator::CopyManifest(Pull& p, const std::string& repo, const Digest& digest,
                                           ManifestRecord* out, int depth) {
  if (depth > kMaxIndexDepth) co_return InvalidArgument("indexes nested too deep");
  RegistryClient& client = p.cache->client();
  auto got = co_await client.GetManifest(repo, digest.ToString());  // verified against digest
  if (!got) co_return got.error();
  auto info = ParseManifest(got->media_type, got->content);
  if (!info) {
    co_return InvalidArgument("manifest " + repo + "@" + digest.ToString() + " from " +
                              p.state.source + " is invalid: " + info.error().message());
  }
  ManifestRecord record = ManifestRecordOf(got->digest, std::move(got->content), std::move(*info),
                                           /*allow_foreign=*/true);
  for (const Digest& child : record.manifests) {
    ManifestRecord child_record;
    Status st = co_await CopyManifest(p, repo, child, &child_record, depth + 1);
    if (!st.ok()) co_return st;
    Digest missing;
    st = co_await blobs_->PutManifest(repo, std::nullopt, std::move(child_record), &missing);
    if (!st.ok()) co_return st;
  }
  MetaStore* meta = meta_;
  for (const Digest& blob : record.blobs) {
    auto linked = [meta, &repo, &blob] { return meta->BlobLinked(repo, blob); };
    Result<bool> have = co_await Offload(linked);
    if (!have) co_return have.error();
    if (*have) continue;
    // The same content elsewhere here: link it instead of fetching.
    auto mounted = co_await blobs_->Mount(repo, blob, std::nullopt);
    if (mounted && *mounted) continue;
    auto src = co_await client.OpenBlob(repo, blob);
    if (!src) co_return src.error();
    const uint64_t size = (*src)->size();
    auto stored = co_await blobs_->PutBlob(repo, blob, **src);  // verified against the digest
    if (!stored) co_return stored.error();
    PullBytes(p.rule->name).Inc(size);
  }
  *out = std::move(record);
  co_return Status::Ok();
}

}  // namespace wharf::upstream

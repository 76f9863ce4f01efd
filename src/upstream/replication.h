// Replication (Inspur's "push once, distribute to the cluster"): the rules of `--replicate FILE`
// copy images between this registry and others, any OCI registry (another wharf, the reference,
// Harbor, ...).
//
//   rules:
//     - name: to-dr
//       repositories: ["team/**"]        # auth/policy.h's patterns
//       tags: ["v*", "latest"]           # optional "*"-globs
//       targets: ["https://dr.example:5000",
//                 {url: "https://b.example", user: repl, password_file: /etc/wharf/b.pw,
//                  ca: /etc/wharf/b-ca.pem}]
//       mode: push                       # default; pull copies from the targets instead
//       interval: 5m                     # pull rules: how often
//   concurrency: 4                       # transfers at once, per target
//   retry: {attempts: 8, initial: 1s, max: 60s}
//
// Push rules: a manifest pushed here (by tag or digest) in a repository a rule matches is put
// in the metadata store's work queue for each of the rule's targets before the push is
// acknowledged (so a crash never loses it), and shipped by a SiteQueue per target: the blobs
// first (a HEAD skips those the target has), an index's children, then the manifest, then the
// tag (its value at ship time). Jobs are retried with backoff, kept with their state and error,
// and listed by GET /admin/replication. With `tags`, only pushes of a matching tag are
// replicated (with everything the manifest names); without, every manifest push is (referrers
// and untagged pushes included).
//
// With `delete: true` on a push rule, a manifest deleted here (by digest: every rule of the
// repository; a tag: rules whose filter takes it) is queued the same way once the deletion is
// committed here, before it is acknowledged, and DELETEd at each target, unless pushed here
// again meanwhile.
//
// Pull rules: every `interval`, each target's repositories matching the patterns (a pattern
// without wildcards is taken as a name; others are matched against the target's _catalog)
// are listed, and each tag matching `tags` whose digest differs from this registry's is copied
// here (blobs verified and stored, then the manifest and the tag), as if pushed.
//
// Threading: the gateway's executor; store calls offloaded. Not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blob/blob_service.h"
#include "blob/read_through.h"
#include "common/log.h"
#include "common/status.h"
#include "meta/meta_store.h"
#include "upstream/replication_config.h"
#include "upstream/site_cache.h"
#include "upstream/site_queue.h"

namespace wharf::upstream {

class Replicator final : public WriteThrough {
 public:
  // Reads the targets' password files. `holder`: this gateway's name in queue claims. `inner`:
  // the write-through that runs first (a site's; null: none; not owned, outlives this).
  static Result<std::unique_ptr<Replicator>> Create(asio::any_io_executor ex,
                                                    ReplicationConfig config, MetaStore* meta,
                                                    std::string holder, WriteThrough* inner,
                                                    Logger log);
  ~Replicator() override;
  // The blob service to read pushed content from and store pulled content in. Then Start.
  void Attach(BlobService* blobs);
  // Takes back this holder's claims, spawns the queues' workers and the pull rules' loops.
  Status Start();
  void Stop();

  // WriteThrough: the inner one's, then the push rules' jobs queued.
  awaitable<Status> BlobStored(std::string repo, Digest digest) override;
  awaitable<Status> ManifestStored(std::string repo, std::optional<std::string> tag,
                                   ManifestRecord manifest) override;
  // The inner one's, then a delete job per target of the rules with `delete: true` that match.
  awaitable<Status> ManifestDeleted(std::string repo, Reference ref) override;

  // What GET /admin/replication shows of the pull rules.
  struct PullState {
    std::string rule;
    std::string source;
    int64_t last_run_unix = 0;  // 0: not yet
    int64_t last_ok_unix = 0;   // the last run that copied everything it found
    uint64_t copied = 0;        // tags copied, over all runs
    std::string last_error;     // of the last run; "" when it went well
  };
  const ReplicationConfig& config() const { return config_; }
  // The push targets' queue keys and URLs, in the order of the rules.
  std::vector<std::pair<std::string, std::string>> PushTargets() const;
  std::vector<PullState> PullStates() const;

 private:
  struct Target;
  struct Pull;
  Replicator(asio::any_io_executor ex, ReplicationConfig config, MetaStore* meta,
             std::string holder, WriteThrough* inner, Logger log);
  // Every push target of the rules `matches` takes, each once, in rule order.
  std::vector<Target*> TargetsOf(const std::function<bool(const ReplicationRule&)>& matches);
  awaitable<void> PullLoop(size_t index);
  awaitable<Status> PullOnce(Pull& p);
  awaitable<Result<bool>> CopyTag(Pull& p, const std::string& repo, const std::string& tag);
  awaitable<Status> CopyManifest(Pull& p, const std::string& repo, const Digest& digest,
                                 ManifestRecord* out, int depth);
  awaitable<Result<std::vector<std::string>>> Repositories(Pull& p);

  asio::any_io_executor ex_;
  ReplicationConfig config_;
  MetaStore* meta_;
  std::string holder_;
  WriteThrough* inner_;
  Logger log_;
  BlobService* blobs_ = nullptr;
  bool stopped_ = false;
  std::vector<std::unique_ptr<Target>> targets_;  // push targets, one per URL
  std::vector<std::unique_ptr<Pull>> pulls_;      // one per pull rule and source
};

}  // namespace wharf::upstream

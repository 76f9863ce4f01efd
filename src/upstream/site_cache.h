// SiteCache: site mode (the Tencent design). A site is its own cluster and metadata store in
// front of a shared upstream registry (`--site-upstream`):
//
//   - write-through (WriteThrough): a blob upload commit, a mount and a manifest PUT are
//     acknowledged only once the upstream holds them too (the blob is streamed to it from the
//     local cluster, skipped when HEAD finds it there); an upstream failure fails the push with
//     a clear 5xx, the content staying here;
//   - fetch on miss (ReadThroughSource): a blob absent here is fetched from the upstream and
//     streamed to the client while it is written into the local cluster (a tee), verified by
//     both ends, and kept only when its digest matches. Concurrent misses of one digest share
//     one upstream fetch (single flight: the others wait for it and read the local copy);
//   - manifests by digest are fetched, verified and stored (in the metadata store once their
//     blobs are here, in a bounded in-memory cache until then);
//   - tags are resolved upstream (a HEAD), cached for `tag_ttl`, so a site never serves a tag
//     older than that; with the upstream down, the last known tag (or a local one) is served;
//   - upstream down: cached content is served, a miss is kUnavailable ("site upstream ... is
//     unreachable"), which the gateway answers 503 with the spec's error JSON;
//   - asynchronous write-through (`--site-write async`, SetQueue): pushes are acknowledged once
//     stored here and enqueued in the metadata store's work queue; SiteQueue ships them later
//     (upstream/site_queue.h). A tag with an item not yet shipped is served from this site.
//
// Threading: one executor, the blob service's. Not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "blob/blob_service.h"
#include "blob/read_through.h"
#include "common/log.h"
#include "upstream/registry_client.h"

namespace wharf::upstream {

class SiteQueue;

struct SiteOptions {
  RegistryOptions upstream;
  std::chrono::milliseconds tag_ttl{std::chrono::seconds(30)};
  size_t max_cached_manifests = 4096;  // the in-memory manifest cache (small documents)
  // Pull-through (upstream/proxy.h): the upstream's name of a local repository, applied to
  // every request to the upstream (the local store keeps the local name). Empty: the same.
  std::function<std::string(const std::string&)> upstream_repo;
  // With the upstream down, a tag is served from its last lookup (or the local store); false
  // (pull-through without --proxy-serve-stale): the lookup is kUnavailable.
  bool serve_stale_tags = true;
  std::string label = "site upstream";  // how errors name the upstream, before its URL
};

class SiteCache final : public ReadThroughSource, public WriteThrough {
 public:
  // kInvalidArgument for a bad URL or CA file.
  static Result<std::unique_ptr<SiteCache>> Create(asio::any_io_executor ex, SiteOptions options,
                                                   Logger log);
  // The blob service to store fetched content in and to read pushed content from (not owned;
  // outlives the cache). Call before serving.
  void Attach(BlobService* blobs) { blobs_ = blobs; }

  // ReadThroughSource
  awaitable<Result<std::unique_ptr<BlobReader>>> OpenBlob(std::string repo, Digest digest) override;
  awaitable<Result<ManifestRecord>> GetManifest(std::string repo, Reference ref) override;
  bool ResolvesTags(const std::string&) const override { return true; }

  // WriteThrough
  awaitable<Status> BlobStored(std::string repo, Digest digest) override;
  awaitable<Status> ManifestStored(std::string repo, std::optional<std::string> tag,
                                   ManifestRecord manifest) override;

  // Async mode: pushes are enqueued in `queue` (not owned; outlives the cache) instead of
  // written through. Call before serving.
  void SetQueue(SiteQueue* queue) { queue_ = queue; }

  // The shipping primitives of both modes; errors are the client's (registry_client.h) as they
  // came, kNotFound also when the content is not stored here.
  // Pushes blob `digest` of `repo` from this site to the upstream: the bytes sent (0: it had
  // it already).
  awaitable<Result<uint64_t>> PushBlob(std::string repo, Digest digest);
  // PUTs `manifest` to the upstream under `reference` (a tag or its digest).
  awaitable<Status> PushManifest(std::string repo, std::string reference, ManifestRecord manifest);
  // DELETE of manifest `reference` (digest or tag) of `repo` upstream; kNotFound when absent.
  awaitable<Status> DeleteManifest(std::string repo, std::string reference);

  RegistryClient& client() { return *client_; }
  const std::string& upstream_url() const { return options_.upstream.url; }

  // The blob fill of one digest in progress: what the other misses of it wait for.
  struct Flight;
  // Used by the tee reader (site_cache.cc).
  awaitable<Status> Tee(std::string repo, Digest digest, uint64_t offset, uint64_t len,
                        ByteSink sink);

 private:
  SiteCache(SiteOptions options, Logger log) : options_(std::move(options)), log_(log) {}
  Status UpstreamError(const Status& st, const std::string& what) const;
  // The upstream's name of `repo` (SiteOptions::upstream_repo).
  std::string Up(const std::string& repo) const {
    return options_.upstream_repo ? options_.upstream_repo(repo) : repo;
  }
  // The blob as stored here (linked in `repo`), or kNotFound.
  awaitable<Result<std::unique_ptr<BlobReader>>> LocalBlob(std::string repo, Digest digest);
  awaitable<Result<ManifestRecord>> ManifestByDigest(std::string repo, Digest digest);
  awaitable<Result<ManifestRecord>> LocalManifest(std::string repo, Digest digest);
  void Remember(const std::string& key, const ManifestRecord& m);

  SiteOptions options_;
  Logger log_;
  BlobService* blobs_ = nullptr;
  SiteQueue* queue_ = nullptr;  // async mode only
  std::unique_ptr<RegistryClient> client_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;  // by digest
  std::set<std::string> filling_;  // digests being stored by a fill: not written through
  struct TagEntry {
    Digest digest;
    std::chrono::steady_clock::time_point fetched;
  };
  std::map<std::string, TagEntry> tags_;             // "repo:tag"
  std::map<std::string, ManifestRecord> manifests_;  // "repo@digest", not yet stored
  std::list<std::string> manifest_order_;            // oldest first
};

}  // namespace wharf::upstream

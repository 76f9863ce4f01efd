// LookupCache: a bounded, short-lived memory of the gateway's hottest metadata reads — which
// blobs a repository links (blob HEAD and GET), manifests by digest and, where the gateway is
// the store's only writer, tags — so that a repeated read is answered on the event loop without
// a hop to the thread pool and a database query.
//
// Only positive answers are kept (a miss always asks the store). Entries are content-addressed
// or invalidated by this process's own writes (CachingMetaStore), so with one gateway per store
// the cache is exact. With several gateways on one store, another gateway's delete or tag move is
// seen here at most `ttl` later; tags are cached only when `tags` is set, for a store this
// process writes alone.
//
// Populating races invalidation: a reader takes Generation() before its query and Put* drops
// the answer if any invalidation happened since, so a value read before a write committed is
// never cached after it. Thread-safe (one mutex; the loop only looks up, pool threads fill).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

#include "common/digest.h"
#include "meta/meta_store.h"

namespace wharf {

struct LookupCacheOptions {
  // How long an entry is believed; 0 turns the cache off.
  std::chrono::milliseconds ttl{std::chrono::seconds(2)};
  size_t max_entries = 65536;
  uint64_t max_bytes = 64u << 20;  // manifests count their content
  bool tags = false;  // cache tag → digest (only when this process is the sole writer)
};

class LookupCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LookupCache(LookupCacheOptions options);

  bool enabled() const { return options_.ttl.count() > 0; }
  bool caches_tags() const { return enabled() && options_.tags; }
  // Bumped by every invalidation; pass what a reader took before its query to Put*.
  uint64_t Generation() const { return generation_.load(std::memory_order_acquire); }

  std::optional<BlobRecord> FindLinkedBlob(const std::string& repo, const Digest& digest);
  std::optional<ManifestRecord> FindManifest(const std::string& repo, const Digest& digest);
  std::optional<Digest> FindTag(const std::string& repo, const std::string& tag);

  void PutLinkedBlob(uint64_t generation, const std::string& repo, const BlobRecord& blob);
  void PutManifest(uint64_t generation, const std::string& repo, const ManifestRecord& manifest);
  void PutTag(uint64_t generation, const std::string& repo, const std::string& tag,
              const Digest& digest);

  void InvalidateTag(const std::string& repo, const std::string& tag);
  // Forgets that `repo` links `digest` (a read of its chunks found them gone: another process
  // may have collected it). True when there was such an entry.
  bool InvalidateLinkedBlob(const std::string& repo, const Digest& digest);
  // Forgets the manifest `digest` of `repo`.
  void InvalidateManifest(const std::string& repo, const Digest& digest);
  // Forgets everything (deletes and collections, whose consequences reach further than one key).
  void Clear();

  size_t entries() const;
  uint64_t bytes() const;

 private:
  using Value = std::variant<BlobRecord, ManifestRecord, Digest>;
  struct Entry {
    std::string key;
    Value value;
    uint64_t bytes = 0;
    Clock::time_point expires;
  };
  template <typename T>
  std::optional<T> Find(const std::string& key);  // key[0] is its kind: b, m or t
  void Put(uint64_t generation, std::string key, Value value, uint64_t bytes);
  void EraseLocked(std::list<Entry>::iterator it);

  const LookupCacheOptions options_;
  std::atomic<uint64_t> generation_{0};
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  uint64_t bytes_ = 0;
};

// Wraps a store: reads of linked blobs, manifests and (if cached) tags fill `cache`; every write
// that could make an entry wrong invalidates it after the write returns. Everything else
// forwards unchanged. Thread-safe if the inner store is.
std::unique_ptr<MetaStore> MakeCachingMetaStore(std::unique_ptr<MetaStore> inner,
                                                LookupCache& cache);

}  // namespace wharf

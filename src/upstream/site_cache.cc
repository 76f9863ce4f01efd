#include "upstream/site_cache.h"

#include <ctime>

#include "common/async.h"
#include "common/metrics.h"
#include "registry/manifest.h"
#include "upstream/site_queue.h"

namespace wharf::upstream {
namespace {

constexpr size_t kTeePiece = 256u << 10;

CounterMetric& Fetches(std::string_view kind, std::string_view outcome) {
  return Metrics().Counter("wharf_site_upstream_fetches_total",
                           "Content a site fetched from its upstream on a miss.",
                           {{"kind", std::string(kind)}, {"outcome", std::string(outcome)}});
}
CounterMetric& WriteThroughs(std::string_view kind, std::string_view outcome) {
  return Metrics().Counter("wharf_site_write_through_total",
                           "Pushes a site wrote through to its upstream.",
                           {{"kind", std::string(kind)}, {"outcome", std::string(outcome)}});
}

// One waiter's wake-up: a timer that never fires by itself, cancelled to wake.
struct Event {
  explicit Event(asio::any_io_executor ex) : timer(ex) {
    timer.expires_at(std::chrono::steady_clock::time_point::max());
  }
  awaitable<void> Wait() {
    boost::system::error_code ec;
    timer.expires_at(std::chrono::steady_clock::time_point::max());
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  void Notify() { timer.cancel(); }
  asio::steady_timer timer;
};

// A ByteSource fed by a producer coroutine on the same executor: Push hands a piece over and
// waits until the consumer (BlobService::PutBlob) took all of it, so at most one piece is in
// flight and nothing is copied but into the consumer's buffer.
class Pipe final : public ByteSource {
 public:
  Pipe(asio::any_io_executor ex, uint64_t size) : producer_(ex), consumer_(ex), size_(size) {}
  awaitable<Status> Push(std::string_view data) {
    data_ = data;
    consumer_.Notify();
    while (!data_.empty() && consumer_status_.ok() && !consumer_done_) co_await producer_.Wait();
    data_ = {};
    if (!consumer_status_.ok()) co_return consumer_status_;
    if (consumer_done_) co_return Internal("the local writer stopped reading");
    co_return Status::Ok();
  }
  void Close(Status st) {
    closed_ = true;
    close_status_ = std::move(st);
    consumer_.Notify();
  }
  // The consumer ended (its result): a producer waiting in Push returns.
  void ConsumerDone(Status st) {
    consumer_done_ = true;
    consumer_status_ = std::move(st);
    producer_.Notify();
  }
  awaitable<Result<size_t>> Read(void* buf, size_t n) override {
    while (data_.empty() && !closed_) co_await consumer_.Wait();
    if (!data_.empty()) {
      const size_t k = std::min(n, data_.size());
      std::memcpy(buf, data_.data(), k);
      data_.remove_prefix(k);
      if (data_.empty()) producer_.Notify();
      co_return k;
    }
    if (!close_status_.ok()) co_return Err(close_status_);
    co_return size_t{0};
  }
  std::optional<uint64_t> size_hint() const override { return size_; }

 private:
  Event producer_, consumer_;
  uint64_t size_;
  std::string_view data_;
  bool closed_ = false;
  Status close_status_;
  bool consumer_done_ = false;
  Status consumer_status_;
};

// Stores what the pipe carries as blob `digest` of `repo` (verified by PutBlob).
awaitable<Result<BlobInfo>> StoreFromPipe(BlobService* blobs, std::string repo, Digest digest,
                                          std::shared_ptr<Pipe> pipe) {
  co_return co_await blobs->PutBlob(std::move(repo), std::move(digest), *pipe);
}

// A blob the site lacks: its size from the upstream's HEAD; bytes only when read (a HEAD
// request reads none).
class TeeReader final : public BlobReader {
 public:
  TeeReader(SiteCache* cache, std::string repo, Digest digest, uint64_t size)
      : cache_(cache), repo_(std::move(repo)), digest_(std::move(digest)), size_(size) {}
  uint64_t size() const override { return size_; }
  awaitable<Status> Read(uint64_t offset, uint64_t len, ByteSink sink) override {
    co_return co_await cache_->Tee(repo_, digest_, offset, len, std::move(sink));
  }

 private:
  SiteCache* cache_;
  std::string repo_;
  Digest digest_;
  uint64_t size_;
};

}  // namespace

struct SiteCache::Flight {
  explicit Flight(asio::any_io_executor ex) : done(ex) {}
  Event done;
  bool finished = false;
};

Result<std::unique_ptr<SiteCache>> SiteCache::Create(asio::any_io_executor ex, SiteOptions options,
                                                     Logger log) {
  WHARF_ASSIGN_OR_RETURN(auto client, RegistryClient::Create(ex, options.upstream));
  std::unique_ptr<SiteCache> c(new SiteCache(std::move(options), log));
  c->client_ = std::move(client);
  return c;
}

Status SiteCache::UpstreamError(const Status& st, const std::string& what) const {
  if (st.code() == Code::kNotFound) return st;
  std::string msg = options_.label + " " + options_.upstream.url + " ";
  msg += st.code() == Code::kUnavailable ? "is unreachable or failing" : "gave a bad answer";
  msg += " (" + what + "): " + st.message();
  // Whatever went wrong upstream is the site's trouble, not the client's request: a 5xx.
  return Unavailable(std::move(msg));
}

awaitable<Result<std::unique_ptr<BlobReader>>> SiteCache::LocalBlob(std::string repo,
                                                                    Digest digest) {
  MetaStore* meta = blobs_->context().meta;
  auto get = [meta, &repo, &digest] { return meta->GetLinkedBlob(repo, digest); };
  Result<BlobRecord> blob = co_await Offload(get);
  if (!blob) co_return Err(blob.error());
  co_return std::unique_ptr<BlobReader>(
      std::make_unique<ChunkReader>(blobs_->context(), std::move(blob->chunks), blob->size));
}

awaitable<Result<std::unique_ptr<BlobReader>>> SiteCache::OpenBlob(std::string repo,
                                                                   Digest digest) {
  auto size = co_await client_->HeadBlob(Up(repo), digest);
  if (!size) co_return Err(UpstreamError(size.error(), "HEAD blob " + digest.ToString()));
  // The same content may be here under another repository: link it instead of fetching.
  auto mounted = co_await blobs_->Mount(repo, digest, std::nullopt);
  if (mounted && *mounted) {
    auto local = co_await LocalBlob(repo, digest);
    if (local) co_return local;
  }
  co_return std::unique_ptr<BlobReader>(std::make_unique<TeeReader>(this, repo, digest, *size));
}

awaitable<Status> SiteCache::Tee(std::string repo, Digest digest, uint64_t offset, uint64_t len,
                                 ByteSink sink) {
  const std::string key = digest.ToString();
  // Single flight: while another miss fetches this digest, wait for it and read the copy it
  // stored. If it failed (or was abandoned), fetch it ourselves.
  for (int waits = 0; waits < 3; ++waits) {
    auto it = flights_.find(key);
    if (it == flights_.end()) break;
    std::shared_ptr<Flight> flight = it->second;
    Fetches("blob", "joined").Inc();
    while (!flight->finished) co_await flight->done.Wait();
    auto local = co_await LocalBlob(repo, digest);
    if (local) co_return co_await (*local)->Read(offset, len, std::move(sink));
  }
  auto flight = std::make_shared<Flight>(blobs_->context().ex);
  flights_[key] = flight;
  filling_.insert(key);
  struct Finish {
    SiteCache* cache;
    std::string key;
    std::shared_ptr<Flight> flight;
    ~Finish() {
      cache->flights_.erase(key);
      cache->filling_.erase(key);
      flight->finished = true;
      flight->done.Notify();
    }
  } finish{this, key, flight};

  auto upstream = co_await client_->OpenBlob(Up(repo), digest);
  if (!upstream) {
    Fetches("blob", "failed").Inc();
    co_return UpstreamError(upstream.error(), "GET blob " + key);
  }
  UpstreamBlob& src = **upstream;
  // The local copy: PutBlob reads the pipe on its own coroutine and verifies the digest.
  auto pipe = std::make_shared<Pipe>(blobs_->context().ex, src.size());
  struct Store {
    explicit Store(asio::any_io_executor ex) : done(ex) {}
    Event done;
    bool finished = false;
    Status status;
  };
  auto store = std::make_shared<Store>(blobs_->context().ex);
  asio::co_spawn(blobs_->context().ex, StoreFromPipe(blobs_, repo, digest, pipe),
                 [store, pipe](std::exception_ptr e, Result<BlobInfo> r) {
                   if (e) r = Err(Internal("storing a fetched blob threw"));
                   store->status = r ? Status::Ok() : r.error();
                   store->finished = true;
                   pipe->ConsumerDone(store->status);
                   store->done.Notify();
                 });
  bool caching = true;
  Status client_status;  // the sink's first error: the client went away
  std::vector<char> buf(kTeePiece);
  uint64_t pos = 0;
  const uint64_t end = offset + len;
  Status fetch_status;
  for (;;) {
    auto n = co_await src.Read(buf.data(), buf.size());
    if (!n) {
      fetch_status = n.error();
      break;
    }
    if (*n == 0) break;
    std::string_view piece(buf.data(), *n);
    if (caching) {
      Status st = co_await pipe->Push(piece);
      if (!st.ok()) {
        caching = false;
        log_->warn("site cache: storing a fetched blob failed repo={} digest={} err={}", repo, key,
                   st);
      }
    }
    // The part of the piece the client asked for.
    const uint64_t lo = std::max(pos, offset), hi = std::min(pos + *n, end);
    if (client_status.ok() && lo < hi) {
      client_status = co_await sink(piece.substr(lo - pos, hi - lo));
      // The client went away: the fetch goes on when it is being cached, so the next pull
      // finds it here.
      if (!client_status.ok() && !caching) break;
    }
    pos += *n;
  }
  pipe->Close(fetch_status);
  while (!store->finished) co_await store->done.Wait();
  if (!fetch_status.ok()) {
    Fetches("blob", "failed").Inc();
    log_->warn("site cache: upstream blob fetch failed repo={} digest={} err={}", repo, key,
               fetch_status);
    co_return UpstreamError(fetch_status, "GET blob " + key);
  }
  if (store->status.ok()) {
    Fetches("blob", "stored").Inc();
    log_->info("site cache: blob fetched and stored repo={} digest={} size={}", repo, key,
               src.size());
  } else {
    Fetches("blob", "served_not_stored").Inc();
  }
  co_return client_status;
}

awaitable<Result<ManifestRecord>> SiteCache::LocalManifest(std::string repo, Digest digest) {
  MetaStore* meta = blobs_->context().meta;
  auto get = [meta, &repo, &digest] { return meta->GetManifest(repo, digest); };
  Result<ManifestRecord> m = co_await Offload(get);
  if (m || m.error().code() != Code::kNotFound) co_return m;
  const std::string key = repo + "@" + digest.ToString();
  auto it = manifests_.find(key);
  if (it == manifests_.end()) co_return m;
  // Cached in memory until its blobs were here: store it once they are.
  ManifestRecord cached = it->second;
  auto put = [meta, &repo, &cached] { return meta->PutManifest(repo, cached, std::nullopt); };
  if (Status st = co_await Offload(put); st.ok()) {
    manifests_.erase(key);
    manifest_order_.remove(key);
  }
  co_return cached;
}

void SiteCache::Remember(const std::string& key, const ManifestRecord& m) {
  if (manifests_.emplace(key, m).second) manifest_order_.push_back(key);
  while (manifests_.size() > options_.max_cached_manifests && !manifest_order_.empty()) {
    manifests_.erase(manifest_order_.front());
    manifest_order_.pop_front();
  }
}

awaitable<Result<ManifestRecord>> SiteCache::ManifestByDigest(std::string repo, Digest digest) {
  auto local = co_await LocalManifest(repo, digest);
  if (local || local.error().code() != Code::kNotFound) co_return local;
  auto got = co_await client_->GetManifest(Up(repo), digest.ToString());
  if (!got) {
    Fetches("manifest", "failed").Inc();
    co_return Err(UpstreamError(got.error(), "GET manifest " + repo + "@" + digest.ToString()));
  }
  auto info = ParseManifest(got->media_type, got->content);
  if (!info) {
    Fetches("manifest", "failed").Inc();
    co_return Err(UpstreamError(info.error(), "manifest " + digest.ToString() + " is invalid"));
  }
  ManifestRecord record = ManifestRecordOf(got->digest, std::move(got->content), std::move(*info),
                                           /*allow_foreign=*/true);
  MetaStore* meta = blobs_->context().meta;
  auto put = [meta, &repo, &record] { return meta->PutManifest(repo, record, std::nullopt); };
  Status st = co_await Offload(put);
  if (!st.ok()) Remember(repo + "@" + digest.ToString(), record);  // its blobs are not here yet
  Fetches("manifest", "fetched").Inc();
  co_return record;
}

awaitable<Result<ManifestRecord>> SiteCache::GetManifest(std::string repo, Reference ref) {
  if (ref.is_digest()) co_return co_await ManifestByDigest(repo, ref.digest);
  const std::string key = repo + ":" + ref.tag;
  MetaStore* meta = blobs_->context().meta;
  if (queue_) {
    // Pushed here and not shipped yet: this site's value is the newest there is.
    Result<bool> queued = co_await queue_->TagQueued(repo, ref.tag);
    if (queued && *queued) {
      auto local_tag = [meta, &repo, &ref] { return meta->ResolveTag(repo, ref.tag); };
      Result<Digest> d = co_await Offload(local_tag);
      if (d) co_return co_await LocalManifest(repo, *d);
    }
  }
  const auto now = std::chrono::steady_clock::now();
  auto it = tags_.find(key);
  if (it != tags_.end() && now - it->second.fetched < options_.tag_ttl) {
    co_return co_await ManifestByDigest(repo, it->second.digest);
  }
  auto head = co_await client_->HeadManifest(Up(repo), ref.tag);
  if (head) {
    tags_[key] = TagEntry{head->digest, now};
    co_return co_await ManifestByDigest(repo, head->digest);
  }
  if (head.error().code() == Code::kNotFound) {
    tags_.erase(key);
    co_return Err(head.error());
  }
  if (!options_.serve_stale_tags) {
    Fetches("tag", "failed").Inc();
    co_return Err(UpstreamError(head.error(), "HEAD manifest " + key));
  }
  // The upstream is down: the last tag we knew, else the one stored here, is served.
  log_->warn("site cache: upstream unreachable, serving the cached tag repo={} tag={} err={}", repo,
             ref.tag, head.error());
  Fetches("tag", "stale").Inc();
  if (it != tags_.end()) {
    auto m = co_await ManifestByDigest(repo, it->second.digest);
    if (m) co_return m;
  }
  auto resolve = [meta, &repo, &ref] { return meta->ResolveTag(repo, ref.tag); };
  Result<Digest> d = co_await Offload(resolve);
  if (d) {
    auto m = co_await LocalManifest(repo, *d);
    if (m) co_return m;
  }
  co_return Err(UpstreamError(head.error(), "HEAD manifest " + key));
}

awaitable<Result<uint64_t>> SiteCache::PushBlob(std::string repo, Digest digest) {
  auto local = co_await LocalBlob(repo, digest);
  if (!local) {
    co_return Err(Status(local.error().code(), "not stored here: " + local.error().message()));
  }
  std::shared_ptr<BlobReader> reader = std::move(*local);
  const uint64_t size = reader->size();
  BodyWriter body = [reader, size](ByteSink sink) -> awaitable<Status> {
    co_return co_await reader->Read(0, size, std::move(sink));
  };
  Result<bool> sent = co_await client_->PushBlob(Up(repo), digest, size, body);
  if (!sent) co_return Err(sent.error());
  co_return *sent ? size : 0;
}

awaitable<Status> SiteCache::PushManifest(std::string repo, std::string reference,
                                          ManifestRecord manifest) {
  auto put =
      co_await client_->PutManifest(Up(repo), reference, manifest.content, manifest.media_type);
  if (!put) co_return put.error();
  if (reference != manifest.digest.ToString()) {
    tags_[repo + ":" + reference] = TagEntry{manifest.digest, std::chrono::steady_clock::now()};
  }
  co_return Status::Ok();
}

awaitable<Status> SiteCache::DeleteManifest(std::string repo, std::string reference) {
  Status st = co_await client_->DeleteManifest(Up(repo), reference);
  tags_.erase(repo + ":" + reference);
  co_return st;
}

awaitable<Status> SiteCache::BlobStored(std::string repo, Digest digest) {
  const std::string key = digest.ToString();
  if (filling_.count(key) > 0) co_return Status::Ok();  // fetched from the upstream: it has it
  if (queue_) co_return co_await queue_->EnqueueBlob(std::move(repo), std::move(digest));
  auto pushed = co_await PushBlob(repo, digest);
  if (!pushed) {
    WriteThroughs("blob", "failed").Inc();
    log_->warn("site write-through failed repo={} digest={} err={}", repo, key, pushed.error());
    co_return UpstreamError(
        pushed.error(), "pushing blob " + key + " (stored at this site, not upstream: push again)");
  }
  WriteThroughs("blob", *pushed ? "pushed" : "present").Inc();
  co_return Status::Ok();
}

awaitable<Status> SiteCache::ManifestStored(std::string repo, std::optional<std::string> tag,
                                            ManifestRecord manifest) {
  if (queue_)
    co_return co_await queue_->EnqueueManifest(std::move(repo), std::move(tag),
                                               std::move(manifest));
  const std::string reference = tag ? *tag : manifest.digest.ToString();
  Status put = co_await PushManifest(repo, reference, manifest);
  if (!put.ok()) {
    WriteThroughs("manifest", "failed").Inc();
    log_->warn("site write-through failed repo={} manifest={} err={}", repo, reference, put);
    co_return UpstreamError(put, "pushing manifest " + repo + ":" + reference +
                                     " (stored at this site, not upstream: push again)");
  }
  WriteThroughs("manifest", "pushed").Inc();
  co_return Status::Ok();
}

}  // namespace wharf::upstream

#include "chunkserver/chunkserver.h"

#include <fcntl.h>

#include <nlohmann/json.hpp>

#include "chunkserver/local_chunk_store.h"
#include "chunkserver/validating_chunk_store.h"
#include "common/async.h"
#include "common/buffer_pool.h"
#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "common/version.h"
#include "http/cluster_auth.h"
#include "http/range.h"
#include "http/status_http.h"

namespace wharf {
namespace {

using json = nlohmann::json;
constexpr std::string_view kChunksPrefix = "/v1/chunks/";
constexpr size_t kPutBufferBytes = 4u << 20;
constexpr size_t kSmallPutBytes = 64u << 10;
constexpr char kTombstoneFile[] = "tombstones.log";
constexpr size_t kMaxTombstones = 1u << 20;

// Resolves the member id: the flag, else <first dir>/member_id, else a new one persisted there.
Result<std::string> ResolveMemberId(const ChunkserverOptions& o) {
  if (!o.id.empty()) return o.id;
  std::string path = o.dirs.front() + "/member_id";
  auto existing = ReadFile(path);
  if (existing) {
    std::string id = *existing;
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (!id.empty()) return id;
  } else if (existing.error().code() != Code::kNotFound) {
    return Err(existing.error());
  }
  std::string id = "cs-" + RandomHex(6);
  WHARF_RETURN_IF_ERROR(MakeDirs(o.dirs.front()));
  WHARF_RETURN_IF_ERROR(WriteFileAtomic(path, id + "\n"));
  return id;
}

// Reads and drops up to `limit` bytes of request body so the client sees our answer instead
// of a reset connection; past the limit the connection is closed after the answer.
awaitable<void> DiscardBody(Exchange& ex, uint64_t limit) {
  std::vector<char> sink(64 * 1024);
  uint64_t total = 0;
  while (total <= limit) {
    auto n = co_await ex.ReadSome(sink.data(), sink.size());
    if (!n || *n == 0) co_return;
    total += *n;
  }
  ex.CloseAfter();
}

struct BusyGuard {
  explicit BusyGuard(std::atomic<uint64_t>& b) : busy(b) { busy++; }
  ~BusyGuard() { busy--; }
  std::atomic<uint64_t>& busy;
};

}  // namespace

// This member's request counters, labelled with its id (several chunkservers may share a
// process under `wharf up`; each keeps its own series).
struct Chunkserver::Counters {
  explicit Counters(const Labels& l)
      : puts(Metrics().Counter("wharf_chunkserver_puts_total", "Chunks stored.", l)),
        put_bytes(Metrics().Counter("wharf_chunkserver_put_bytes_total", "Chunk bytes stored.", l)),
        puts_refused(Metrics().Counter("wharf_chunkserver_puts_refused_total",
                                       "Chunk puts refused (bad input, no space, ...).", l)),
        gets(Metrics().Counter("wharf_chunkserver_gets_total", "Chunk reads served.", l)),
        get_bytes(Metrics().Counter("wharf_chunkserver_get_bytes_total", "Chunk bytes served.", l)),
        deletes(Metrics().Counter("wharf_chunkserver_deletes_total", "Chunks deleted.", l)) {}
  CounterMetric& puts;
  CounterMetric& put_bytes;
  CounterMetric& puts_refused;
  CounterMetric& gets;
  CounterMetric& get_bytes;
  CounterMetric& deletes;
};

Chunkserver::Chunkserver(asio::any_io_executor ex, ChunkserverOptions options)
    : ex_(ex), options_(std::move(options)), log_(GetLogger("chunkserver")) {}

Chunkserver::~Chunkserver() { Stop(); }

std::string Chunkserver::address() const { return addr_; }

Status Chunkserver::Start() {
  if (options_.group.empty()) return InvalidArgument("--group is required");
  if (options_.dirs.empty()) return InvalidArgument("at least one --dir is required");
  if (options_.masters.empty()) return InvalidArgument("at least one --master is required");
  if (auto hp = SplitHostPort(options_.listen); !hp) return hp.error();
  for (const auto& m : options_.masters) {
    if (auto hp = SplitHostPort(m); !hp) return hp.error();
  }
  WHARF_ASSIGN_OR_RETURN(options_.id, ResolveMemberId(options_));
  LocalChunkStore::Options so;
  so.dirs = options_.dirs;
  so.reserve = options_.reserve;
  so.max_chunk_bytes = options_.max_chunk_bytes;
  so.sync = options_.sync;
  if (!options_.direct_io) so.direct_io_min_bytes = 0;
  so.metric_labels = {{"member", options_.id}};
  counters_ = std::make_unique<Counters>(so.metric_labels);
  Metrics()
      .Gauge("wharf_chunkserver_chunks_missing",
             "Chunks its peers hold that this member lacks (last anti-entropy round, minus "
             "those pulled since); 0 in steady state.",
             so.metric_labels)
      .Set(0);
  WHARF_ASSIGN_OR_RETURN(auto store, LocalChunkStore::Open(so));
  store_ = std::make_unique<ValidatingChunkStore>(std::move(store), so.metric_labels);
  tombstones_ = std::make_unique<Tombstones>(options_.tombstone_ttl, kMaxTombstones);
  const std::string tombstone_path = options_.dirs.front() + "/" + kTombstoneFile;
  auto loaded = tombstones_->Open(tombstone_path, Tombstones::Clock::now());
  if (!loaded) return loaded.error();
  if (loaded->skipped > 0) {
    log_->warn("tombstones: skipped damaged records path={} skipped={}", tombstone_path,
               loaded->skipped);
  }
  log_->info("tombstones loaded live={} expired={}", loaded->loaded, loaded->expired);
  ServerOptions hs;
  hs.component = "chunkserver";
  hs.metric_labels = so.metric_labels;
  BuildRouter();
  server_ = std::make_unique<Server>(ex_, hs, router_->AsHandler());
  WHARF_RETURN_IF_ERROR(server_->Listen(options_.listen));
  addr_ = options_.advertise.empty() ? server_->local_address() : options_.advertise;
  // The cluster-key filter, now that the bound address (its names) is known; before serving.
  if (options_.cluster_key) {
    ClusterAuthFilter::Options ao;
    ao.component = "chunkserver";
    ao.metric_labels = {{"member", options_.id}};
    ao.body_checked_by_handler = {"chunk_put"};  // HandlePut checks the data against it
    ao.verifier.names =
        ReceiverNames(server_->local_address(), {options_.listen, options_.advertise});
    router_->AddFilter(std::make_shared<ClusterAuthFilter>(options_.cluster_key, ao));
  }
  WHARF_RETURN_IF_ERROR(LoadRoster());
  server_->Start();
  log_->info("chunkserver listening id={} group={} addr={} chunks={} dirs={}", options_.id,
             options_.group, addr_, store_->Count(), options_.dirs.size());
  heartbeat_wake_.emplace(ex_);
  asio::co_spawn(ex_, HeartbeatLoop(), asio::detached);
  asio::co_spawn(ex_, CatchUp(), asio::detached);
  asio::co_spawn(ex_, ScrubLoop(), asio::detached);
  asio::co_spawn(ex_, RepairLoop(), asio::detached);
  serving_.store(true, std::memory_order_release);
  return Status::Ok();
}

Result<OpenChunk> Chunkserver::OpenLocal(const std::string& id) {
  if (!serving()) return Err(Unavailable("member " + options_.id + " is not serving"));
  return store_->Open(id);  // store_ is set before serving_ and kept until destruction
}

void Chunkserver::Stop() {
  serving_.store(false, std::memory_order_release);
  stopped_ = true;
  if (server_) server_->Stop();
}

void Chunkserver::BuildRouter() {
  using V = http::verb;
  // Unknown paths, and other methods on /v1/chunks and /v1/status, get 404; /v1/chunks/{id}
  // answers 405 with Allow for methods it does not take (after checking the id).
  Router::Options ro{.component = "chunkserver", .answer_405 = false};
  ro.metric_labels = {{"member", options_.id}};
  router_ = std::make_unique<Router>(std::move(ro));
  AddOpsRoutes(*router_, [this] { return store_->Health(); });
  // Requests other than /healthz and /metrics count as load in heartbeats (busy_).
  auto busy = [this](auto fn) {
    return [this, fn](Exchange& ex) -> awaitable<void> {
      BusyGuard guard(busy_);
      co_await fn(ex);
    };
  };
  auto chunk = [this, busy](ChunkOp op) {
    return busy([this, op](Exchange& ex) { return ServeChunk(ex, op); });
  };
  const PathMatch chunk_path = PathMatch::Prefix(std::string(kChunksPrefix));
  router_->Add({"chunk_get", {V::get, V::head}, chunk_path, chunk(&Chunkserver::HandleGet)});
  router_->Add({"chunk_put", {V::put}, chunk_path, chunk(&Chunkserver::HandlePut)});
  router_->Add({"chunk_delete", {V::delete_}, chunk_path, chunk(&Chunkserver::HandleDelete)});
  router_->Add({"chunk", {}, chunk_path, chunk(nullptr)});
  router_->Add({"chunk_list", {V::get}, PathMatch::Exact("/v1/chunks"), busy([this](Exchange& ex) {
                  return HandleList(ex);
                })});
  router_->Add({"status", {V::get}, PathMatch::Exact("/v1/status"), busy([this](Exchange& ex) {
                  return HandleStatus(ex);
                })});
  router_->Add({"digests", {V::get}, PathMatch::Exact("/v1/digests"), busy([this](Exchange& ex) {
                  return HandleDigests(ex);
                })});
}

awaitable<void> Chunkserver::ServeChunk(Exchange& ex, ChunkOp op) {
  std::string id(ex.path().substr(kChunksPrefix.size()));
  if (!ValidChunkId(id)) {
    co_await RespondError(ex, InvalidArgument("chunk id must be 32 lowercase hex characters"));
    co_return;
  }
  if (!op) {
    ex.AddHeader("Allow", "GET, HEAD, PUT, DELETE");
    (void)co_await ex.Respond(http::status::method_not_allowed, "");
    co_return;
  }
  co_await (this->*op)(ex, std::move(id));
}

awaitable<void> Chunkserver::HandlePut(Exchange& ex, std::string id) {
  auto& puts = counters_->puts;
  auto& put_bytes = counters_->put_bytes;
  auto& refused = counters_->puts_refused;
  auto checksum = ParseChecksum(ex.header("X-Wharf-Checksum"));
  auto size = ex.content_length();
  Status st;
  if (syncing_)
    st = Unavailable("member is syncing from its peers");
  else if (!checksum)
    st = InvalidArgument("X-Wharf-Checksum: xxh3:<16 hex> is required");
  else if (!size)
    st = InvalidArgument("Content-Length is required");
  if (!st.ok()) {
    refused.Inc();
    co_await RespondError(ex, st);
    co_return;
  }
  if (auto have = store_->Stat(id); have && have->size == *size && have->checksum == *checksum) {
    co_await DiscardBody(ex, *size);  // idempotent re-put: the same content is already durable
    (void)co_await ex.Respond(http::status::ok, "{}");
    co_return;
  }
  auto begin = [this, id, n = *size, c = *checksum] { return store_->BeginWrite(id, n, c); };
  auto begun = co_await Offload(begin);
  if (!begun) {
    refused.Inc();
    if (begun.error().code() == Code::kNoSpace) {
      log_->warn("put refused: under reserve chunk={} size={} request_id={}", id, *size,
                 ex.request_id());
    }
    co_await DiscardBody(ex, 8u << 20);
    co_await RespondError(ex, begun.error());
    co_return;
  }
  std::shared_ptr<ChunkWriter> writer = std::move(*begun);
  // A body buffer from the shared pool (mapped once, never zero-filled); a small chunk gets a
  // small one of its own.
  PooledBuffer pooled;
  std::string small;
  char* buf;
  size_t buf_size;
  if (*size > kSmallPutBytes) {
    pooled = co_await SharedBufferPool(kPutBufferBytes).Acquire();
    if (!pooled) {
      co_await RespondError(ex, Internal("no memory for the body buffer"));
      co_return;
    }
    buf = pooled.data();
    buf_size = std::min<uint64_t>(kPutBufferBytes, *size);
  } else {
    small.resize(std::max<uint64_t>(*size, 1));
    buf = small.data();
    buf_size = small.size();
  }
  for (;;) {
    size_t filled = 0;
    while (filled < buf_size) {
      auto n = co_await ex.ReadSome(buf + filled, buf_size - filled);
      if (!n) {
        st = n.error();
        break;
      }
      if (*n == 0) break;
      filled += *n;
    }
    if (!st.ok()) break;
    if (filled > 0) {
      auto append = [writer, p = buf, filled] { return writer->Append(p, filled); };
      st = co_await Offload(append);
      if (!st.ok()) break;
    }
    if (filled < buf_size) break;  // end of body
  }
  auto commit = [writer] { return writer->Commit(); };
  if (st.ok()) st = co_await Offload(commit);
  // A writer that did not commit unlinks its temp file when released (failure path only).
  if (!st.ok()) {
    refused.Inc();
    if (st.code() == Code::kCancelled) {
      st = InvalidArgument("request body shorter than its Content-Length: " + st.message());
    } else {
      log_->warn("put failed chunk={} err={} request_id={}", id, st, ex.request_id());
    }
    co_await RespondError(ex, st);
    co_return;
  }
  puts.Inc();
  put_bytes.Inc(*size);
  (void)co_await ex.Respond(http::status::created, "{}");
}

awaitable<void> Chunkserver::HandleGet(Exchange& ex, std::string id) {
  auto& gets = counters_->gets;
  auto& get_bytes = counters_->get_bytes;
  auto open = [this, id] { return store_->Open(id); };
  auto opened = co_await Offload(open);
  if (!opened) {
    co_await RespondError(ex, opened.error());
    co_return;
  }
  auto chunk = std::make_shared<OpenChunk>(std::move(*opened));
  const uint64_t size = chunk->size();
  ex.AddHeader("X-Wharf-Checksum", FormatChecksum(chunk->checksum()));
  ex.AddHeader("Accept-Ranges", "bytes");
  ByteRange range{0, size == 0 ? 0 : size - 1};
  bool partial = false;
  if (auto h = ex.header(http::field::range); !h.empty()) {
    auto parsed = ParseRangeHeader(h, size);
    if (!parsed) {
      ex.AddHeader("Content-Range", FormatUnsatisfiedRange(size));
      co_await RespondError(ex, parsed.error());
      co_return;
    }
    if (*parsed) {
      range = **parsed;
      partial = true;
      ex.AddHeader("Content-Range", FormatContentRange(range, size));
    }
  }
  uint64_t len = size == 0 ? 0 : range.length();
  Status st =
      co_await ex.BeginResponse(partial ? http::status::partial_content : http::status::ok, len);
  if (st.ok() && len > 0 && ex.method() == http::verb::get) {
    // Pull the range into the page cache on the pool, so sendfile on the loop rarely waits.
    auto prefetch = [chunk, off = chunk->data_offset() + range.first, len] {
      ::posix_fadvise(chunk->fd(), static_cast<off_t>(off), static_cast<off_t>(len),
                      POSIX_FADV_WILLNEED);
      ::readahead(chunk->fd(), static_cast<off64_t>(off), len);
    };
    co_await Offload(prefetch);
    st = co_await ex.SendFile(chunk->fd(), chunk->data_offset() + range.first, len);
    if (st.ok()) {
      gets.Inc();
      get_bytes.Inc(len);
    }
  }
}

awaitable<void> Chunkserver::HandleDelete(Exchange& ex, std::string id) {
  auto& deletes = counters_->deletes;
  // Remembered whether or not the chunk was here, durably before the chunk goes: a peer that
  // still has it is being deleted too (GC deletes from every member), and neither anti-entropy
  // nor a catch-up after a restart may copy it back meanwhile.
  auto remove = [this, id]() -> Status {
    Status remembered = tombstones_->Add(id, Tombstones::Clock::now());
    if (!remembered.ok()) return remembered;
    return store_->Delete(id);
  };
  Status st = co_await Offload(remove);
  if (!st.ok()) {
    co_await RespondError(ex, st);
    co_return;
  }
  deletes.Inc();
  (void)co_await ex.Respond(http::status::no_content);
}

awaitable<void> Chunkserver::HandleList(Exchange& ex) {
  std::string after = ex.query("after").value_or("");
  size_t limit = 1000;
  if (auto l = ex.query("limit")) {
    char* end = nullptr;
    unsigned long v = std::strtoul(l->c_str(), &end, 10);
    if (l->empty() || *end != '\0' || v == 0 || v > 10000) {
      co_await RespondError(ex, InvalidArgument("limit must be 1..10000"));
      co_return;
    }
    limit = v;
  }
  auto page = store_->List(after, limit + 1);  // from memory
  if (!page) {
    co_await RespondError(ex, page.error());
    co_return;
  }
  json chunks = json::array();
  json next = nullptr;
  for (size_t i = 0; i < page->size() && i < limit; ++i) {
    const auto& c = (*page)[i];
    chunks.push_back({{"id", c.id},
                      {"size", c.size},
                      {"checksum", FormatChecksum(c.checksum)},
                      {"mtime", c.mtime_unix}});
  }
  if (page->size() > limit) next = (*page)[limit - 1].id;
  json body = {{"chunks", std::move(chunks)}, {"next", next}};
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

awaitable<void> Chunkserver::HandleStatus(Exchange& ex) {
  auto get_space = [this] { return store_->Space(); };
  auto space = co_await Offload(get_space);
  SpaceInfo s = space ? *space : SpaceInfo{};
  json body = {{"id", options_.id},
               {"group", options_.group},
               {"addr", addr_},
               {"state", ReportedState(space)},
               {"capacity", s.capacity},
               {"free", s.free},
               {"reserve", s.reserve_bytes},
               {"chunks", store_->Count()},
               {"missing", missing_.load()},
               {"roster", RosterToJson(RosterEntries())},
               {"wharf_version", WharfVersion()}};
  ex.AddHeader("X-Wharf-Version", std::string(WharfVersion()));
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

}  // namespace wharf

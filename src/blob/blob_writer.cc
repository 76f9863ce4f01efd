#include "blob/blob_writer.h"

#include <algorithm>
#include <optional>
#include <set>

#include "common/async.h"
#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/fs.h"
#include "common/metrics.h"

namespace wharf {
namespace {

// Waits on `timer` until `ready()` holds. The gateway's executor is single-threaded, so a
// notifier only has to cancel the timer after changing the state.
// `ready` must capture only trivially copyable things (raw pointers, numbers): GCC 12 may
// destroy a bitwise copy of a lambda passed to a coroutine, which would double-release a
// captured shared_ptr.
template <typename Pred>
awaitable<void> WaitUntil(asio::steady_timer& timer, Pred ready) {
  while (!ready()) {
    timer.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

// One chunk-sized piece of the stream. Shared between the writer and the task writing it, so
// a writer destroyed early (client gone) never leaves a task pointing at freed memory.
struct BlobWriter::Piece {
  explicit Piece(asio::any_io_executor ex) : hashed_timer(ex) {}
  size_t index = 0;
  std::string data;
  ChunkRef ref;
  Status status;
  bool hashed = false;
  bool done = false;
  asio::steady_timer hashed_timer;
  std::shared_ptr<Piece> prev;  // hashed before this one (SHA-256 is sequential)
};

struct BlobWriter::Shared {
  Shared(const BlobContext& c, std::string id, Hasher h)
      : ctx(c), upload_id(std::move(id)), hasher(std::move(h)), wake(c.ex) {}
  BlobContext ctx;
  std::string upload_id;
  Hasher hasher;
  size_t pending = 0;  // pieces spawned and not done
  Status error;        // the first failure; sticky
  bool abandoned = false;
  asio::steady_timer wake;  // cancelled whenever a piece is done
};

BlobWriter::BlobWriter(const BlobContext& ctx, std::string upload_id, Hasher hasher)
    : shared_(std::make_shared<Shared>(ctx, std::move(upload_id), std::move(hasher))) {}

BlobWriter::~BlobWriter() {
  if (handed_over_ || pieces_.empty()) return;
  shared_->abandoned = true;
  asio::co_spawn(shared_->ctx.ex, ReleaseAbandoned(shared_, std::move(pieces_)), asio::detached);
}

Hasher& BlobWriter::hasher() { return shared_->hasher; }

awaitable<void> BlobWriter::ReleaseAbandoned(std::shared_ptr<Shared> shared,
                                             std::vector<std::shared_ptr<Piece>> pieces) {
  Shared* s = shared.get();
  co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
  std::vector<std::string> ids;
  for (const auto& p : pieces) {
    if (!p->ref.id.empty()) ids.push_back(p->ref.id);
  }
  if (ids.empty()) co_return;
  MetaStore* meta = s->ctx.meta;
  auto release = [meta, ids] { return meta->ReleaseChunks(ids); };
  Status st = co_await Offload(release);
  if (!st.ok()) {
    s->ctx.log->warn("release of an abandoned upload's chunks failed upload={} err={}",
                     s->upload_id, st);
  }
}

awaitable<Status> BlobWriter::Write(const void* data, size_t n) {
  const uint64_t chunk = shared_->ctx.chunk_size;
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    if (!shared_->error.ok()) co_return shared_->error;
    size_t take = std::min<uint64_t>(n, chunk - current_.size());
    // Small blobs (the common registry case) get a small buffer; past 64 KiB, the whole chunk
    // at once, so a large piece is never copied by regrowth.
    const size_t need = current_.size() + take;
    if (need > current_.capacity()) current_.reserve(need <= (64u << 10) ? (64u << 10) : chunk);
    current_.append(p, take);
    p += take;
    n -= take;
    bytes_ += take;
    if (current_.size() == chunk) WHARF_CO_RETURN_IF_ERROR(co_await Dispatch());
  }
  co_return shared_->error;
}

awaitable<Status> BlobWriter::WaitForSlot(size_t max_pending) {
  Shared* s = shared_.get();
  co_await WaitUntil(s->wake, [s, max_pending] { return s->pending <= max_pending; });
  co_return s->error;
}

awaitable<Status> BlobWriter::Dispatch() {
  // Back-pressure: at most max_inflight pieces in flight, so memory stays bounded.
  WHARF_CO_RETURN_IF_ERROR(co_await WaitForSlot(shared_->ctx.max_inflight_chunks - 1));
  auto piece = std::make_shared<Piece>(shared_->ctx.ex);
  piece->index = pieces_.size();
  piece->data = std::move(current_);
  current_ = std::string();
  if (!pieces_.empty()) piece->prev = pieces_.back();
  pieces_.push_back(piece);
  ++shared_->pending;
  asio::co_spawn(shared_->ctx.ex, RunPiece(shared_, piece), asio::detached);
  co_return Status::Ok();
}

awaitable<void> BlobWriter::RunPiece(std::shared_ptr<Shared> shared, std::shared_ptr<Piece> piece) {
  static auto& chunks_written = Metrics().Counter("wharf_gateway_chunks_written_total",
                                                  "Chunks durably written to a whole group.");
  static auto& retries = Metrics().Counter("wharf_gateway_chunk_write_retries_total",
                                           "Chunk writes retried on another group.");
  // 1. Hash, in stream order: wait for the previous piece, then SHA-256 + XXH3 on the pool.
  if (piece->prev) {
    auto prev = piece->prev;  // keeps it alive while we wait
    Piece* pp = prev.get();
    co_await WaitUntil(prev->hashed_timer, [pp] { return pp->hashed; });
    piece->prev.reset();
  }
  Shared& w = *shared;  // `shared` keeps it alive for the whole piece
  const BlobContext& ctx = w.ctx;
  Hasher* hasher = &w.hasher;
  auto hash = [hasher, piece] {
    hasher->Update(piece->data.data(), piece->data.size());
    return ChecksumOf(piece->data.data(), piece->data.size());
  };
  uint64_t checksum = co_await Offload(hash);
  piece->hashed = true;
  piece->hashed_timer.cancel();
  // 2. Write to every member of a writable group; on a member failure, another group.
  std::set<std::string, std::less<>> exclude;
  Status st = Unavailable("no writable group");
  const ChunkOwner owner = ChunkOwner::Upload(w.upload_id);
  std::optional<std::chrono::steady_clock::time_point> wait_deadline;
  for (int attempt = 0; attempt < ctx.cluster->max_write_attempts(); ++attempt) {
    if (w.abandoned) {  // the writer is gone: nobody would list this chunk
      st = Cancelled("upload writer abandoned");
      break;
    }
    auto group = ctx.cluster->ChooseGroup(piece->data.size(), exclude);
    if (!group && exclude.empty()) {
      // No group is writable at all (members starting or catching up, a group just
      // filled): wait a bounded time for one; waiting is not an attempt.
      const auto now = std::chrono::steady_clock::now();
      if (!wait_deadline) wait_deadline = now + ctx.writable_wait;
      if (now < *wait_deadline) {
        st = group.error();
        (void)co_await ctx.cluster->Refresh(ctx.request_id);
        co_await SleepFor(std::chrono::milliseconds(200));
        --attempt;
        continue;
      }
    }
    if (!group) {
      st = group.error();
      if (attempt + 1 < ctx.cluster->max_write_attempts()) {
        (void)co_await ctx.cluster->Refresh(ctx.request_id);
        exclude.clear();
        co_await SleepFor(std::chrono::milliseconds(500));
        continue;
      }
      break;
    }
    GroupInfo target = std::move(*group);  // a copy: the map may be refreshed while we write
    ChunkRef ref;
    ref.group = target.id;
    ref.id = NewChunkId();
    ref.size = piece->data.size();
    ref.checksum = checksum;
    std::vector<ChunkRef> refs;
    refs.push_back(ref);
    MetaStore* meta = ctx.meta;
    auto record = [meta, owner, refs] { return meta->RecordChunks(owner, refs); };
    st = co_await Offload(record);  // intent first: a crash leaves a collectable chunk
    if (!st.ok()) break;
    st = co_await ctx.cluster->PutChunkToGroup(target, ref, piece->data, ctx.request_id);
    if (st.ok()) {
      piece->ref = ref;
      chunks_written.Inc();
      break;
    }
    // The copies that did land are garbage now; the collector deletes them.
    std::vector<std::string> ids;
    ids.push_back(ref.id);
    auto release = [meta, ids] { return meta->ReleaseChunks(ids); };
    (void)co_await Offload(release);
    exclude.insert(target.id);
    retries.Inc();
    ctx.log->warn("chunk write failed, trying another group upload={} group={} err={}", w.upload_id,
                  target.id, st);
  }
  piece->status = st;
  if (!st.ok() && w.error.ok()) w.error = st;
  std::string().swap(piece->data);  // free the buffer now (assignment would keep it)
  piece->done = true;
  --w.pending;
  w.wake.cancel();
}

awaitable<Result<std::vector<ChunkRef>>> BlobWriter::Finish() {
  Shared* s = shared_.get();
  if (!current_.empty() && s->error.ok()) (void)co_await Dispatch();
  co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
  if (!s->error.ok()) co_return Err(s->error);
  std::vector<ChunkRef> refs;
  refs.reserve(pieces_.size());
  for (const auto& p : pieces_) refs.push_back(p->ref);
  handed_over_ = true;
  co_return refs;
}

awaitable<Status> BlobWriter::WriteFrom(ByteSource& source) {
  // Sized to the body when it is small: a zero-filled 1 MiB per 4 KiB push is waste.
  const uint64_t announced = source.size_hint().value_or(1u << 20);
  std::vector<char> buf(std::clamp<uint64_t>(announced, 4096, 1u << 20));
  for (;;) {
    auto n = co_await source.Read(buf.data(), buf.size());
    Shared* s = shared_.get();
    if (!n) {
      s->error = s->error.ok() ? n.error() : s->error;
      co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
      co_return n.error();
    }
    if (*n == 0) break;
    Status st = co_await Write(buf.data(), *n);
    if (!st.ok()) {
      co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
      co_return st;
    }
  }
  co_return Status::Ok();
}

awaitable<Status> ReadChunks(const BlobContext& ctx, const std::vector<ChunkRef>& chunks,
                             uint64_t offset, uint64_t len, const ByteSink& sink) {
  // Whole chunks are fetched (so every copy is verified against its checksum) and sliced.
  // The next chunks are fetched while the current one is sent.
  struct Fetch {
    explicit Fetch(asio::any_io_executor ex) : timer(ex) {}
    bool done = false;
    Result<std::string> data = std::string();
    asio::steady_timer timer;
  };
  auto start = [&ctx](const ChunkRef& ref) {
    auto f = std::make_shared<Fetch>(ctx.ex);
    asio::co_spawn(ctx.ex, ctx.cluster->GetChunk(ref, 0, ref.size, ctx.request_id),
                   [f](std::exception_ptr e, Result<std::string> r) {
                     f->data =
                         e ? Result<std::string>(Err(Internal("chunk fetch threw"))) : std::move(r);
                     f->done = true;
                     f->timer.cancel();
                   });
    return f;
  };
  // Chunks [i, j) are being fetched; up to kReadAhead beyond the one being sent, and since
  // ReadOrder rotates over the active members, consecutive chunks come from different ones.
  constexpr size_t kReadAhead = 2;
  struct Pending {
    std::shared_ptr<Fetch> fetch;
    uint64_t start;  // offset of the chunk in the object
    size_t index;
  };
  std::deque<Pending> inflight;
  uint64_t pos = 0;
  size_t j = 0;
  while (j < chunks.size() && pos + chunks[j].size <= offset) pos += chunks[j++].size;
  const uint64_t end = offset + len;
  auto fill = [&] {
    while (inflight.size() < kReadAhead && j < chunks.size() && pos < end && len > 0) {
      inflight.push_back(Pending{start(chunks[j]), pos, j});
      pos += chunks[j].size;
      ++j;
    }
  };
  Status result;
  fill();
  while (!inflight.empty()) {
    Pending cur = inflight.front();
    inflight.pop_front();
    Fetch* c = cur.fetch.get();
    co_await WaitUntil(c->timer, [c] { return c->done; });
    if (!c->data) {
      result = c->data.error();
      break;
    }
    const ChunkRef& ref = chunks[cur.index];
    uint64_t from = offset > cur.start ? offset - cur.start : 0;
    uint64_t to = std::min<uint64_t>(ref.size, end - cur.start);
    std::string data = std::move(*c->data);
    cur.fetch.reset();  // free the fetch before sending; `data` holds the bytes
    fill();
    result = co_await sink(std::string_view(data).substr(from, to - from));
    if (!result.ok()) break;
  }
  // Never leave a fetch running against this frame's chunk list.
  for (auto& p : inflight) {
    Fetch* f = p.fetch.get();
    co_await WaitUntil(f->timer, [f] { return f->done; });
  }
  co_return result;
}

}  // namespace wharf

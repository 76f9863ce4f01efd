#include "blob/blob_writer.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "common/async.h"
#include "common/buffer_pool.h"
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
  // The bytes: a small piece in `small`, a larger one in a pooled chunk buffer.
  std::string small;
  PooledBuffer big;
  size_t size = 0;
  size_t prehashed = 0;  // leading bytes the hasher covers already (BlobWriter::Prefill)
  std::string_view bytes() const {
    return big ? std::string_view(big.data(), size) : std::string_view(small);
  }
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

awaitable<Status> BlobWriter::Promote() {
  BufferPool* pool = shared_->ctx.chunk_buffers;
  if (pool == nullptr) pool = &SharedBufferPool(shared_->ctx.chunk_size);
  PooledBuffer buf = co_await pool->Acquire();
  if (!buf) co_return Internal("no memory for a chunk buffer");
  std::memcpy(buf.data(), current_.data(), current_.size());
  filled_ = current_.size();
  std::string().swap(current_);
  big_ = std::move(buf);
  co_return Status::Ok();
}

bool BlobWriter::WantsPool(size_t more) const {
  if (big_ || shared_->ctx.chunk_size <= kSmallPieceBytes) return false;
  return !pieces_.empty() || current_.size() + more > kSmallPieceBytes;
}

awaitable<Status> BlobWriter::Write(const void* data, size_t n) {
  const uint64_t chunk = shared_->ctx.chunk_size;
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    if (!shared_->error.ok()) co_return shared_->error;
    if (WantsPool(n)) WHARF_CO_RETURN_IF_ERROR(co_await Promote());
    const size_t fill = big_ ? filled_ : current_.size();
    const size_t take = std::min<uint64_t>(n, chunk - fill);
    if (big_) {
      std::memcpy(big_.data() + filled_, p, take);
      filled_ += take;
    } else {
      // Small blobs (the common registry case) stay in a small string.
      if (current_.capacity() < fill + take) {
        current_.reserve(std::max({fill + take, 2 * current_.capacity(), size_t{4096}}));
      }
      current_.append(p, take);
    }
    p += take;
    n -= take;
    bytes_ += take;
    if (fill + take == chunk) WHARF_CO_RETURN_IF_ERROR(co_await Dispatch());
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
  if (big_) {
    piece->big = std::move(big_);
    piece->size = filled_;
    filled_ = 0;
  } else {
    piece->small = std::move(current_);
    piece->size = piece->small.size();
    current_ = std::string();
  }
  piece->prehashed = static_cast<size_t>(std::min<uint64_t>(prehashed_left_, piece->size));
  prehashed_left_ -= piece->prehashed;
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
    const std::string_view b = piece->bytes();
    hasher->Update(b.data() + piece->prehashed, b.size() - piece->prehashed);
    return ChecksumOf(b.data(), b.size());
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
    auto group = ctx.cluster->ChooseGroup(piece->size, exclude);
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
    ref.size = piece->size;
    ref.checksum = checksum;
    std::vector<ChunkRef> refs;
    refs.push_back(ref);
    MetaStore* meta = ctx.meta;
    auto record = [meta, owner, refs] { return meta->RecordChunks(owner, refs); };
    st = co_await Offload(record);  // intent first: a crash leaves a collectable chunk
    if (!st.ok()) break;
    st = co_await ctx.cluster->PutChunkToGroup(target, ref, piece->bytes(), ctx.request_id);
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
  std::string().swap(piece->small);  // free the bytes now (assignment would keep them)
  piece->big.Release();              // back to the pool for the next piece
  piece->done = true;
  --w.pending;
  w.wake.cancel();
}

awaitable<Result<std::vector<ChunkRef>>> BlobWriter::Finish() {
  co_return co_await FinishKeepingTail(0, nullptr);
}

awaitable<Status> BlobWriter::Prefill(std::string_view prehashed) {
  prehashed_left_ += prehashed.size();
  const uint64_t before = bytes_;
  Status st = co_await Write(prehashed.data(), prehashed.size());
  bytes_ = before;
  co_return st;
}

awaitable<Result<std::vector<ChunkRef>>> BlobWriter::FinishKeepingTail(size_t max_tail,
                                                                       std::string* tail) {
  Shared* s = shared_.get();
  const size_t fill = big_ ? filled_ : current_.size();
  bool kept = false;
  if (tail != nullptr && fill > 0 && fill <= max_tail && s->error.ok()) {
    tail->assign(big_ ? big_.data() : current_.data(), fill);
    big_.Release();
    filled_ = 0;
    std::string().swap(current_);
    kept = true;
  } else if (fill > 0 && s->error.ok()) {
    (void)co_await Dispatch();
  }
  co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
  if (!s->error.ok()) co_return Err(s->error);
  if (kept) {
    // Every piece is hashed by now: the tail comes last in the stream.
    const size_t skip = static_cast<size_t>(std::min<uint64_t>(prehashed_left_, tail->size()));
    prehashed_left_ -= skip;
    Hasher* hasher = &s->hasher;
    const std::string* t = tail;
    auto hash = [hasher, t, skip] { hasher->Update(t->data() + skip, t->size() - skip); };
    co_await Offload(hash);
  }
  std::vector<ChunkRef> refs;
  refs.reserve(pieces_.size());
  for (const auto& p : pieces_) refs.push_back(p->ref);
  handed_over_ = true;
  co_return refs;
}

awaitable<Status> BlobWriter::MarkProgress() {
  const auto every = shared_->ctx.touch_every;
  const auto now = std::chrono::steady_clock::now();
  if (every.count() <= 0 || now - last_touch_ < every) co_return Status::Ok();
  last_touch_ = now;
  MetaStore* meta = shared_->ctx.meta;
  const std::string id = shared_->upload_id;
  auto touch = [meta, id] { return meta->TouchUpload(id); };
  Status st = co_await Offload(touch);
  if (st.code() == Code::kNotFound) {
    co_return Unavailable("upload " + id + " was collected while it was being written");
  }
  if (!st.ok()) {  // a store hiccup: the next touch may work, the upload goes on
    shared_->ctx.log->warn("upload touch failed upload={} err={}", id, st);
  }
  co_return Status::Ok();
}

awaitable<Status> BlobWriter::WriteFrom(ByteSource& source) {
  // A large body is read straight into pooled chunk buffers (no copy); a small one through a
  // buffer sized to it (a zero-filled 1 MiB per 4 KiB push is waste).
  const uint64_t announced = source.size_hint().value_or(kSmallPieceBytes);
  const uint64_t chunk = shared_->ctx.chunk_size;
  std::vector<char> staging;
  MemoryGrant small_memory;  // of the staging buffer and the small piece, under a budget
  for (;;) {
    Shared* s = shared_.get();
    if (!s->error.ok()) break;
    if (WantsPool(announced)) {
      Status st = co_await Promote();
      if (!st.ok()) {
        s->error = s->error.ok() ? st : s->error;
        break;
      }
    }
    char* dst;
    size_t room;
    if (big_) {
      dst = big_.data() + filled_;
      room = chunk - filled_;
    } else {
      if (staging.empty()) {
        const size_t n = std::clamp<uint64_t>(announced, 4096, kSmallPieceBytes);
        if (MemoryBudget* m = shared_->ctx.memory) {
          small_memory = co_await m->TakeBelow(2 * n, m->limit() / 2);
        }
        staging.resize(n);
      }
      dst = staging.data();
      room = staging.size();
    }
    auto n = co_await source.Read(dst, room);
    if (!n) {
      s->error = s->error.ok() ? n.error() : s->error;
      co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
      co_return n.error();
    }
    if (*n == 0) break;
    Status st = co_await MarkProgress();
    if (!st.ok()) {
      s->error = s->error.ok() ? st : s->error;
      co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
      co_return st;
    }
    if (big_) {
      filled_ += *n;
      bytes_ += *n;
      if (filled_ == chunk) st = co_await Dispatch();
    } else {
      st = co_await Write(dst, *n);
    }
    if (!st.ok()) {
      co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
      co_return st;
    }
  }
  Shared* s = shared_.get();
  if (!s->error.ok()) {
    co_await WaitUntil(s->wake, [s] { return s->pending == 0; });
    co_return s->error;
  }
  co_return Status::Ok();
}

awaitable<Status> ReadChunks(const BlobContext& ctx, const std::vector<ChunkRef>& chunks,
                             uint64_t offset, uint64_t len, const ByteSink& sink) {
  // Each chunk is streamed from a member as its bytes arrive (verified on the way, the tail
  // held back until verified: ChunkCluster::StreamChunk), one chunk after the other. This
  // replaced whole-chunk store-and-forward with read-ahead: a 16 MiB buffer per chunk in
  // flight cost page faults and cache misses, and delayed the first byte by a whole chunk.
  // For a sink that takes files, the next chunk is prepared (a local copy verified) while
  // the current one is sent (ChunkCluster::PrepareRead).
  struct Part {
    const ChunkRef* ref;
    uint64_t from, to;
  };
  std::vector<Part> parts;
  uint64_t pos = 0;
  const uint64_t end = offset + len;
  for (const ChunkRef& ref : chunks) {
    if (len == 0 || pos >= end) break;
    const uint64_t start = pos;
    pos += ref.size;
    if (pos <= offset) continue;
    const uint64_t from = offset > start ? offset - start : 0;
    parts.push_back(Part{&ref, from, std::min<uint64_t>(ref.size, end - start)});
  }
  std::shared_ptr<PreparedRead> next;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::shared_ptr<PreparedRead> prepared = std::move(next);
    if (i + 1 < parts.size() && sink.takes_files()) {
      next = ctx.cluster->PrepareRead(*parts[i + 1].ref);
    }
    const Part& p = parts[i];
    WHARF_CO_RETURN_IF_ERROR(co_await ctx.cluster->StreamChunk(
        *p.ref, p.from, p.to - p.from, sink, ctx.request_id, std::move(prepared)));
  }
  co_return Status::Ok();
}

}  // namespace wharf

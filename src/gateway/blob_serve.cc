#include "gateway/blob_serve.h"

#include <algorithm>

#include "common/metrics.h"
#include "http/range.h"

namespace wharf {

BlobContext BlobContextOf(const GatewayContext& ctx) {
  BlobContext b;
  b.ex = ctx.ex;
  b.cluster = ctx.cluster;
  b.meta = ctx.meta;
  b.lookup = ctx.lookup;
  b.chunk_size = ctx.options->chunk_size;
  b.max_inflight_chunks = ctx.options->max_inflight_chunks;
  b.writable_wait = ctx.options->writable_wait;
  const auto idle = std::min(ctx.options->upload_stale, ctx.options->upload_expiry);
  b.touch_every = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(idle) / 4,
      std::chrono::milliseconds(250), std::chrono::seconds(30));
  b.log = ctx.log;
  b.memory = ctx.memory;
  return b;
}

awaitable<Status> ServeBlob(GatewayContext& ctx, Exchange& ex, BlobReader& reader,
                            std::string_view content_type) {
  const uint64_t size = reader.size();
  ex.AddHeader("Accept-Ranges", "bytes");
  uint64_t offset = 0, len = size;
  bool partial = false;
  if (auto h = ex.header(http::field::range); !h.empty() && ex.method() == http::verb::get) {
    auto parsed = ParseRangeHeader(h, size);
    if (!parsed) {
      ex.AddHeader("Content-Range", FormatUnsatisfiedRange(size));
      (void)co_await ex.Respond(http::status::range_not_satisfiable, "", "");
      co_return Status::Ok();
    }
    if (*parsed) {
      offset = (*parsed)->first;
      len = (*parsed)->length();
      partial = true;
      ex.AddHeader("Content-Range", FormatContentRange(**parsed, size));
    }
  }
  const http::status status = partial ? http::status::partial_content : http::status::ok;
  if (ex.method() == http::verb::head || len == 0) {
    WHARF_CO_RETURN_IF_ERROR(co_await ex.BeginResponse(status, len, content_type));
    co_return Status::Ok();
  }
  // The head goes out with the first byte the cluster hands on: a read that fails before it
  // (no member could serve the first chunk, or every copy of it was bad where it is checked
  // before being passed on) is answered with an error by the caller, not a cut 200.
  Exchange* exp = &ex;
  const std::string type(content_type);
  ChunkSink::Bytes bytes = [exp, status, len, type](std::string_view piece) -> awaitable<Status> {
    if (!exp->responded()) {
      WHARF_CO_RETURN_IF_ERROR(co_await exp->BeginResponse(status, len, type));
    }
    co_return co_await exp->WriteBody(piece.data(), piece.size());
  };
  // A verified local chunk file (cluster/local_read.h) goes out with sendfile.
  ChunkSink::File file = [exp, status, len, type](int fd, uint64_t off,
                                                  uint64_t n) -> awaitable<Status> {
    if (!exp->responded()) {
      WHARF_CO_RETURN_IF_ERROR(co_await exp->BeginResponse(status, len, type));
    }
    co_return co_await exp->SendFile(fd, off, n);
  };
  ByteSink sink(std::move(bytes), std::move(file));
  Status st = co_await reader.Read(offset, len, sink);
  if (st.ok()) co_return st;
  if (!ex.responded()) {
    static auto& refused = Metrics().Counter(
        "wharf_gateway_read_unavailable_total",
        "Object reads answered 503 because no member could serve their first chunk.");
    refused.Inc();
    ctx.log->error("read failed before the head request_id={} err={}", ex.request_id(), st);
    // The blob's validators, caching and range headers are not the error's.
    for (std::string_view h :
         {"ETag", "Cache-Control", "Accept-Ranges", "Content-Range", "Docker-Content-Digest"}) {
      ex.RemoveHeader(h);
    }
    co_return st;
  }
  static auto& failed = Metrics().Counter(
      "wharf_gateway_read_failures_total",
      "Object reads cut short mid-body by a cluster error (the connection is closed).");
  failed.Inc();
  ctx.log->error("read failed mid-body request_id={} err={}", ex.request_id(), st);
  ex.CloseAfter();
  co_return st;
}

}  // namespace wharf

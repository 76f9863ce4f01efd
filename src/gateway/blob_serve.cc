#include "gateway/blob_serve.h"

#include "common/metrics.h"
#include "http/range.h"

namespace wharf {

BlobContext BlobContextOf(const GatewayContext& ctx) {
  BlobContext b;
  b.ex = ctx.ex;
  b.cluster = ctx.cluster;
  b.meta = ctx.meta;
  b.chunk_size = ctx.options->chunk_size;
  b.max_inflight_chunks = ctx.options->max_inflight_chunks;
  b.writable_wait = ctx.options->writable_wait;
  b.log = ctx.log;
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
  WHARF_CO_RETURN_IF_ERROR(co_await ex.BeginResponse(
      partial ? http::status::partial_content : http::status::ok, len, content_type));
  if (ex.method() == http::verb::head || len == 0) co_return Status::Ok();
  Exchange* exp = &ex;
  ByteSink sink = [exp](std::string_view piece) -> awaitable<Status> {
    co_return co_await exp->WriteBody(piece.data(), piece.size());
  };
  Status st = co_await reader.Read(offset, len, sink);
  if (!st.ok()) {
    static auto& failed = Metrics().Counter("wharf_gateway_read_failures_total",
                                            "Object reads cut short by a cluster error.");
    failed.Inc();
    ctx.log->error("read failed mid-body request_id={} err={}", ex.request_id(), st);
    ex.CloseAfter();
  }
  co_return st;
}

}  // namespace wharf

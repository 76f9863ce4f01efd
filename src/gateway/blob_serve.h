// The HTTP ends of the blob code (blob/): a request body as a ByteSource, and GET/HEAD answers
// with Range support for a stored object.
#pragma once

#include <string_view>
#include <vector>

#include "blob/blob_reader.h"
#include "blob/blob_writer.h"
#include "blob/byte_source.h"
#include "gateway/gateway.h"
#include "http/server.h"

namespace wharf {

// The request body of `ex` as a ByteSource. Borrows `ex`, which must outlive it.
class ExchangeSource final : public ByteSource {
 public:
  explicit ExchangeSource(Exchange& ex) : ex_(ex) {}
  awaitable<Result<size_t>> Read(void* buf, size_t n) override { return ex_.ReadSome(buf, n); }
  std::optional<uint64_t> size_hint() const override { return ex_.content_length(); }

 private:
  Exchange& ex_;
};

// The blob code's view of the gateway's context.
BlobContext BlobContextOf(const GatewayContext& ctx);

// Answers GET or HEAD of a stored object read through `reader`: Content-Length,
// Accept-Ranges, a single Range as 206 (416 past the end), and the body streamed piece by
// piece. Headers added to `ex` before the call go out with the response. The head is sent
// only with the first byte of the body, once the cluster could serve it.
// Returns Ok when it answered. An error with ex.responded() false: the read failed before
// the head (the first chunk could not be had), the caller answers it (503). An error with
// ex.responded() true: the read failed mid-body, the response is cut (the connection closes).
awaitable<Status> ServeBlob(GatewayContext& ctx, Exchange& ex, BlobReader& reader,
                            std::string_view content_type);

}  // namespace wharf

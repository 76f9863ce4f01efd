// File uploads from HTML forms: `POST /files` with a multipart/form-data body (what `curl -F
// file=@photo.jpg` and a browser's <input type=file> send). Each file part (one with a
// `filename`) becomes a stored file keeping its Content-Type and file name; plain fields are
// read and dropped (at most kMaxFormFieldBytes in all). The body streams: parts go to the
// cluster as they arrive, and the parser's buffer stays bounded (http/multipart.h).
//
//   201 {"files": [{"id", "name", "field", "content_type", "digest", "size"}, ...]}
//
// A malformed or truncated body answers 400 (413 past a limit) and keeps nothing: the files
// stored before the error are deleted again.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "blob/byte_source.h"
#include "common/asio.h"
#include "gateway/gateway.h"
#include "http/multipart.h"
#include "http/server.h"

namespace wharf {

// Plain (non-file) form fields are dropped; past this many bytes of them the upload fails.
inline constexpr uint64_t kMaxFormFieldBytes = 1 << 20;

// Pulls a multipart body out of a ByteSource, part by part. Borrows `body`.
class MultipartReader {
 public:
  MultipartReader(ByteSource& body, std::string_view boundary, MultipartLimits limits = {});

  // The next part's headers, skipping what is left of the current part; nullopt after the
  // closing delimiter. Errors of the body and the parser (kInvalidArgument, kTooLarge).
  awaitable<Result<std::optional<MultipartPart>>> NextPart();
  // Up to `n` bytes of the current part's body; 0 at its end.
  awaitable<Result<size_t>> ReadPart(void* buf, size_t n);
  // True when the current part has no byte left to read (looks ahead; reads nothing away).
  awaitable<Result<bool>> PartEmpty();

 private:
  // The parser's next event, feeding it from the body as it asks.
  awaitable<Result<MultipartParser::Event>> Step();

  ByteSource& body_;
  MultipartParser parser_;
  std::vector<char> in_;
  std::string_view pending_;  // part bytes handed out by the parser, not yet read
  bool in_part_ = false;
  bool ended_ = false;
};

// The current part of `reader` as a ByteSource.
class PartSource final : public ByteSource {
 public:
  explicit PartSource(MultipartReader& reader) : reader_(reader) {}
  awaitable<Result<size_t>> Read(void* buf, size_t n) override { return reader_.ReadPart(buf, n); }

 private:
  MultipartReader& reader_;
};

// A file stored from a form, and the field it came in.
struct FormFile {
  FileRecord file;
  std::string field;
};

// Stores each file part read through `reader`, in order. On any error (the body's, the
// parser's, the cluster's, kInvalidArgument for a form without a file part) the files it had
// stored are deleted again and the error is returned. Runs on ctx.ex.
awaitable<Result<std::vector<FormFile>>> StoreFormFiles(GatewayContext& ctx,
                                                        MultipartReader& reader,
                                                        std::string request_id);

// Answers POST /files whose Content-Type is multipart/form-data.
awaitable<void> PostFormFiles(GatewayContext& ctx, Exchange& ex);

}  // namespace wharf

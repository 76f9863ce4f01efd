#include "gateway/file_form.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "gateway/blob_serve.h"
#include "http/status_http.h"

namespace wharf {
namespace {

using json = nlohmann::json;
constexpr size_t kReadBytes = 64 * 1024;

// Reads and drops the rest of a plain field, counting its bytes into `*field_bytes`.
awaitable<Status> SkipField(MultipartReader& reader, uint64_t* field_bytes) {
  std::vector<char> scratch(16 * 1024);
  for (;;) {
    Result<size_t> n = co_await reader.ReadPart(scratch.data(), scratch.size());
    if (!n) co_return n.error();
    if (*n == 0) co_return Status::Ok();
    *field_bytes += *n;
    if (*field_bytes > kMaxFormFieldBytes) {
      co_return TooLarge(fmt::format(
          "multipart form fields over {} bytes (only file parts are kept)", kMaxFormFieldBytes));
    }
  }
}

// Reads every part of the form, storing its files into `*stored`. On an error, what is in
// `*stored` is still committed: the caller deletes it.
awaitable<Status> StoreParts(GatewayContext& ctx, MultipartReader& reader, std::string request_id,
                             std::vector<FormFile>* stored) {
  uint64_t field_bytes = 0;
  for (;;) {
    Result<std::optional<MultipartPart>> part = co_await reader.NextPart();
    if (!part) co_return part.error();
    if (!*part) co_return Status::Ok();
    if (!(*part)->filename) {
      WHARF_CO_RETURN_IF_ERROR(co_await SkipField(reader, &field_bytes));
      continue;
    }
    Result<std::string> name = CleanFileName(*(*part)->filename);
    if (!name) co_return name.error();
    if (name->empty()) {
      // A browser sends `filename=""` and no bytes for a file input left empty.
      Result<bool> empty = co_await reader.PartEmpty();
      if (!empty) co_return empty.error();
      if (*empty) continue;
    }
    std::string type = (*part)->content_type;
    if (type.empty()) type = "application/octet-stream";
    PartSource source(reader);
    Result<FileRecord> file =
        co_await ctx.blobs->PutFile(std::move(type), source, request_id, *name);
    if (!file) co_return file.error();
    stored->push_back(FormFile{std::move(*file), (*part)->name});
  }
}

}  // namespace

MultipartReader::MultipartReader(ByteSource& body, std::string_view boundary,
                                 MultipartLimits limits)
    : body_(body), parser_(boundary, limits), in_(kReadBytes) {}

awaitable<Result<MultipartParser::Event>> MultipartReader::Step() {
  for (;;) {
    Result<MultipartParser::Event> e = parser_.Next();
    if (!e) co_return Err(e.error());
    if (*e != MultipartParser::Event::kNeedInput) co_return *e;
    Result<size_t> n = co_await body_.Read(in_.data(), in_.size());
    if (!n) co_return Err(n.error());
    if (*n == 0) {
      parser_.FeedEnd();
    } else {
      parser_.Feed(std::string_view(in_.data(), *n));
    }
  }
}

awaitable<Result<bool>> MultipartReader::PartEmpty() {
  if (!pending_.empty()) co_return false;
  if (!in_part_) co_return true;
  Result<MultipartParser::Event> e = co_await Step();
  if (!e) co_return Err(e.error());
  if (*e == MultipartParser::Event::kPartData) {
    pending_ = parser_.data();
    co_return false;
  }
  if (*e == MultipartParser::Event::kPartEnd) {
    in_part_ = false;
    co_return true;
  }
  co_return Err(Internal("multipart: unexpected parser event in a part"));
}

awaitable<Result<size_t>> MultipartReader::ReadPart(void* buf, size_t n) {
  if (pending_.empty()) {
    Result<bool> empty = co_await PartEmpty();
    if (!empty) co_return Err(empty.error());
    if (*empty) co_return size_t{0};
  }
  const size_t take = std::min(n, pending_.size());
  std::memcpy(buf, pending_.data(), take);
  pending_.remove_prefix(take);
  co_return take;
}

awaitable<Result<std::optional<MultipartPart>>> MultipartReader::NextPart() {
  while (in_part_) {  // the rest of the current part
    pending_ = {};
    Result<bool> empty = co_await PartEmpty();
    if (!empty) co_return Err(empty.error());
  }
  pending_ = {};
  if (ended_) co_return std::nullopt;
  Result<MultipartParser::Event> e = co_await Step();
  if (!e) co_return Err(e.error());
  if (*e == MultipartParser::Event::kEnd) {
    ended_ = true;
    co_return std::nullopt;
  }
  if (*e != MultipartParser::Event::kPartBegin) {
    co_return Err(Internal("multipart: unexpected parser event between parts"));
  }
  in_part_ = true;
  co_return std::optional<MultipartPart>(parser_.part());
}

awaitable<Result<std::vector<FormFile>>> StoreFormFiles(GatewayContext& ctx,
                                                        MultipartReader& reader,
                                                        std::string request_id) {
  std::vector<FormFile> stored;
  Status st = co_await StoreParts(ctx, reader, request_id, &stored);
  if (st.ok() && stored.empty()) st = InvalidArgument("multipart form holds no file part");
  if (st.ok()) co_return stored;
  for (const FormFile& f : stored) {
    Status del = co_await ctx.blobs->DeleteFile(f.file.id);
    if (!del.ok()) {
      ctx.log->warn("form upload cleanup failed request_id={} file={} err={}", request_id,
                    f.file.id, del);
    }
  }
  if (st.code() != Code::kCancelled) {
    ctx.log->warn("form upload refused request_id={} files_dropped={} err={}", request_id,
                  stored.size(), st);
  }
  co_return Err(std::move(st));
}

awaitable<void> PostFormFiles(GatewayContext& ctx, Exchange& ex) {
  static auto& stored_total =
      Metrics().Counter("wharf_gateway_files_stored_total", "Files stored.");
  static auto& failed = Metrics().Counter("wharf_gateway_file_uploads_failed_total",
                                          "File uploads that failed or were abandoned.");
  Result<std::string> boundary = ParseMultipartBoundary(ex.header(http::field::content_type));
  if (!boundary) {
    failed.Inc();
    co_await RespondError(ex, boundary.error());
    co_return;
  }
  ExchangeSource body(ex);
  MultipartReader reader(body, *boundary);
  Result<std::vector<FormFile>> stored = co_await StoreFormFiles(ctx, reader, ex.request_id());
  if (!stored) {
    failed.Inc();
    if (!ex.body_done()) ex.CloseAfter();  // the rest of a broken body is not read
    co_await RespondError(ex, stored.error());
    co_return;
  }
  json files = json::array();
  for (const FormFile& f : *stored) {
    stored_total.Inc();
    files.push_back({{"id", f.file.id},
                     {"name", f.file.name},
                     {"field", f.field},
                     {"content_type", f.file.content_type},
                     {"digest", f.file.digest.ToString()},
                     {"size", f.file.size}});
  }
  json out = {{"files", std::move(files)}};
  // Names are the client's bytes, not always UTF-8: replace what JSON cannot carry.
  (void)co_await ex.Respond(http::status::created,
                            out.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace wharf

// The file API's handlers: parse, call BlobService (which stores and reads the bytes), answer.
#include "gateway/file_api.h"

#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "gateway/blob_serve.h"
#include "gateway/file_form.h"
#include "http/conditional.h"
#include "http/multipart.h"
#include "http/status_http.h"

namespace wharf {
namespace {

using json = nlohmann::json;
constexpr std::string_view kFilesPrefix = "/files/";

bool ValidFileId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

awaitable<void> PostFile(GatewayContext& ctx, Exchange& ex) {
  if (IsMultipartFormData(ex.header(http::field::content_type))) {
    co_await PostFormFiles(ctx, ex);
    co_return;
  }
  static auto& stored = Metrics().Counter("wharf_gateway_files_stored_total", "Files stored.");
  static auto& aborted = Metrics().Counter("wharf_gateway_file_uploads_failed_total",
                                           "File uploads that failed or were abandoned.");
  std::string_view header = ex.header(http::field::content_type);
  std::string content_type = header.empty() ? "application/octet-stream" : std::string(header);
  ExchangeSource body(ex);
  // A named argument: GCC 12 miscompiles a conditional's temporary inside a co_await.
  Result<FileRecord> file = co_await ctx.blobs->PutFile(content_type, body, ex.request_id());
  if (!file) {
    aborted.Inc();
    if (file.error().code() != Code::kCancelled) {
      ctx.log->warn("file upload failed request_id={} err={}", ex.request_id(), file.error());
    }
    co_await RespondError(ex, file.error());
    co_return;
  }
  stored.Inc();
  ex.AddHeader("Location", ctx.urls.Absolute(ex, "/files/" + file->id));
  ex.AddHeader("ETag", "\"" + file->digest.ToString() + "\"");
  json out = {{"id", file->id}, {"digest", file->digest.ToString()}, {"size", file->size}};
  (void)co_await ex.Respond(http::status::created, out.dump());
}

awaitable<void> GetFile(GatewayContext& ctx, Exchange& ex, std::string id) {
  Result<OpenedFile> file = co_await ctx.blobs->OpenFile(std::move(id), ex.request_id());
  if (!file) {
    co_await RespondError(ex, file.error());
    co_return;
  }
  const std::string etag = "\"" + file->record.digest.ToString() + "\"";
  ex.AddHeader("ETag", etag);
  ex.AddHeader("Docker-Content-Digest", file->record.digest.ToString());
  if (!file->record.name.empty()) {
    ex.AddHeader("Content-Disposition", FormatContentDisposition(file->record.name));
  }
  if (co_await RespondIfNotModified(ex, etag)) co_return;
  Status st = co_await ServeBlob(ctx, ex, *file->reader, file->record.content_type);
  if (!st.ok() && !ex.responded()) {
    co_await RespondError(ex, Unavailable("no copy of the file's data can be read now"));
  }
}

awaitable<void> DeleteFile(GatewayContext& ctx, Exchange& ex, std::string id) {
  Status st = co_await ctx.blobs->DeleteFile(std::move(id));
  if (!st.ok()) {
    co_await RespondError(ex, st);
    co_return;
  }
  (void)co_await ex.Respond(http::status::no_content);
}

}  // namespace

awaitable<void> HandleFiles(GatewayContext& ctx, Exchange& ex) {
  std::string_view path = ex.path();
  if (path == "/files" || path == "/files/") {
    if (ex.method() == http::verb::post) {
      co_await PostFile(ctx, ex);
      co_return;
    }
    ex.AddHeader("Allow", "POST");
    co_await RespondError(ex, Unsupported("use POST /files"));
    co_return;
  }
  const http::verb m = ex.method();
  if (m != http::verb::get && m != http::verb::head && m != http::verb::delete_) {
    // The method is wrong whatever the id (a PUT of a new name is not how files are made).
    ex.AddHeader("Allow", "GET, HEAD, DELETE");
    co_await RespondError(ex, Unsupported("method not allowed: files are created by POST /files"));
    co_return;
  }
  std::string id(path.substr(kFilesPrefix.size()));
  if (!ValidFileId(id)) {
    co_await RespondError(ex, NotFound("no such file"));
    co_return;
  }
  switch (ex.method()) {
    case http::verb::get:
    case http::verb::head:
      co_await GetFile(ctx, ex, std::move(id));
      co_return;
    case http::verb::delete_:
      co_await DeleteFile(ctx, ex, std::move(id));
      co_return;
    default:
      ex.AddHeader("Allow", "GET, HEAD, DELETE");
      co_await RespondError(ex, Unsupported("method not allowed"));
  }
}

}  // namespace wharf

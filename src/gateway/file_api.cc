#include "gateway/file_api.h"

#include <nlohmann/json.hpp>

#include "common/async.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "gateway/blob_serve.h"
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

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

awaitable<void> PostFile(GatewayContext& ctx, Exchange& ex) {
  static auto& stored = Metrics().Counter("wharf_gateway_files_stored_total", "Files stored.");
  static auto& aborted = Metrics().Counter("wharf_gateway_file_uploads_failed_total",
                                           "File uploads that failed or were abandoned.");
  MetaStore* meta = ctx.meta;
  UploadSession session;
  session.id = RandomHex(16);
  auto create = [meta, session] { return meta->CreateUpload(session); };
  Status st = co_await Offload(create);
  if (!st.ok()) {
    co_await RespondError(ex, st);
    co_return;
  }
  BlobWriter writer(BlobContextOf(ctx), session.id, Hasher());
  ExchangeSource body(ex);
  st = co_await writer.WriteFrom(body);
  Result<std::vector<ChunkRef>> chunks = Err(st);
  if (st.ok()) chunks = co_await writer.Finish();
  FileRecord file;
  if (chunks) {
    file.id = RandomHex(16);
    file.digest = writer.hasher().Finish();
    file.size = writer.bytes();
    std::string_view ct = ex.header(http::field::content_type);
    file.content_type = ct.empty() ? "application/octet-stream" : std::string(ct);
    file.chunks = std::move(*chunks);
    file.created_unix = NowUnix();
    auto commit = [meta, id = session.id, file] { return meta->CommitFile(id, file); };
    st = co_await Offload(commit);
  } else {
    st = chunks.error();
  }
  if (!st.ok()) {
    aborted.Inc();
    // Its chunks become garbage; the collector removes them from the cluster.
    auto drop = [meta, id = session.id] { return meta->DeleteUpload(id); };
    Status dropped = co_await Offload(drop);
    if (!dropped.ok()) ctx.log->warn("upload cleanup failed upload={} err={}", session.id, dropped);
    if (st.code() != Code::kCancelled) {
      ctx.log->warn("file upload failed request_id={} err={}", ex.request_id(), st);
    }
    co_await RespondError(ex, st);
    co_return;
  }
  stored.Inc();
  ex.AddHeader("Location", "/files/" + file.id);
  ex.AddHeader("ETag", "\"" + file.digest.ToString() + "\"");
  json body = {{"id", file.id}, {"digest", file.digest.ToString()}, {"size", file.size}};
  (void)co_await ex.Respond(http::status::created, body.dump());
}

awaitable<void> GetFile(GatewayContext& ctx, Exchange& ex, std::string id) {
  MetaStore* meta = ctx.meta;
  auto get = [meta, id] { return meta->GetFile(id); };
  auto file = co_await Offload(get);
  if (!file) {
    co_await RespondError(ex, file.error());
    co_return;
  }
  ex.AddHeader("ETag", "\"" + file->digest.ToString() + "\"");
  ex.AddHeader("Docker-Content-Digest", file->digest.ToString());
  (void)co_await ServeBlob(ctx, ex, file->chunks, file->size, file->content_type);
}

awaitable<void> DeleteFile(GatewayContext& ctx, Exchange& ex, std::string id) {
  MetaStore* meta = ctx.meta;
  auto del = [meta, id] { return meta->DeleteFile(id); };
  auto file = co_await Offload(del);
  if (!file) {
    co_await RespondError(ex, file.error());
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

#include "chunkserver/chunk_client.h"

#include <nlohmann/json.hpp>

#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/json_fields.h"
#include "master/master_client.h"

namespace wharf {
namespace {

using json_fields::GetArray;
using json_fields::GetInt;
using json_fields::GetString;
using json_fields::GetUint;
using nlohmann::json;

constexpr std::string_view kChunks = "/v1/chunks/";

Status Answered(const std::string& addr, unsigned status, std::string_view body = {}) {
  std::string m = "member " + addr + " answered " + std::to_string(status);
  if (!body.empty()) m += " " + std::string(body);
  return Unavailable(std::move(m));
}

Result<InventoryEntry> ParseEntry(const json& c) {
  InventoryEntry e;
  WHARF_ASSIGN_OR_RETURN(e.id, GetString(c, "id"));
  if (!ValidChunkId(e.id)) return Err(InvalidArgument("inventory entry with a malformed id"));
  WHARF_ASSIGN_OR_RETURN(e.size, GetUint(c, "size"));
  WHARF_ASSIGN_OR_RETURN(std::string sum, GetString(c, "checksum"));
  auto parsed = ParseChecksum(sum);
  if (!parsed) return Err(InvalidArgument("inventory entry with a malformed checksum"));
  e.checksum = *parsed;
  WHARF_ASSIGN_OR_RETURN(e.mtime_unix, GetInt(c, "mtime"));
  return e;
}

}  // namespace

Result<InventoryPage> ParseInventoryPage(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err(InvalidArgument("inventory is not JSON"));
  WHARF_ASSIGN_OR_RETURN(const json* chunks, GetArray(j, "chunks"));
  InventoryPage page;
  page.chunks.reserve(chunks->size());
  for (const json& c : *chunks) {
    WHARF_ASSIGN_OR_RETURN(InventoryEntry e, ParseEntry(c));
    page.chunks.push_back(std::move(e));
  }
  if (auto it = j.find("next"); it != j.end() && !it->is_null()) {
    WHARF_ASSIGN_OR_RETURN(page.next, GetString(j, "next"));
    if (!ValidChunkId(page.next)) return Err(InvalidArgument("inventory with a malformed next"));
  }
  return page;
}

awaitable<Status> ChunkClient::Put(std::string addr, std::string id, uint64_t checksum,
                                   std::string_view data, std::string_view request_id) {
  HeaderList headers = RequestIdHeader(request_id);
  headers.emplace_back("X-Wharf-Checksum", FormatChecksum(checksum));
  auto r = co_await http_.Request(addr, http::verb::put, std::string(kChunks) + id, data, headers,
                                  64 * 1024);
  if (!r) co_return r.error();
  if (r->status != 200 && r->status != 201) co_return Answered(addr, r->status, r->body);
  co_return Status::Ok();
}

awaitable<Result<std::string>> ChunkClient::Get(std::string addr, std::string id, uint64_t offset,
                                                uint64_t len, size_t max_body,
                                                std::string_view request_id) {
  HeaderList headers = RequestIdHeader(request_id);
  if (len > 0) {
    headers.emplace_back(
        "Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + len - 1));
  }
  auto r = co_await http_.Request(addr, http::verb::get, std::string(kChunks) + id, {}, headers,
                                  max_body);
  if (!r) co_return Err(r.error());
  if (r->status != 200 && r->status != 206) co_return Err(Answered(addr, r->status));
  co_return std::move(r->body);
}

awaitable<Result<std::unique_ptr<ClientCall>>> ChunkClient::OpenGet(std::string addr,
                                                                    std::string id,
                                                                    std::string_view request_id) {
  // A pooled connection the member closed meanwhile (its idle timeout, a restart) fails as
  // "stale": go again (the others in the pool may be stale too), as HttpClient::Request does.
  auto is_stale = [](const Status& st) { return st.message().rfind("stale ", 0) == 0; };
  for (int attempt = 0;; ++attempt) {
    auto call = co_await http_.Open(addr, http::verb::get, std::string(kChunks) + id,
                                    RequestIdHeader(request_id), {});
    Status st;
    if (call) {
      ClientCall* c = call->get();
      st = co_await c->FinishRequest();
    } else {
      st = call.error();
    }
    if (!st.ok()) {
      // Each stale connection is dropped as it fails (fast: the peer closed it), so at most
      // the idle pool's worth of attempts reaches a fresh connection.
      if (is_stale(st) && attempt <= static_cast<int>(http_.options().max_idle_per_host)) continue;
      co_return Err(std::move(st));
    }
    if ((*call)->status() != 200) {
      co_return Err(Unavailable("peer " + addr + " answered " + std::to_string((*call)->status()) +
                                " for chunk " + id));
    }
    co_return std::move(*call);
  }
}

awaitable<Result<ChunkClient::Head>> ChunkClient::Stat(std::string addr, std::string id,
                                                       std::string_view request_id) {
  auto r = co_await http_.Request(addr, http::verb::head, std::string(kChunks) + id, {},
                                  RequestIdHeader(request_id));
  if (!r) co_return Err(r.error());
  if (r->status == 404) co_return Err(NotFound("member " + addr + " has no chunk " + id));
  if (r->status != 200) co_return Err(Answered(addr, r->status));
  Head head;
  auto sum = ParseChecksum(r->header("X-Wharf-Checksum"));
  const std::string_view length = r->header("Content-Length");
  char* end = nullptr;
  const std::string length_text(length);
  head.size = std::strtoull(length_text.c_str(), &end, 10);
  if (!sum || length.empty() || *end != '\0') {
    co_return Err(InvalidArgument("member " + addr + " sent a malformed chunk head"));
  }
  head.checksum = *sum;
  co_return head;
}

awaitable<Result<bool>> ChunkClient::Delete(std::string addr, std::string id,
                                            std::string_view request_id) {
  auto r = co_await http_.Request(addr, http::verb::delete_, std::string(kChunks) + id, {},
                                  RequestIdHeader(request_id));
  if (!r) co_return Err(r.error());
  if (r->status == 204) co_return true;
  if (r->status == 404) co_return false;
  co_return Err(Answered(addr, r->status));
}

awaitable<Result<InventoryPage>> ChunkClient::List(std::string addr, std::string after,
                                                   size_t limit, std::string_view request_id) {
  std::string target = "/v1/chunks?limit=" + std::to_string(limit);
  if (!after.empty()) target += "&after=" + PercentEncode(after);
  auto r = co_await http_.Request(addr, http::verb::get, target, {}, RequestIdHeader(request_id));
  if (!r) co_return Err(r.error());
  if (r->status != 200)
    co_return Err(Unavailable("inventory answered " + std::to_string(r->status)));
  auto page = ParseInventoryPage(r->body);
  if (!page)
    co_return Err(
        InvalidArgument("malformed inventory from " + addr + ": " + page.error().message()));
  co_return std::move(*page);
}

}  // namespace wharf

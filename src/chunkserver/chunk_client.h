// ChunkClient: the one client of a chunkserver's chunk API (chunkserver.h draws the routes).
// Peers (catch-up, repair) and the gateway's cluster client both speak /v1/chunks through it,
// so the protocol, its status codes and the inventory format have one owner.
//
// Every call takes the member's "host:port" and an optional request id, sent as X-Request-Id
// when not empty. String views (`data`, `request_id`) must stay alive until the returned
// awaitable completes. Errors: the HttpClient's (kUnavailable when the member cannot be
// reached), or kUnavailable naming the status when the member answered something else.
//
// Threading: like the HttpClient it uses, one executor; many coroutines on it may call it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "http/client.h"

namespace wharf {

// One entry of GET /v1/chunks:
//   {"chunks": [{"id": "<32 hex>", "size": N, "checksum": "xxh3:<16 hex>", "mtime": UNIX}],
//    "next": "<32 hex>" | null}
struct InventoryEntry {
  std::string id;
  uint64_t size = 0;
  uint64_t checksum = 0;
  int64_t mtime_unix = 0;  // when the member stored it (its own clock)
  friend bool operator==(const InventoryEntry&, const InventoryEntry&) = default;
};

struct InventoryPage {
  std::vector<InventoryEntry> chunks;  // sorted by id
  std::string next;                    // ask again with after=next; "" on the last page
};

// Parses an inventory page. Never throws: anything malformed (not JSON, not an object, a
// missing or mistyped field, a malformed chunk id or checksum, a number out of range) is
// kInvalidArgument, and the whole page is refused.
Result<InventoryPage> ParseInventoryPage(std::string_view body);

class ChunkClient {
 public:
  // `http` must outlive this client.
  explicit ChunkClient(HttpClient& http) : http_(http) {}

  // PUT /v1/chunks/{id}. Ok when the member stored it durably (201) or already had it (200).
  awaitable<Status> Put(std::string addr, std::string id, uint64_t checksum, std::string_view data,
                        std::string_view request_id = {});

  // GET /v1/chunks/{id}: bytes [offset, offset+len) with a Range header, or the whole chunk
  // when len == 0. The body is returned as sent (the caller checks its length and checksum).
  // kTooLarge past `max_body` bytes.
  awaitable<Result<std::string>> Get(std::string addr, std::string id, uint64_t offset,
                                     uint64_t len, size_t max_body,
                                     std::string_view request_id = {});

  // GET /v1/chunks/{id} streaming: the call with its response head read (status 200), for the
  // caller to ReadSome the body from.
  awaitable<Result<std::unique_ptr<ClientCall>>> OpenGet(std::string addr, std::string id,
                                                         std::string_view request_id = {});

  struct Head {
    uint64_t size = 0;
    uint64_t checksum = 0;
  };
  // HEAD /v1/chunks/{id}. kNotFound when the member does not have it.
  awaitable<Result<Head>> Stat(std::string addr, std::string id, std::string_view request_id = {});

  // DELETE /v1/chunks/{id}. true: deleted (204); false: the member did not have it (404).
  awaitable<Result<bool>> Delete(std::string addr, std::string id,
                                 std::string_view request_id = {});

  // GET /v1/chunks?after=&limit= : one inventory page (see ParseInventoryPage).
  awaitable<Result<InventoryPage>> List(std::string addr, std::string after, size_t limit,
                                        std::string_view request_id = {});

 private:
  HttpClient& http_;
};

}  // namespace wharf

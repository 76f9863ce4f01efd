// FakeRegistry: a small in-process OCI registry on the project's HTTP server, for unit tests
// of the upstream client and the site cache. Content lives in memory (test blobs are small).
// It can demand Basic credentials or the Docker token flow, and be given faults: 503s, a blob
// body cut off mid-way, wrong bytes, ranges ignored. It counts what it was asked.
//
// Speaks: GET /v2/, HEAD/GET /v2/<name>/blobs/<digest> (Range: bytes=N-), POST
// /v2/<name>/blobs/uploads/, PATCH and PUT /v2/<name>/blobs/uploads/<id>?digest=, HEAD/GET/PUT
// /v2/<name>/manifests/<reference>, GET /token (when auth is kBearer).
//
// Threading: runs on the executor it is given; touch its fields from that executor only.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "http/server.h"

namespace wharf {

class FakeRegistry {
 public:
  enum class Auth { kNone, kBasic, kBearer };
  struct Options {
    Auth auth = Auth::kNone;
    std::string user = "alice";
    std::string password = "secret";
    int token_expires_in = 300;
  };
  struct Faults {
    int fail_503 = 0;        // the next N /v2 requests answer 503
    int cut_blob = 0;        // the next N blob GETs send only `cut_after` bytes, then close
    uint64_t cut_after = 0;  // (counted from the first byte sent)
    bool corrupt = false;    // blob GETs serve the content with its first byte flipped
    bool ignore_range = false;
  };
  struct Counters {
    int requests = 0;
    int blob_gets = 0;
    int blob_heads = 0;
    int range_gets = 0;
    int manifest_gets = 0;
    int manifest_heads = 0;
    int manifest_puts = 0;
    int uploads_started = 0;
    int blob_puts = 0;
    int token_requests = 0;
    int unauthorized = 0;
  };

  FakeRegistry(asio::any_io_executor ex, Options options);
  ~FakeRegistry();
  // Listens on 127.0.0.1, any free port.
  Status Start();
  void Stop();
  std::string url() const;

  // Stores a blob (linked in every repository: the fake does not track links); its digest.
  std::string AddBlob(const std::string& content);
  // Stores a manifest under its digest and, when `tag` is not empty, the tag; its digest.
  std::string AddManifest(const std::string& repo, const std::string& tag,
                          const std::string& content, const std::string& media_type);

  Faults faults;
  Counters counters;
  std::map<std::string, std::string> blobs;  // digest -> content
  struct Manifest {
    std::string content, media_type;
  };
  std::map<std::string, Manifest> manifests;   // "repo@digest"
  std::map<std::string, std::string> tags;     // "repo:tag" -> digest
  std::map<std::string, std::string> uploads;  // id -> bytes so far

 private:
  awaitable<void> Handle(Exchange& ex);
  awaitable<bool> Authorized(Exchange& ex, const std::string& repo);
  awaitable<void> Blob(Exchange& ex, const std::string& repo, const std::string& digest);
  awaitable<void> Upload(Exchange& ex, const std::string& repo, const std::string& rest);
  awaitable<void> ManifestReq(Exchange& ex, const std::string& repo, const std::string& ref);

  asio::any_io_executor ex_;
  Options options_;
  std::unique_ptr<Server> server_;
  std::set<std::string> issued_tokens_;
  int next_id_ = 0;
};

}  // namespace wharf

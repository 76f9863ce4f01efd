// RegistryClient: wharf's client of one upstream registry, any that speaks the OCI Distribution
// API (a central wharf, the reference registry, a hosted one). Site caches, replication and
// pull-through all reach their upstreams through it.
//
//   auto client = RegistryClient::Create(ex, {.url = "https://central:5000", .user = "site"});
//   auto m = co_await (*client)->GetManifest("team/app", "v1");      // verified digest
//   auto blob = co_await (*client)->OpenBlob("team/app", digest);    // a verifying stream
//   while ((n = co_await (*blob)->Read(buf, sizeof buf)) > 0) ...
//
// What it does for every request:
//   - auth: Basic (user + password), or the Docker token flow: a 401 with
//     `WWW-Authenticate: Bearer realm=..,service=..,scope=..` makes it fetch a token from the
//     realm (with the Basic credentials, if any), cache it per scope until it expires, and
//     retry once;
//   - retries with exponential backoff on connection errors, 5xx and 429 (max_attempts);
//   - keep-alive connections (upstream/transport.h), TLS verified with an optional CA file;
//   - digests verified: a manifest fetched by digest must hash to it, a blob stream hashes
//     every byte and fails before handing out the last piece of content that does not match;
//     a blob transfer that breaks resumes with `Range: bytes=N-` (max_resumes times).
// Nothing holds a whole blob in memory; manifests are bounded by max_manifest_bytes.
//
// Error codes: kNotFound (the upstream answered 404), kUnavailable (unreachable, 5xx after the
// retries, 401/403 after authenticating: the message says which), kDigestMismatch (content that
// does not hash to its digest), kInvalidArgument (an answer outside the protocol), kTooLarge.
//
// Threading: one client per executor; any number of coroutines on it may use it at once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "blob/byte_source.h"
#include "common/asio.h"
#include "common/digest.h"
#include "common/status.h"
#include "upstream/transport.h"

namespace wharf::upstream {

struct RegistryOptions {
  std::string url;      // http(s)://host[:port]; the registry's /v2/ is under it
  std::string ca_file;  // PEM CAs for https; "" = the system's
  std::string user;     // "" = anonymous
  std::string password;
  int max_attempts = 4;  // per request, for connection errors, 5xx and 429
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};
  int max_resumes = 5;  // Range resumes of one blob stream
  size_t max_manifest_bytes = 4u << 20;
};

// The first line of a password file (a trailing '\r' dropped), or nullopt when it cannot be
// read: how every upstream credential flag (--site-upstream-password-file,
// --proxy-password-file, a replication target's password_file) is read.
std::optional<std::string> ReadPasswordFile(const std::string& path);

// Every manifest and index media type, for Accept.
extern const char* const kManifestAccept;

struct UpstreamManifest {
  std::string content;
  std::string media_type;
  Digest digest;  // of content (verified)
};

struct ManifestHead {
  Digest digest;
  std::string media_type;
  uint64_t size = 0;
};

// What the client did, for metrics and tests.
struct ClientStats {
  uint64_t requests = 0;   // requests sent (each attempt counts)
  uint64_t retries = 0;    // attempts after a failure
  uint64_t blob_gets = 0;  // GETs of blob content (resumes included)
  uint64_t resumes = 0;
  uint64_t token_fetches = 0;
  uint64_t blobs_pushed = 0;
  uint64_t blobs_skipped = 0;  // pushes the upstream already had
};

class RegistryClient;

// A blob's bytes from the upstream, verified over every byte, resumed when the transfer
// breaks. Read: kDigestMismatch (before the last piece is handed out), kUnavailable when the
// resumes are spent, kInvalidArgument when the upstream sends more than the blob's size.
class UpstreamBlob final : public ByteSource {
 public:
  ~UpstreamBlob() override;
  awaitable<Result<size_t>> Read(void* buf, size_t n) override;
  std::optional<uint64_t> size_hint() const override { return size_; }
  uint64_t size() const { return size_; }
  uint64_t offset() const { return offset_; }

 private:
  friend class RegistryClient;
  UpstreamBlob(RegistryClient* client, std::string repo, Digest digest, uint64_t size,
               std::unique_ptr<Call> call);
  RegistryClient* client_;
  std::string repo_;
  Digest digest_;
  uint64_t size_;
  uint64_t offset_ = 0;
  int resumes_ = 0;
  Hasher hasher_;
  std::unique_ptr<Call> call_;
};

// Writes a blob's bytes (exactly its size) to `sink`; may be called again for a retry.
using BodyWriter =
    std::function<awaitable<Status>(std::function<awaitable<Status>(std::string_view)>)>;

class RegistryClient {
 public:
  // kInvalidArgument for a bad URL or CA file.
  static Result<std::unique_ptr<RegistryClient>> Create(asio::any_io_executor ex,
                                                        RegistryOptions options);
  ~RegistryClient();

  // GET /v2/ (authenticating if asked): whether the upstream answers as a registry.
  awaitable<Status> Ping();

  // The manifest `reference` (tag or digest) of `repo`.
  awaitable<Result<UpstreamManifest>> GetManifest(std::string repo, std::string reference);
  awaitable<Result<ManifestHead>> HeadManifest(std::string repo, std::string reference);
  // Stores a manifest under `reference` (tag or digest); returns its digest.
  awaitable<Result<Digest>> PutManifest(std::string repo, std::string reference,
                                        std::string content, std::string media_type);

  // DELETE /v2/<repo>/manifests/<reference> (a digest, or a tag where the registry allows it).
  // kNotFound: the upstream does not have it; other refusals as StatusFromResponse maps them
  // (a registry with deletes disabled answers 405: kInvalidArgument).
  awaitable<Status> DeleteManifest(std::string repo, std::string reference);

  // The blob's size; kNotFound when the upstream lacks it.
  awaitable<Result<uint64_t>> HeadBlob(std::string repo, Digest digest);
  // GET /v2/<repo>/tags/list and /v2/_catalog, every page (the Link header's next, only
  // when it stays under /v2/), at most kMaxListNames names. kNotFound: no such repository.
  static constexpr size_t kMaxListNames = 100000;
  awaitable<Result<std::vector<std::string>>> ListTags(std::string repo);
  awaitable<Result<std::vector<std::string>>> Catalog();
  awaitable<Result<std::unique_ptr<UpstreamBlob>>> OpenBlob(std::string repo, Digest digest);
  // Uploads a blob of `size` bytes (POST, then one streaming PUT) unless HEAD says the
  // upstream has it. `body` is called once per attempt. Returns false when skipped.
  awaitable<Result<bool>> PushBlob(std::string repo, Digest digest, uint64_t size, BodyWriter body);

  const ClientStats& stats() const { return stats_; }
  const std::string& url() const { return options_.url; }
  Transport& transport() { return *transport_; }

 private:
  friend class UpstreamBlob;
  struct Request;
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  RegistryClient(RegistryOptions options, Endpoint base, std::string prefix)
      : options_(std::move(options)), base_(std::move(base)), prefix_(std::move(prefix)) {}
  // Sends `req` (auth, retries, redirects) and returns the call with its response head read.
  awaitable<Result<std::unique_ptr<Call>>> Send(const Request& req);
  // Every page of a list from `first_path`: the strings of the JSON array `key`.
  awaitable<Result<std::vector<std::string>>> ListNames(std::string first_path, std::string scope,
                                                        std::string key);
  awaitable<Result<std::unique_ptr<Call>>> SendOnce(const Request& req, const Endpoint& ep,
                                                    const std::string& target);
  awaitable<Status> Authenticate(std::string challenge_header, std::string scope);
  std::optional<std::string> AuthorizationFor(const std::string& scope);
  awaitable<Result<std::unique_ptr<Call>>> GetBlobFrom(std::string repo, Digest digest,
                                                       uint64_t offset);
  std::chrono::milliseconds Backoff(int attempt) const;

  RegistryOptions options_;
  Endpoint base_;
  std::string prefix_;  // path of the URL, without a trailing '/'
  std::unique_ptr<Transport> transport_;
  bool basic_ = false;                   // the upstream asked for Basic: send it with every request
  std::map<std::string, Token> tokens_;  // by scope
  ClientStats stats_;
};

// The status of a response that is not what the protocol wants, as a Status: 404 kNotFound,
// 401/403 kUnavailable ("upstream refused ..."), 5xx/429 kUnavailable, else kInvalidArgument.
Status StatusFromResponse(unsigned status, std::string_view what, std::string_view body);

}  // namespace wharf::upstream

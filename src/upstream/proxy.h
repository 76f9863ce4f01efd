// ProxyRouter: the pull-through cache (the access proxy of Inspur's design). `--proxy NAME=URL`
// makes the repositories `NAME/rest` a cache of repository `rest` of the registry at URL:
//
//   pull hub/nginx:1.25  ->  local store, else  GET registry-1.docker.io/v2/library/nginx/...
//                            (tee: streamed to the client while stored, verified, kept)
//   push hub/...         ->  405 UNSUPPORTED (the gateway refuses it; gateway/registry_handlers)
//
// Each upstream URL is a SiteCache (upstream/site_cache.h) with a repository mapping, so a
// proxied pull gets what a site's fetch on miss does: single flight per digest, manifests by
// digest verified, tags looked up upstream with a TTL. Several URLs for one NAME are tried in
// order: one answering kUnavailable (down, 5xx, refused) passes the request to the next
// (failover), and is tried last for kDownFor after that. With the upstream down a tag is
// served from the last lookup only with serve_stale; content already cached is always served.
//
// Repositories of no NAME go to the site cache when site mode is on, else kNotFound.
//
// Threading: one executor, the blob service's. Not thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blob/blob_service.h"
#include "blob/read_through.h"
#include "common/log.h"
#include "upstream/site_cache.h"

namespace wharf::upstream {

// One `--proxy NAME=...` with everything given for its NAME.
struct ProxyUpstreamOptions {
  std::string name;               // the local prefix: repositories NAME/rest
  std::vector<std::string> urls;  // http(s)://HOST[:PORT], tried in order
  std::string user;               // "" = anonymous
  std::string password;           // or, when empty, the first line of:
  std::string password_file;      // read at the gateway's Start
  std::string ca_file;            // PEM CAs for https ("" = the system's)
  friend bool operator==(const ProxyUpstreamOptions&, const ProxyUpstreamOptions&) = default;
};

struct ProxyOptions {
  std::vector<ProxyUpstreamOptions> upstreams;
  std::chrono::milliseconds tag_ttl{std::chrono::seconds(30)};
  bool serve_stale = false;  // a tag's last lookup is served when every upstream is down
};

// The `--proxy*` flags as given (NAME=VALUE each) into one entry per NAME, in the order the
// NAMEs first appear. kInvalidArgument, one line naming the flag, for: a value without '=', a
// NAME that is not a repository name or is a path prefix of another NAME (hub and hub/x), a URL
// that is not http(s)://HOST..., a user, password file or CA for a NAME no --proxy gives, one
// of them given twice for a NAME, a password file without a user.
Result<std::vector<ProxyUpstreamOptions>> ParseProxyFlags(
    const std::vector<std::string>& proxy, const std::vector<std::string>& user,
    const std::vector<std::string>& password_file, const std::vector<std::string>& ca);

// The entry whose NAME is a path prefix of `repo` ("hub" for "hub/library/x"), or null. A
// repository named NAME itself is not proxied (there is no upstream repository to map it to).
const ProxyUpstreamOptions* ProxiedBy(const std::vector<ProxyUpstreamOptions>& upstreams,
                                      std::string_view repo);

// True for Docker Hub's registry hosts (registry-1.docker.io, docker.io, index.docker.io).
bool IsDockerHub(std::string_view url);

// The upstream's name of `rest` (the local name without "NAME/"): Docker Hub keeps its official
// images under library/, so a one-component `rest` there is "library/rest"; else `rest`.
std::string UpstreamRepository(std::string_view url, std::string_view rest);

class ProxyRouter final : public ReadThroughSource, public WriteThrough {
 public:
  // How long an upstream that answered kUnavailable is tried after the others.
  static constexpr std::chrono::seconds kDownFor{10};

  // `site`: the site cache for repositories of no NAME (null: site mode off; not owned,
  // outlives the router). kInvalidArgument for a bad URL or CA file.
  static Result<std::unique_ptr<ProxyRouter>> Create(asio::any_io_executor ex,
                                                     const ProxyOptions& options, SiteCache* site,
                                                     Logger log);
  // The blob service fetched content is stored in (not owned; outlives the router).
  void Attach(BlobService* blobs);

  // ReadThroughSource
  awaitable<Result<std::unique_ptr<BlobReader>>> OpenBlob(std::string repo, Digest digest) override;
  awaitable<Result<ManifestRecord>> GetManifest(std::string repo, Reference ref) override;
  bool ResolvesTags(const std::string& repo) const override;

  // WriteThrough: nothing for proxied repositories (what is stored there was fetched from the
  // upstream; pushes are refused before they get here); the site's for the others.
  awaitable<Status> BlobStored(std::string repo, Digest digest) override;
  awaitable<Status> ManifestStored(std::string repo, std::optional<std::string> tag,
                                   ManifestRecord manifest) override;

  // The SiteCaches of NAME in failover order, for tests; empty when NAME is not proxied.
  std::vector<SiteCache*> UpstreamsForTest(const std::string& name) const;

 private:
  struct Upstream {
    std::unique_ptr<SiteCache> cache;
    std::chrono::steady_clock::time_point down_until{};
  };
  struct Group {
    std::string name;
    std::vector<Upstream> upstreams;
  };
  ProxyRouter(SiteCache* site, Logger log) : site_(site), log_(log) {}
  // The group whose NAME prefixes `repo`: its index (groups_.size() for none), or itself.
  size_t IndexOf(std::string_view repo) const;
  Group* GroupOf(std::string_view repo);
  // The upstreams of `g` in the order to try them: those not marked down first.
  std::vector<Upstream*> Order(Group& g);
  // Runs `call` on each upstream of `g` until one answers other than kUnavailable.
  template <typename T, typename Call>
  awaitable<Result<T>> Failover(Group& g, std::string what, Call call);

  SiteCache* site_;
  Logger log_;
  std::vector<Group> groups_;
};

}  // namespace wharf::upstream

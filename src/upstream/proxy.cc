#include "upstream/proxy.h"

#include <map>

#include "common/metrics.h"
#include "registry/names.h"

namespace wharf::upstream {
namespace {

CounterMetric& Failovers(const std::string& name) {
  return Metrics().Counter("wharf_upstream_failovers_total",
                           "Requests of a pull-through cache passed to its next upstream because "
                           "one was unavailable.",
                           {{"proxy", name}});
}

// "NAME=VALUE" of `flag` into its two halves.
Result<std::pair<std::string, std::string>> SplitAssignment(const std::string& flag,
                                                            const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return Err(InvalidArgument(flag + ": want NAME=VALUE, got '" + text + "'"));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

// True when `url` is http(s)://HOST... with a host.
bool HttpUrl(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.substr(0, scheme.size()) == scheme) {
      std::string_view rest = url.substr(scheme.size());
      return !rest.empty() && rest.front() != '/' && rest.front() != ':';
    }
  }
  return false;
}

// The host of an http(s) URL, lowercase, without port or path.
std::string HostOf(std::string_view url) {
  if (size_t s = url.find("://"); s != std::string_view::npos) url.remove_prefix(s + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (size_t at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  if (!url.empty() && url.front() == '[') {
    url = url.substr(0, url.find(']') + 1);
  } else {
    url = url.substr(0, url.find(':'));
  }
  std::string host(url);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host;
}

// True when `a` is `b` or a path prefix of it ("hub" of "hub/x").
bool PathPrefix(std::string_view a, std::string_view b) {
  return b.substr(0, a.size()) == a && (b.size() == a.size() || b[a.size()] == '/');
}

}  // namespace

Result<std::vector<ProxyUpstreamOptions>> ParseProxyFlags(
    const std::vector<std::string>& proxy, const std::vector<std::string>& user,
    const std::vector<std::string>& password_file, const std::vector<std::string>& ca) {
  std::vector<ProxyUpstreamOptions> out;
  auto find = [&out](const std::string& name) -> ProxyUpstreamOptions* {
    for (auto& p : out) {
      if (p.name == name) return &p;
    }
    return nullptr;
  };
  for (const std::string& text : proxy) {
    WHARF_ASSIGN_OR_RETURN(auto kv, SplitAssignment("--proxy", text));
    auto& [name, url] = kv;
    if (!ValidRepositoryName(name)) {
      return Err(InvalidArgument("--proxy " + text + ": '" + name +
                                 "' is not a repository name (lowercase a-z 0-9 . _ - and /)"));
    }
    if (!HttpUrl(url)) {
      return Err(InvalidArgument("--proxy " + text +
                                 ": want NAME=http://HOST:PORT or NAME=https://HOST, got '" + url +
                                 "'"));
    }
    while (url.size() > 1 && url.back() == '/') url.pop_back();
    if (ProxyUpstreamOptions* p = find(name)) {
      // The same NAME again: one more upstream, tried after the ones before it.
      p->urls.push_back(url);
      continue;
    }
    for (const auto& p : out) {
      if (PathPrefix(p.name, name) || PathPrefix(name, p.name)) {
        return Err(InvalidArgument("--proxy " + text + ": NAME '" + name + "' clashes with '" +
                                   p.name + "' (one is a path prefix of the other)"));
      }
    }
    ProxyUpstreamOptions p;
    p.name = name;
    p.urls = {url};
    out.push_back(std::move(p));
  }
  struct Setting {
    const char* flag;
    const std::vector<std::string>* values;
    std::string ProxyUpstreamOptions::*field;
  };
  for (const Setting& s :
       {Setting{"--proxy-user", &user, &ProxyUpstreamOptions::user},
        Setting{"--proxy-password-file", &password_file, &ProxyUpstreamOptions::password_file},
        Setting{"--proxy-ca", &ca, &ProxyUpstreamOptions::ca_file}}) {
    for (const std::string& text : *s.values) {
      WHARF_ASSIGN_OR_RETURN(auto kv, SplitAssignment(s.flag, text));
      ProxyUpstreamOptions* p = find(kv.first);
      if (!p) {
        return Err(InvalidArgument(std::string(s.flag) + " " + text + ": no --proxy " + kv.first +
                                   "=URL is given"));
      }
      std::string& field = p->*s.field;
      if (!field.empty()) {
        return Err(InvalidArgument(std::string(s.flag) + ": given twice for " + kv.first));
      }
      field = kv.second;
    }
  }
  for (const auto& p : out) {
    if (!p.password_file.empty() && p.user.empty()) {
      return Err(InvalidArgument("--proxy-password-file " + p.name + "=...: needs --proxy-user " +
                                 p.name + "=USER"));
    }
  }
  return out;
}

const ProxyUpstreamOptions* ProxiedBy(const std::vector<ProxyUpstreamOptions>& upstreams,
                                      std::string_view repo) {
  for (const auto& p : upstreams) {
    if (repo.size() > p.name.size() && PathPrefix(p.name, repo)) return &p;
  }
  return nullptr;
}

bool IsDockerHub(std::string_view url) {
  const std::string host = HostOf(url);
  return host == "registry-1.docker.io" || host == "docker.io" || host == "index.docker.io";
}

std::string UpstreamRepository(std::string_view url, std::string_view rest) {
  if (IsDockerHub(url) && rest.find('/') == std::string_view::npos) {
    return "library/" + std::string(rest);
  }
  return std::string(rest);
}

Result<std::unique_ptr<ProxyRouter>> ProxyRouter::Create(asio::any_io_executor ex,
                                                         const ProxyOptions& options,
                                                         SiteCache* site, Logger log) {
  std::unique_ptr<ProxyRouter> r(new ProxyRouter(site, log));
  for (const ProxyUpstreamOptions& p : options.upstreams) {
    Group g;
    g.name = p.name;
    for (const std::string& url : p.urls) {
      SiteOptions so;
      so.upstream.url = url;
      so.upstream.ca_file = p.ca_file;
      so.upstream.user = p.user;
      so.upstream.password = p.password;
      if (p.urls.size() > 1) so.upstream.max_attempts = 2;  // the next upstream is the retry
      so.tag_ttl = options.tag_ttl;
      so.serve_stale_tags = options.serve_stale;
      so.label = "proxy " + p.name + " upstream";
      const size_t prefix = p.name.size() + 1;
      so.upstream_repo = [url, prefix](const std::string& repo) {
        return UpstreamRepository(url, std::string_view(repo).substr(prefix));
      };
      auto cache = SiteCache::Create(ex, std::move(so), log);
      if (!cache) {
        return Err(
            InvalidArgument("--proxy " + p.name + "=" + url + ": " + cache.error().message()));
      }
      g.upstreams.push_back(Upstream{std::move(*cache)});
    }
    r->groups_.push_back(std::move(g));
  }
  return r;
}

void ProxyRouter::Attach(BlobService* blobs) {
  for (Group& g : groups_) {
    for (Upstream& u : g.upstreams) u.cache->Attach(blobs);
  }
}

size_t ProxyRouter::IndexOf(std::string_view repo) const {
  for (size_t i = 0; i < groups_.size(); ++i) {
    const std::string& name = groups_[i].name;
    if (repo.size() > name.size() && PathPrefix(name, repo)) return i;
  }
  return groups_.size();
}

ProxyRouter::Group* ProxyRouter::GroupOf(std::string_view repo) {
  const size_t i = IndexOf(repo);
  return i < groups_.size() ? &groups_[i] : nullptr;
}

std::vector<ProxyRouter::Upstream*> ProxyRouter::Order(Group& g) {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Upstream*> up, down;
  for (Upstream& u : g.upstreams) (u.down_until <= now ? up : down).push_back(&u);
  up.insert(up.end(), down.begin(), down.end());
  return up;
}

template <typename T, typename Call>
awaitable<Result<T>> ProxyRouter::Failover(Group& g, std::string what, Call call) {
  std::vector<Upstream*> order = Order(g);
  Result<T> last = Err(Unavailable("proxy " + g.name + " has no upstream"));
  for (size_t i = 0; i < order.size(); ++i) {
    Upstream* u = order[i];
    last = co_await call(u->cache.get());
    if (last || last.error().code() != Code::kUnavailable) {
      u->down_until = {};
      co_return last;
    }
    u->down_until = std::chrono::steady_clock::now() + kDownFor;
    if (i + 1 < order.size()) {
      Failovers(g.name).Inc();
      log_->warn("proxy upstream failed, trying the next proxy={} upstream={} op={} err={}", g.name,
                 u->cache->upstream_url(), what, last.error());
    }
  }
  co_return last;
}

awaitable<Result<std::unique_ptr<BlobReader>>> ProxyRouter::OpenBlob(std::string repo,
                                                                     Digest digest) {
  Group* g = GroupOf(repo);
  if (!g) {
    if (site_) co_return co_await site_->OpenBlob(std::move(repo), std::move(digest));
    co_return Err(NotFound("blob unknown to registry"));
  }
  auto open = [repo, digest](SiteCache* c) { return c->OpenBlob(repo, digest); };
  co_return co_await Failover<std::unique_ptr<BlobReader>>(*g, "blob " + digest.ToString(), open);
}

awaitable<Result<ManifestRecord>> ProxyRouter::GetManifest(std::string repo, Reference ref) {
  Group* g = GroupOf(repo);
  if (!g) {
    if (site_) co_return co_await site_->GetManifest(std::move(repo), std::move(ref));
    co_return Err(NotFound("manifest unknown to registry"));
  }
  auto get = [repo, ref](SiteCache* c) { return c->GetManifest(repo, ref); };
  co_return co_await Failover<ManifestRecord>(*g, "manifest " + repo + ":" + ref.ToString(), get);
}

bool ProxyRouter::ResolvesTags(const std::string& repo) const {
  if (IndexOf(repo) < groups_.size()) return true;
  return site_ && site_->ResolvesTags(repo);
}

awaitable<Status> ProxyRouter::BlobStored(std::string repo, Digest digest) {
  if (GroupOf(repo) || !site_) co_return Status::Ok();
  co_return co_await site_->BlobStored(std::move(repo), std::move(digest));
}

awaitable<Status> ProxyRouter::ManifestStored(std::string repo, std::optional<std::string> tag,
                                              ManifestRecord manifest) {
  if (GroupOf(repo) || !site_) co_return Status::Ok();
  co_return co_await site_->ManifestStored(std::move(repo), std::move(tag), std::move(manifest));
}

std::vector<SiteCache*> ProxyRouter::UpstreamsForTest(const std::string& name) const {
  std::vector<SiteCache*> out;
  for (const Group& g : groups_) {
    if (g.name != name) continue;
    for (const Upstream& u : g.upstreams) out.push_back(u.cache.get());
  }
  return out;
}

}  // namespace wharf::upstream

#include "upstream/registry_client.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "auth/base64.h"
#include "common/async.h"
#include "common/metrics.h"
#include "upstream/www_authenticate.h"

namespace wharf::upstream {

const char* const kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v1+prettyjws, "
    "application/vnd.docker.distribution.manifest.v1+json";

namespace {

constexpr size_t kErrorBodyBytes = 64u << 10;

bool IsRedirect(unsigned s) { return s == 301 || s == 302 || s == 303 || s == 307 || s == 308; }
bool IsRetryable(unsigned s) { return s >= 500 || s == 429; }

std::string PullScope(const std::string& repo) { return "repository:" + repo + ":pull"; }
std::string PushScope(const std::string& repo) { return "repository:" + repo + ":pull,push"; }
std::string DeleteScope(const std::string& repo) { return "repository:" + repo + ":delete"; }

std::string MediaTypeOf(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return std::string(t);
}

CounterMetric& RequestCounter(std::string_view outcome) {
  return Metrics().Counter("wharf_upstream_requests_total", "Requests sent to upstream registries.",
                           {{"outcome", std::string(outcome)}});
}

}  // namespace

std::optional<std::string> ReadPasswordFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Status StatusFromResponse(unsigned status, std::string_view what, std::string_view body) {
  std::string detail(body.substr(0, 300));
  std::replace(detail.begin(), detail.end(), '\n', ' ');
  std::string msg = "upstream answered " + std::to_string(status) + " for " + std::string(what);
  if (!detail.empty()) msg += ": " + detail;
  if (status == 404) return NotFound(msg);
  if (status == 401 || status == 403) return Unavailable("upstream refused access: " + msg);
  if (IsRetryable(status)) return Unavailable(msg);
  return InvalidArgument(msg);
}

struct RegistryClient::Request {
  http::verb method = http::verb::get;
  std::string path;  // "/v2/..." under the base URL; an absolute URL; or (raw) a path as is
  bool raw = false;
  HeaderList headers;
  std::string scope;
  std::string_view body;               // in memory, or
  const BodyWriter* writer = nullptr;  // streamed: `writer_size` bytes
  uint64_t writer_size = 0;
  bool follow_redirects = false;
  bool retry = true;  // connection errors, 5xx and 429 are retried
};

Result<std::unique_ptr<RegistryClient>> RegistryClient::Create(asio::any_io_executor ex,
                                                               RegistryOptions options) {
  std::string rest;
  WHARF_ASSIGN_OR_RETURN(Endpoint base, ParseUrl(options.url, &rest));
  if (rest.find('?') != std::string::npos) {
    return Err(InvalidArgument("upstream URL must not carry a query: " + options.url));
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (options.max_attempts < 1) options.max_attempts = 1;
  TransportOptions to;
  to.ca_file = options.ca_file;
  to.connect_timeout = options.connect_timeout;
  to.io_timeout = options.io_timeout;
  WHARF_ASSIGN_OR_RETURN(auto transport, Transport::Create(ex, to));
  std::unique_ptr<RegistryClient> c(new RegistryClient(std::move(options), base, rest));
  c->transport_ = std::move(transport);
  return c;
}

RegistryClient::~RegistryClient() = default;

std::chrono::milliseconds RegistryClient::Backoff(int attempt) const {
  auto d = options_.backoff_initial * (1 << std::min(attempt - 1, 16));
  return std::min<std::chrono::milliseconds>(d, options_.backoff_max);
}

std::optional<std::string> RegistryClient::AuthorizationFor(const std::string& scope) {
  auto it = tokens_.find(scope);
  if (it != tokens_.end()) {
    if (std::chrono::steady_clock::now() < it->second.expires) return "Bearer " + it->second.value;
    tokens_.erase(it);
  }
  if (basic_ && !options_.user.empty()) {
    return "Basic " + auth::Base64Encode(options_.user + ":" + options_.password);
  }
  return std::nullopt;
}

awaitable<Status> RegistryClient::Authenticate(std::string header, std::string scope) {
  if (header.empty()) co_return Unavailable("upstream answered 401 without WWW-Authenticate");
  auto parsed = ParseWwwAuthenticate(header);
  if (!parsed) {
    co_return Unavailable("upstream sent a malformed WWW-Authenticate: " +
                          parsed.error().message());
  }
  const AuthChallenge* bearer = nullptr;
  const AuthChallenge* basic = nullptr;
  for (const auto& ch : *parsed) {
    if (ch.scheme == "bearer" && !bearer) bearer = &ch;
    if (ch.scheme == "basic" && !basic) basic = &ch;
  }
  if (!bearer) {
    if (!basic) co_return Unavailable("upstream asks for an auth scheme wharf does not speak");
    if (options_.user.empty()) {
      co_return Unavailable("upstream wants Basic credentials and none are configured");
    }
    if (basic_) co_return Unavailable("upstream refused the Basic credentials of " + options_.user);
    basic_ = true;
    co_return Status::Ok();
  }
  std::string realm = bearer->param("realm");
  if (realm.empty()) co_return Unavailable("upstream's Bearer challenge has no realm");
  std::string target;
  auto ep = ParseUrl(realm, &target);
  if (!ep) co_return Unavailable("upstream's token realm is not a URL: " + ep.error().message());
  if (target.empty()) target = "/";
  std::string query;
  auto add = [&query](std::string_view k, const std::string& v) {
    if (v.empty()) return;
    query += query.empty() ? "" : "&";
    query += std::string(k) + "=" + PercentEncode(v);
  };
  add("service", bearer->param("service"));
  std::string want = bearer->param("scope");
  add("scope", want.empty() ? scope : want);
  if (!query.empty()) target += (target.find('?') == std::string::npos ? "?" : "&") + query;
  HeaderList headers;
  if (!options_.user.empty()) {
    headers.emplace_back("Authorization",
                         "Basic " + auth::Base64Encode(options_.user + ":" + options_.password));
  }
  ++stats_.token_fetches;
  std::string body;
  unsigned status = 0;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) co_await SleepFor(Backoff(attempt));
    auto call = co_await transport_->Open(*ep, http::verb::get, target, headers, std::nullopt);
    if (!call) continue;
    Status st = co_await (*call)->FinishRequest();
    if (!st.ok()) continue;
    status = (*call)->status();
    auto all = co_await (*call)->ReadAll(kErrorBodyBytes);
    if (!all) continue;
    body = std::move(*all);
    if (!IsRetryable(status)) break;
  }
  if (status != 200) {
    if (status == 0) co_return Unavailable("cannot reach the token realm " + realm);
    co_return Unavailable("token realm " + realm + " answered " + std::to_string(status) +
                          (options_.user.empty() ? " (no credentials configured)" : ""));
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) co_return Unavailable("token realm sent no JSON");
  std::string token;
  if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
  if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) {
    token = j["access_token"].get<std::string>();
  }
  if (token.empty()) co_return Unavailable("token realm's answer has no token");
  int64_t expires_in = 60;  // the Docker token spec's default
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    expires_in = std::max<int64_t>(j["expires_in"].get<int64_t>(), 1);
  }
  // Renew a little early: the token must not expire between here and the upstream.
  const int64_t margin = std::min<int64_t>(10, expires_in / 2);
  tokens_[scope] =
      Token{token, std::chrono::steady_clock::now() + std::chrono::seconds(expires_in - margin)};
  co_return Status::Ok();
}

awaitable<Result<std::unique_ptr<Call>>> RegistryClient::SendOnce(const Request& req,
                                                                  const Endpoint& ep,
                                                                  const std::string& target) {
  HeaderList headers = req.headers;
  if (ep == base_) {
    if (auto a = AuthorizationFor(req.scope)) headers.emplace_back("Authorization", *a);
  }
  std::optional<uint64_t> length;
  if (req.writer) {
    length = req.writer_size;
  } else if (!req.body.empty() || req.method == http::verb::put || req.method == http::verb::post ||
             req.method == http::verb::patch) {
    length = req.body.size();
  }
  // A pooled connection the upstream closed meanwhile fails at once: try a fresh one.
  Status last;
  for (int fresh = 0; fresh < 2; ++fresh) {
    ++stats_.requests;
    auto opened = co_await transport_->Open(ep, req.method, target, headers, length);
    if (!opened) {
      last = opened.error();
      if (last.message().rfind("stale connection:", 0) == 0) continue;
      co_return Err(last);
    }
    std::unique_ptr<Call> call = std::move(*opened);
    const bool reused = call->reused();
    Status st;
    if (req.writer) {
      Call* c = call.get();
      std::function<awaitable<Status>(std::string_view)> sink =
          [c](std::string_view d) -> awaitable<Status> {
        co_return co_await c->WriteBody(d.data(), d.size());
      };
      st = co_await (*req.writer)(sink);
    } else if (!req.body.empty()) {
      st = co_await call->WriteBody(req.body.data(), req.body.size());
    }
    if (st.ok()) st = co_await call->FinishRequest();
    if (st.ok()) co_return call;
    last = st;
    if (!reused || st.code() != Code::kUnavailable) co_return Err(last);
  }
  co_return Err(last);
}

awaitable<Result<std::unique_ptr<Call>>> RegistryClient::Send(const Request& req) {
  Endpoint ep = base_;
  std::string target;
  if (req.path.rfind("http://", 0) == 0 || req.path.rfind("https://", 0) == 0) {
    auto parsed = ParseUrl(req.path, &target);
    if (!parsed) co_return Err(parsed.error());
    ep = *parsed;
  } else {
    target = req.raw ? req.path : prefix_ + req.path;
  }
  if (target.empty()) target = "/";
  int attempt = 0;
  bool authenticated = false;
  int redirects = 0;
  for (;;) {
    auto r = co_await SendOnce(req, ep, target);
    if (!r) {
      if (req.retry && r.error().code() == Code::kUnavailable &&
          attempt + 1 < options_.max_attempts) {
        ++attempt;
        ++stats_.retries;
        RequestCounter("retried").Inc();
        co_await SleepFor(Backoff(attempt));
        continue;
      }
      RequestCounter("failed").Inc();
      co_return r;
    }
    Call& call = **r;
    const unsigned s = call.status();
    if (s == 401 && !authenticated && ep == base_) {
      std::string challenge(call.header("WWW-Authenticate"));
      co_await call.Drain(kErrorBodyBytes);
      authenticated = true;
      Status st = co_await Authenticate(std::move(challenge), req.scope);
      if (!st.ok()) {
        RequestCounter("failed").Inc();
        co_return Err(st);
      }
      continue;
    }
    if (req.retry && IsRetryable(s) && attempt + 1 < options_.max_attempts) {
      co_await call.Drain(kErrorBodyBytes);
      ++attempt;
      ++stats_.retries;
      RequestCounter("retried").Inc();
      co_await SleepFor(Backoff(attempt));
      continue;
    }
    if (req.follow_redirects && IsRedirect(s) && redirects < 5) {
      std::string location(call.header("Location"));
      co_await call.Drain(kErrorBodyBytes);
      if (location.empty()) co_return Err(InvalidArgument("upstream redirect without Location"));
      if (location[0] == '/') {
        target = location;
      } else {
        auto parsed = ParseUrl(location, &target);
        if (!parsed) co_return Err(parsed.error());
        ep = *parsed;
        if (target.empty()) target = "/";
      }
      ++redirects;
      continue;
    }
    RequestCounter("answered").Inc();
    co_return r;
  }
}

awaitable<Status> RegistryClient::Ping() {
  Request req;
  req.path = "/v2/";
  auto call = co_await Send(req);
  if (!call) co_return call.error();
  auto body = co_await (*call)->ReadAll(kErrorBodyBytes);
  if ((*call)->status() != 200) {
    co_return StatusFromResponse((*call)->status(), "/v2/", body.value_or(""));
  }
  co_return Status::Ok();
}

awaitable<Result<UpstreamManifest>> RegistryClient::GetManifest(std::string repo,
                                                                std::string reference) {
  Request req;
  req.path = "/v2/" + repo + "/manifests/" + reference;
  req.headers = {{"Accept", kManifestAccept}};
  req.scope = PullScope(repo);
  WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await Send(req));
  if (call->status() != 200) {
    auto body = co_await call->ReadAll(kErrorBodyBytes);
    co_return Err(StatusFromResponse(call->status(), "manifest " + repo + ":" + reference,
                                     body.value_or("")));
  }
  UpstreamManifest m;
  m.media_type = MediaTypeOf(call->header("Content-Type"));
  std::string header_digest(call->header("Docker-Content-Digest"));
  WHARF_CO_ASSIGN_OR_RETURN(m.content, co_await call->ReadAll(options_.max_manifest_bytes));
  DigestAlgorithm algorithm = DigestAlgorithm::kSha256;
  auto by_digest = Digest::Parse(reference);
  if (by_digest) algorithm = by_digest->algorithm();
  m.digest = DigestOf(m.content, algorithm);
  if (by_digest && m.digest != *by_digest) {
    co_return Err(DigestMismatch("upstream manifest " + repo + "@" + reference + " hashes to " +
                                 m.digest.ToString()));
  }
  if (auto hd = Digest::Parse(header_digest); hd && hd->algorithm() == algorithm) {
    if (*hd != m.digest) {
      co_return Err(DigestMismatch("upstream manifest " + repo + ":" + reference + " is not " +
                                   header_digest));
    }
  }
  co_return m;
}

namespace {

// The next page of a paginated list: the target of a Link header with rel="next", when it is
// a path under /v2/ (never another host); "" at the end.
std::string NextPage(std::string_view link) {
  if (link.find("rel=\"next\"") == std::string_view::npos) return "";
  const size_t open = link.find('<'), close = link.find('>');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return "";
  }
  std::string_view target = link.substr(open + 1, close - open - 1);
  if (!target.starts_with("/v2/")) return "";
  for (char c : target) {
    if (c <= ' ' || c == 0x7f) return "";
  }
  return std::string(target);
}

}  // namespace

awaitable<Result<std::vector<std::string>>> RegistryClient::ListNames(std::string first_path,
                                                                      std::string scope,
                                                                      std::string key) {
  std::vector<std::string> out;
  std::string path = std::move(first_path);
  for (int page = 0; !path.empty(); ++page) {
    if (page >= 1000) co_return Err(InvalidArgument("upstream list of more than 1000 pages"));
    Request req;
    req.path = path;
    req.scope = scope;
    WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await Send(req));
    if (call->status() != 200) {
      auto body = co_await call->ReadAll(kErrorBodyBytes);
      co_return Err(StatusFromResponse(call->status(), path, body.value_or("")));
    }
    std::string next = NextPage(call->header("Link"));
    WHARF_CO_ASSIGN_OR_RETURN(std::string body, co_await call->ReadAll(4u << 20));
    nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object())
      co_return Err(InvalidArgument("upstream " + path + ": not a JSON object"));
    auto it = doc.find(key);
    if (it != doc.end() && !it->is_null()) {
      if (!it->is_array()) co_return Err(InvalidArgument("upstream " + path + ": bad " + key));
      for (const auto& v : *it) {
        if (!v.is_string()) co_return Err(InvalidArgument("upstream " + path + ": bad " + key));
        if (out.size() >= kMaxListNames) {
          co_return Err(InvalidArgument("upstream " + path + ": more than " +
                                        std::to_string(kMaxListNames) + " names"));
        }
        out.push_back(v.get<std::string>());
      }
    }
    path = std::move(next);
  }
  co_return out;
}

awaitable<Result<std::vector<std::string>>> RegistryClient::ListTags(std::string repo) {
  co_return co_await ListNames("/v2/" + repo + "/tags/list", PullScope(repo), "tags");
}

awaitable<Result<std::vector<std::string>>> RegistryClient::Catalog() {
  co_return co_await ListNames("/v2/_catalog", "registry:catalog:*", "repositories");
}

awaitable<Result<ManifestHead>> RegistryClient::HeadManifest(std::string repo,
                                                             std::string reference) {
  Request req;
  req.method = http::verb::head;
  req.path = "/v2/" + repo + "/manifests/" + reference;
  req.headers = {{"Accept", kManifestAccept}};
  req.scope = PullScope(repo);
  WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await Send(req));
  if (call->status() != 200) {
    co_return Err(StatusFromResponse(call->status(), "manifest " + repo + ":" + reference, ""));
  }
  ManifestHead h;
  h.media_type = MediaTypeOf(call->header("Content-Type"));
  h.size = call->content_length().value_or(0);
  auto d = Digest::Parse(call->header("Docker-Content-Digest"));
  if (!d) {
    // Some registries leave the digest out of HEAD: GET it then.
    WHARF_CO_ASSIGN_OR_RETURN(auto m, co_await GetManifest(repo, reference));
    h.digest = m.digest;
    h.media_type = m.media_type;
    h.size = m.content.size();
    co_return h;
  }
  h.digest = *d;
  co_return h;
}

awaitable<Status> RegistryClient::DeleteManifest(std::string repo, std::string reference) {
  Request req;
  req.method = http::verb::delete_;
  req.path = "/v2/" + repo + "/manifests/" + reference;
  req.scope = DeleteScope(repo);
  auto sent = co_await Send(req);
  if (!sent) co_return sent.error();
  auto& call = *sent;
  auto body = co_await call->ReadAll(kErrorBodyBytes);
  if (call->status() != 202 && call->status() != 200 && call->status() != 204) {
    co_return StatusFromResponse(call->status(), "DELETE manifest " + repo + ":" + reference,
                                 body.value_or(""));
  }
  co_return Status::Ok();
}

awaitable<Result<Digest>> RegistryClient::PutManifest(std::string repo, std::string reference,
                                                      std::string content, std::string media_type) {
  Request req;
  req.method = http::verb::put;
  req.path = "/v2/" + repo + "/manifests/" + reference;
  req.headers = {{"Content-Type", media_type}};
  req.scope = PushScope(repo);
  req.body = content;
  WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await Send(req));
  auto body = co_await call->ReadAll(kErrorBodyBytes);
  if (call->status() != 201 && call->status() != 200 && call->status() != 202) {
    co_return Err(StatusFromResponse(call->status(), "PUT manifest " + repo + ":" + reference,
                                     body.value_or("")));
  }
  co_return DigestOf(content);
}

awaitable<Result<uint64_t>> RegistryClient::HeadBlob(std::string repo, Digest digest) {
  Request req;
  req.method = http::verb::head;
  req.path = "/v2/" + repo + "/blobs/" + digest.ToString();
  req.scope = PullScope(repo);
  req.follow_redirects = true;
  WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await Send(req));
  if (call->status() != 200) {
    co_return Err(StatusFromResponse(call->status(), "blob " + digest.ToString(), ""));
  }
  auto len = call->content_length();
  if (!len) co_return Err(InvalidArgument("upstream HEAD of a blob without Content-Length"));
  co_return *len;
}

awaitable<Result<std::unique_ptr<Call>>> RegistryClient::GetBlobFrom(std::string repo,
                                                                     Digest digest,
                                                                     uint64_t offset) {
  Request req;
  req.path = "/v2/" + repo + "/blobs/" + digest.ToString();
  req.scope = PullScope(repo);
  req.follow_redirects = true;
  if (offset > 0) req.headers = {{"Range", "bytes=" + std::to_string(offset) + "-"}};
  ++stats_.blob_gets;
  WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await Send(req));
  const unsigned s = call->status();
  if (offset > 0 && s == 206) {
    std::string want = "bytes " + std::to_string(offset) + "-";
    if (call->header("Content-Range").substr(0, want.size()) != want) {
      co_return Err(InvalidArgument("upstream answered a Range with another range"));
    }
    co_return call;
  }
  if (s != 200) {
    auto body = co_await call->ReadAll(kErrorBodyBytes);
    co_return Err(
        StatusFromResponse(s, "blob " + repo + "@" + digest.ToString(), body.value_or("")));
  }
  // A 200 to a Range: the upstream ignores ranges; skip what we have.
  char skip[16384];
  for (uint64_t left = offset; left > 0;) {
    WHARF_CO_ASSIGN_OR_RETURN(size_t n,
                              co_await call->ReadSome(skip, std::min<uint64_t>(left, sizeof skip)));
    if (n == 0) co_return Err(Unavailable("upstream blob ended early"));
    left -= n;
  }
  co_return call;
}

awaitable<Result<std::unique_ptr<UpstreamBlob>>> RegistryClient::OpenBlob(std::string repo,
                                                                          Digest digest) {
  WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await GetBlobFrom(repo, digest, 0));
  auto len = call->content_length();
  if (!len) co_return Err(InvalidArgument("upstream blob answer has no Content-Length"));
  co_return std::unique_ptr<UpstreamBlob>(
      new UpstreamBlob(this, std::move(repo), std::move(digest), *len, std::move(call)));
}

awaitable<Result<bool>> RegistryClient::PushBlob(std::string repo, Digest digest, uint64_t size,
                                                 BodyWriter body) {
  auto have = co_await HeadBlob(repo, digest);
  if (have && *have == size) {
    ++stats_.blobs_skipped;
    co_return false;
  }
  if (!have && have.error().code() != Code::kNotFound) co_return Err(have.error());
  Status last;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) {
      ++stats_.retries;
      co_await SleepFor(Backoff(attempt));
    }
    Request start;
    start.method = http::verb::post;
    start.path = "/v2/" + repo + "/blobs/uploads/";
    start.scope = PushScope(repo);
    WHARF_CO_ASSIGN_OR_RETURN(auto call, co_await Send(start));
    auto answer = co_await call->ReadAll(kErrorBodyBytes);
    if (call->status() != 202) {
      co_return Err(
          StatusFromResponse(call->status(), "starting an upload to " + repo, answer.value_or("")));
    }
    std::string location(call->header("Location"));
    if (location.empty()) co_return Err(InvalidArgument("upstream upload without Location"));
    location += (location.find('?') == std::string::npos ? "?" : "&");
    location += "digest=" + PercentEncode(digest.ToString());
    Request put;
    put.method = http::verb::put;
    put.path = location;
    put.raw = true;
    put.headers = {{"Content-Type", "application/octet-stream"}};
    put.scope = PushScope(repo);
    put.writer = &body;
    put.writer_size = size;
    put.retry = false;  // a broken body starts over with a new session
    auto done = co_await Send(put);
    if (!done) {
      last = done.error();
      if (last.code() == Code::kUnavailable) continue;
      co_return Err(last);
    }
    auto reply = co_await (*done)->ReadAll(kErrorBodyBytes);
    const unsigned s = (*done)->status();
    if (s == 201 || s == 204 || s == 200) {
      ++stats_.blobs_pushed;
      co_return true;
    }
    last =
        StatusFromResponse(s, "PUT blob " + digest.ToString() + " to " + repo, reply.value_or(""));
    if (!IsRetryable(s)) co_return Err(last);
  }
  co_return Err(last);
}

UpstreamBlob::UpstreamBlob(RegistryClient* client, std::string repo, Digest digest, uint64_t size,
                           std::unique_ptr<Call> call)
    : client_(client),
      repo_(std::move(repo)),
      digest_(std::move(digest)),
      size_(size),
      hasher_(digest_.algorithm()),
      call_(std::move(call)) {}

UpstreamBlob::~UpstreamBlob() = default;

awaitable<Result<size_t>> UpstreamBlob::Read(void* buf, size_t n) {
  if (offset_ >= size_ || n == 0) co_return size_t{0};
  for (;;) {
    if (!call_) {
      if (resumes_ >= client_->options_.max_resumes) {
        co_return Err(Unavailable("upstream blob " + digest_.ToString() + " broke off at byte " +
                                  std::to_string(offset_) + " of " + std::to_string(size_) +
                                  " after " + std::to_string(resumes_) + " resumes"));
      }
      ++resumes_;
      ++client_->stats_.resumes;
      co_await SleepFor(client_->Backoff(resumes_));
      auto call = co_await client_->GetBlobFrom(repo_, digest_, offset_);
      if (!call) {
        if (call.error().code() == Code::kUnavailable) continue;
        co_return Err(call.error());
      }
      call_ = std::move(*call);
    }
    auto got = co_await call_->ReadSome(buf, std::min<uint64_t>(n, size_ - offset_));
    if (!got || *got == 0) {  // broken, or the body ended before the blob's size
      call_.reset();
      continue;
    }
    hasher_.Update(buf, *got);
    offset_ += *got;
    if (offset_ == size_) {
      call_.reset();
      Digest actual = hasher_.Finish();
      if (actual != digest_) {
        co_return Err(DigestMismatch("upstream blob " + digest_.ToString() + " hashes to " +
                                     actual.ToString()));
      }
    }
    co_return *got;
  }
}

}  // namespace wharf::upstream

#include "fakes/fake_registry.h"

#include "auth/base64.h"
#include "common/digest.h"

namespace wharf {

FakeRegistry::FakeRegistry(asio::any_io_executor ex, Options options)
    : ex_(ex), options_(std::move(options)) {}

FakeRegistry::~FakeRegistry() { Stop(); }

Status FakeRegistry::Start() {
  ServerOptions so;
  so.component = "fake_registry";
  server_ = std::make_unique<Server>(ex_, so, [this](Exchange& ex) { return Handle(ex); });
  Status st = server_->Listen("127.0.0.1:0");
  if (!st.ok()) return st;
  server_->Start();
  return Status::Ok();
}

void FakeRegistry::Stop() {
  if (server_) server_->Stop();
}

std::string FakeRegistry::url() const { return "http://" + server_->local_address(); }

std::string FakeRegistry::AddBlob(const std::string& content) {
  std::string d = DigestOf(content).ToString();
  blobs[d] = content;
  return d;
}

std::string FakeRegistry::AddManifest(const std::string& repo, const std::string& tag,
                                      const std::string& content, const std::string& media_type) {
  std::string d = DigestOf(content).ToString();
  manifests[repo + "@" + d] = Manifest{content, media_type};
  if (!tag.empty()) tags[repo + ":" + tag] = d;
  return d;
}

namespace {
awaitable<void> Answer(Exchange& ex, http::status s, std::string body = {}) {
  (void)co_await ex.Respond(s, std::move(body));
}
std::string ErrorJson(std::string_view code) {
  return std::string(R"({"errors":[{"code":")") + std::string(code) + R"(","message":"fake"}]})";
}
}  // namespace

awaitable<bool> FakeRegistry::Authorized(Exchange& ex, const std::string& repo) {
  std::string_view authz = ex.header(http::field::authorization);
  if (options_.auth == Auth::kNone) co_return true;
  if (options_.auth == Auth::kBasic) {
    std::string want = "Basic " + auth::Base64Encode(options_.user + ":" + options_.password);
    if (authz == want) co_return true;
    ex.AddHeader("WWW-Authenticate", R"(Basic realm="fake")");
  } else {
    if (authz.substr(0, 7) == "Bearer " && issued_tokens_.count(std::string(authz.substr(7))) > 0) {
      co_return true;
    }
    std::string ch = "Bearer realm=\"" + url() + "/token\",service=\"fake\"";
    if (!repo.empty()) ch += ",scope=\"repository:" + repo + ":pull,push\"";
    ex.AddHeader("WWW-Authenticate", ch);
  }
  ++counters.unauthorized;
  co_await Answer(ex, http::status::unauthorized, ErrorJson("UNAUTHORIZED"));
  co_return false;
}

awaitable<void> FakeRegistry::Handle(Exchange& ex) {
  ++counters.requests;
  std::string path(ex.path());
  if (path == "/token") {
    ++counters.token_requests;
    std::string want = "Basic " + auth::Base64Encode(options_.user + ":" + options_.password);
    if (ex.header(http::field::authorization) != want) {
      co_await Answer(ex, http::status::unauthorized, ErrorJson("UNAUTHORIZED"));
      co_return;
    }
    std::string token = "tok" + std::to_string(++next_id_);
    issued_tokens_.insert(token);
    co_await Answer(ex, http::status::ok,
                    R"({"token":")" + token + R"(","expires_in":)" +
                        std::to_string(options_.token_expires_in) + "}");
    co_return;
  }
  if (path.rfind("/v2/", 0) != 0) {
    co_await Answer(ex, http::status::not_found, ErrorJson("NOT_FOUND"));
    co_return;
  }
  if (faults.fail_503 > 0) {
    --faults.fail_503;
    co_await Answer(ex, http::status::service_unavailable, ErrorJson("UNAVAILABLE"));
    co_return;
  }
  std::string rest = path.substr(4);
  // Find the last "/blobs/" or "/manifests/" (a repository name may hold slashes).
  size_t b = rest.rfind("/blobs/");
  size_t m = rest.rfind("/manifests/");
  std::string repo;
  if (b != std::string::npos && (m == std::string::npos || b > m)) repo = rest.substr(0, b);
  if (m != std::string::npos && (b == std::string::npos || m > b)) repo = rest.substr(0, m);
  if (!co_await Authorized(ex, repo)) co_return;
  if (rest.empty()) {
    co_await Answer(ex, http::status::ok, "{}");
  } else if (!repo.empty() && m != std::string::npos && repo.size() == m) {
    co_await ManifestReq(ex, repo, rest.substr(m + 11));
  } else if (!repo.empty() && rest.compare(b, 15, "/blobs/uploads/") == 0) {
    co_await Upload(ex, repo, rest.substr(b + 15));
  } else if (!repo.empty()) {
    co_await Blob(ex, repo, rest.substr(b + 7));
  } else {
    co_await Answer(ex, http::status::not_found, ErrorJson("NAME_UNKNOWN"));
  }
}

awaitable<void> FakeRegistry::Blob(Exchange& ex, const std::string& repo,
                                   const std::string& digest) {
  (void)repo;
  auto it = blobs.find(digest);
  if (ex.method() == http::verb::head) ++counters.blob_heads;
  if (it == blobs.end()) {
    co_await Answer(ex, http::status::not_found, ErrorJson("BLOB_UNKNOWN"));
    co_return;
  }
  ex.AddHeader("Docker-Content-Digest", digest);
  if (ex.method() == http::verb::head) {
    (void)co_await ex.BeginResponse(http::status::ok, it->second.size());
    co_return;
  }
  ++counters.blob_gets;
  std::string content = it->second;
  if (faults.corrupt && !content.empty()) content[0] = static_cast<char>(content[0] ^ 1);
  uint64_t from = 0;
  std::string_view range = ex.header(http::field::range);
  http::status status = http::status::ok;
  if (!range.empty() && !faults.ignore_range) {
    ++counters.range_gets;
    from = std::stoull(std::string(range.substr(6)));  // "bytes=N-"
    if (from >= content.size()) {
      co_await Answer(ex, http::status::range_not_satisfiable, ErrorJson("BLOB_UNKNOWN"));
      co_return;
    }
    ex.AddHeader("Content-Range", "bytes " + std::to_string(from) + "-" +
                                      std::to_string(content.size() - 1) + "/" +
                                      std::to_string(content.size()));
    status = http::status::partial_content;
  }
  const uint64_t len = content.size() - from;
  if (!(co_await ex.BeginResponse(status, len)).ok()) co_return;
  if (faults.cut_blob > 0 && faults.cut_after < len) {
    --faults.cut_blob;
    (void)co_await ex.WriteBody(content.data() + from, faults.cut_after);
    ex.CloseAfter();
    co_return;  // short: the server closes the connection
  }
  (void)co_await ex.WriteBody(content.data() + from, len);
}

awaitable<void> FakeRegistry::Upload(Exchange& ex, const std::string& repo,
                                     const std::string& rest) {
  if (ex.method() == http::verb::post && rest.empty()) {
    ++counters.uploads_started;
    std::string id = "u" + std::to_string(++next_id_);
    uploads[id] = "";
    ex.AddHeader("Location", "/v2/" + repo + "/blobs/uploads/" + id);
    ex.AddHeader("Range", "0-0");
    co_await Answer(ex, http::status::accepted);
    co_return;
  }
  auto it = uploads.find(rest);
  if (it == uploads.end()) {
    co_await Answer(ex, http::status::not_found, ErrorJson("BLOB_UPLOAD_UNKNOWN"));
    co_return;
  }
  auto body = co_await ex.ReadAll(64u << 20);
  if (!body) co_return;
  it->second += *body;
  if (ex.method() == http::verb::patch) {
    ex.AddHeader("Location", "/v2/" + repo + "/blobs/uploads/" + rest);
    co_await Answer(ex, http::status::accepted);
    co_return;
  }
  ++counters.blob_puts;
  std::string want = ex.query("digest").value_or("");
  std::string content = std::move(it->second);
  uploads.erase(it);
  if (DigestOf(content).ToString() != want) {
    co_await Answer(ex, http::status::bad_request, ErrorJson("DIGEST_INVALID"));
    co_return;
  }
  blobs[want] = std::move(content);
  ex.AddHeader("Location", "/v2/" + repo + "/blobs/" + want);
  ex.AddHeader("Docker-Content-Digest", want);
  co_await Answer(ex, http::status::created);
}

awaitable<void> FakeRegistry::ManifestReq(Exchange& ex, const std::string& repo,
                                          const std::string& ref) {
  if (ex.method() == http::verb::put) {
    ++counters.manifest_puts;
    auto body = co_await ex.ReadAll(4u << 20);
    if (!body) co_return;
    std::string d = DigestOf(*body).ToString();
    bool by_digest = ref.rfind("sha256:", 0) == 0;
    if (by_digest && ref != d) {
      co_await Answer(ex, http::status::bad_request, ErrorJson("DIGEST_INVALID"));
      co_return;
    }
    AddManifest(repo, by_digest ? "" : ref, *body,
                std::string(ex.header(http::field::content_type)));
    ex.AddHeader("Docker-Content-Digest", d);
    co_await Answer(ex, http::status::created);
    co_return;
  }
  std::string digest = ref;
  if (ref.rfind("sha256:", 0) != 0) {
    auto t = tags.find(repo + ":" + ref);
    digest = t == tags.end() ? "" : t->second;
  }
  auto it = manifests.find(repo + "@" + digest);
  if (ex.method() == http::verb::head) {
    ++counters.manifest_heads;
  } else {
    ++counters.manifest_gets;
  }
  if (it == manifests.end()) {
    co_await Answer(ex, http::status::not_found, ErrorJson("MANIFEST_UNKNOWN"));
    co_return;
  }
  ex.AddHeader("Docker-Content-Digest", digest);
  std::string content = it->second.content;
  if (faults.corrupt && !content.empty()) content.back() = ' ';
  (void)co_await ex.Respond(http::status::ok, content, it->second.media_type);
}

}  // namespace wharf

// PUT / GET / HEAD / DELETE /v2/<name>/manifests/<tag|digest>.
//
// Manifests are stored byte-exact in the MetaStore (through BlobService, which fires the
// events); their digest is over the bytes received. A PUT is accepted only when every blob it
// references is linked in the repository and, for an index, every child manifest is in the
// repository, checked in the store's transaction that writes it (MANIFEST_BLOB_UNKNOWN
// otherwise, with the missing digest as detail). The subject of a manifest need not exist
// (OCI v1.1).
#include <algorithm>
#include <ctime>
#include <optional>
#include <utility>

#include "gateway/registry_internal.h"
#include "http/conditional.h"
#include "registry/manifest.h"
#include "registry/names.h"

namespace wharf::registry {
namespace {

// The route's reference; sends the error and returns nullopt when it is invalid. A malformed
// digest is DIGEST_INVALID; a malformed tag can name nothing (MANIFEST_UNKNOWN), except in a
// PUT, where the manifest cannot be stored under it (MANIFEST_INVALID).
awaitable<std::optional<Reference>> ParseRef(Exchange& ex, const Route& route) {
  Result<Reference> ref = ParseReference(route.reference);
  if (ref) co_return std::move(*ref);
  if (route.reference.find(':') != std::string::npos) {
    co_await SendError(ex, OciError::kDigestInvalid, ref.error().message());
  } else if (ex.method() == http::verb::put) {
    co_await SendError(ex, OciError::kManifestInvalid, "invalid tag: " + ref.error().message());
  } else {
    co_await SendError(ex, OciError::kManifestUnknown, "invalid tag: " + ref.error().message());
  }
  co_return std::nullopt;
}

// The `tag` parameters of a query string, in order, duplicates dropped. kInvalidArgument for
// an invalid tag or more than kMaxQueryTags of them.
Result<std::vector<std::string>> TagsOfQuery(std::string_view query) {
  constexpr size_t kMaxQueryTags = 64;
  std::vector<std::string> tags;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = part.find('=');
    if (PercentDecode(part.substr(0, eq)) != "tag") continue;
    std::string tag =
        eq == std::string_view::npos ? std::string() : PercentDecode(part.substr(eq + 1));
    if (!ValidTag(tag)) return Err(InvalidArgument("invalid tag in ?tag=: " + tag.substr(0, 128)));
    if (std::find(tags.begin(), tags.end(), tag) != tags.end()) continue;
    if (tags.size() == kMaxQueryTags) {
      return Err(InvalidArgument("more than " + std::to_string(kMaxQueryTags) + " tags in ?tag="));
    }
    tags.push_back(std::move(tag));
  }
  return tags;
}

// Reads the PUT body within the size limit; sends 413 / 400 and returns nullopt otherwise.
awaitable<std::optional<std::string>> ReadManifestBody(GatewayContext& ctx, Exchange& ex) {
  size_t limit = std::min<uint64_t>(ctx.options->max_manifest_bytes, kMaxManifestBytes);
  // The body is held whole while it arrives: its bytes come from the memory budget, so that
  // many slow manifest PUTs wait for memory instead of growing the gateway.
  MemoryGrant memory;
  if (ctx.memory) {
    const uint64_t want = std::min<uint64_t>(ex.content_length().value_or(limit), limit);
    memory = co_await ctx.memory->Take(want);
  }
  Result<std::string> body = co_await ex.ReadAll(limit);
  if (body) co_return std::move(*body);
  if (body.error().code() == Code::kTooLarge) {
    ex.CloseAfter();
    co_await SendError(ex, OciError::kSizeInvalid,
                       "manifest larger than " + std::to_string(limit) + " bytes", nullptr, 413);
  } else {
    co_await SendServerError(ctx, ex, body.error(), "read manifest");
  }
  co_return std::nullopt;
}

// Stores `record` in `name` and points each of `tags` at it (none: untagged).
awaitable<void> StoreManifest(GatewayContext& ctx, Exchange& ex, std::string name,
                              std::vector<std::string> tags, ManifestRecord record) {
  Digest missing;
  Status st;
  if (tags.empty()) {
    st = co_await ctx.blobs->PutManifest(name, std::nullopt, record, &missing);
  }
  for (const std::string& tag : tags) {
    std::optional<std::string> one = tag;
    st = co_await ctx.blobs->PutManifest(name, one, record, &missing);
    if (!st.ok()) break;
  }
  if (!st.ok()) {
    if (st.code() == Code::kNotFound) {
      nlohmann::json detail = nlohmann::json::object();
      detail["digest"] = missing.ToString();
      co_await SendError(ex, OciError::kManifestBlobUnknown,
                         "manifest references unknown content " + missing.ToString(), detail);
    } else if (st.code() == Code::kDigestMismatch) {
      co_await SendError(ex, OciError::kDigestInvalid, st.message());
    } else if (st.code() == Code::kInvalidArgument) {
      co_await SendError(ex, OciError::kManifestInvalid, st.message());
    } else {
      co_await SendServerError(ctx, ex, st, "put manifest");
    }
    co_return;
  }
  ex.AddHeader("Location", ManifestLocation(ctx, ex, name, record.digest));
  ex.AddHeader("Docker-Content-Digest", record.digest.ToString());
  if (record.subject) ex.AddHeader("OCI-Subject", record.subject->ToString());
  for (const std::string& tag : tags) ex.AddHeader("OCI-Tag", tag);
  (void)co_await ex.Respond(http::status::created, std::string(), "");
}

awaitable<void> PutManifest(GatewayContext& ctx, Exchange& ex, Route route, Reference ref) {
  std::optional<std::string> body = co_await ReadManifestBody(ctx, ex);
  if (!body) co_return;
  Result<ManifestInfo> info = ParseManifest(ex.header(http::field::content_type), *body);
  if (!info) {
    bool too_large = info.error().code() == Code::kTooLarge;
    co_await SendError(ex, too_large ? OciError::kSizeInvalid : OciError::kManifestInvalid,
                       info.error().message(), nullptr, too_large ? 413 : 0);
    co_return;
  }
  DigestAlgorithm algorithm = ref.is_digest() ? ref.digest.algorithm() : DigestAlgorithm::kSha256;
  Digest digest = DigestOf(*body, algorithm);
  if (ref.is_digest() && digest != ref.digest) {
    co_await SendError(ex, OciError::kDigestInvalid,
                       "manifest digest is " + digest.ToString() + ", not " + ref.ToString());
    co_return;
  }
  std::vector<std::string> tags;
  if (!ref.is_digest()) {
    tags.push_back(ref.tag);
  } else {
    // PUT by digest with ?tag=T (repeatable): the spec's way to push and tag at once.
    Result<std::vector<std::string>> query_tags = TagsOfQuery(ex.query_string());
    if (!query_tags) {
      co_await SendError(ex, OciError::kManifestInvalid, query_tags.error().message());
      co_return;
    }
    tags = std::move(*query_tags);
  }
  ManifestRecord record = ManifestRecordOf(digest, std::move(*body), std::move(*info),
                                           ctx.options->allow_foreign_layers);
  co_await StoreManifest(ctx, ex, route.name, std::move(tags), std::move(record));
}

awaitable<void> GetManifest(GatewayContext& ctx, Exchange& ex, Route route, Reference ref) {
  Result<ManifestRecord> m = co_await ctx.blobs->GetManifest(route.name, ref);
  if (!m) {
    if (m.error().code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kManifestUnknown, "manifest unknown: " + ref.ToString());
    } else {
      co_await SendServerError(ctx, ex, m.error(), "get manifest");
    }
    co_return;
  }
  ex.AddHeader("Docker-Content-Digest", m->digest.ToString());
  const std::string etag = "\"" + m->digest.ToString() + "\"";
  ex.AddHeader("ETag", etag);
  if (co_await RespondIfNotModified(ex, etag)) co_return;
  (void)co_await ex.Respond(http::status::ok, std::move(m->content), m->media_type);
}

awaitable<void> DeleteManifest(GatewayContext& ctx, Exchange& ex, Route route, Reference ref) {
  Status st = co_await ctx.blobs->DeleteManifest(route.name, ref);
  if (!st.ok()) {
    if (st.code() == Code::kNotFound) {
      co_await SendError(ex, OciError::kManifestUnknown, "manifest unknown: " + ref.ToString());
    } else {
      co_await SendServerError(ctx, ex, st, "delete manifest");
    }
    co_return;
  }
  (void)co_await ex.Respond(http::status::accepted, std::string(), "");
}

}  // namespace

awaitable<void> HandleManifest(GatewayContext& ctx, Exchange& ex, Route route) {
  http::verb m = ex.method();
  if (m != http::verb::get && m != http::verb::head && m != http::verb::put &&
      m != http::verb::delete_) {
    ex.AddHeader("Allow", "GET, HEAD, PUT, DELETE");
    co_await SendError(ex, OciError::kUnsupported);
    co_return;
  }
  std::optional<Reference> ref = co_await ParseRef(ex, route);
  if (!ref) co_return;
  if (m == http::verb::put) {
    co_await PutManifest(ctx, ex, std::move(route), std::move(*ref));
  } else if (m == http::verb::delete_) {
    co_await DeleteManifest(ctx, ex, std::move(route), std::move(*ref));
  } else {
    co_await GetManifest(ctx, ex, std::move(route), std::move(*ref));
  }
}

}  // namespace wharf::registry

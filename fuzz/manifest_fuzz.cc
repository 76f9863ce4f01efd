// ParseManifest over any Content-Type and body (registry/manifest.h), and the JSON the
// registry builds from a valid one (annotations, the referrers index).
//
// Input: "<Content-Type header>\n<body>"; with no '\n' the whole input is the body and there
// is no header.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/digest.h"
#include "fuzz_check.h"
#include "registry/manifest.h"

namespace {

using Json = nlohmann::json;
using wharf::Code;
using wharf::Digest;
using wharf::ManifestInfo;

// The digests of the descriptor array `key` of `doc`, read independently of the parser.
void AppendDigests(const Json& doc, const char* key, std::vector<Digest>* out) {
  auto it = doc.find(key);
  if (it == doc.end()) return;
  for (const Json& d : *it) out->push_back(*Digest::Parse(d.at("digest").get<std::string>()));
}

// A valid manifest's digest lists are those of its JSON, in document order.
void CheckDigestLists(std::string_view body, const ManifestInfo& info) {
  Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!doc.is_discarded() && doc.is_object());
  std::vector<Digest> blobs, manifests;
  if (info.is_index) {
    AppendDigests(doc, "manifests", &manifests);
  } else {
    blobs.push_back(*Digest::Parse(doc.at("config").at("digest").get<std::string>()));
    AppendDigests(doc, "layers", &blobs);
    AppendDigests(doc, "blobs", &blobs);
  }
  FUZZ_CHECK(info.blobs == blobs);
  FUZZ_CHECK(info.manifests == manifests);
  if (auto it = doc.find("subject"); it != doc.end()) {
    FUZZ_CHECK(info.subject == Digest::Parse(it->at("digest").get<std::string>()).value());
  } else {
    FUZZ_CHECK(!info.subject.has_value());
  }
  if (auto it = doc.find("artifactType"); it != doc.end()) {
    FUZZ_CHECK(info.artifact_type == it->get<std::string>());
  } else if (info.is_index) {
    FUZZ_CHECK(info.artifact_type.empty());
  } else {
    FUZZ_CHECK(info.artifact_type == doc.at("config").at("mediaType").get<std::string>());
  }
}

// The referrers index listing this manifest is itself a valid index naming it.
void CheckReferrersIndex(std::string_view body, const ManifestInfo& info) {
  auto annotations = wharf::ParseAnnotations(info.annotations);
  FUZZ_CHECK(annotations.has_value());
  FUZZ_CHECK(wharf::SerializeAnnotations(*annotations) == info.annotations);
  wharf::Descriptor d;
  d.media_type = info.media_type;
  d.digest = wharf::DigestOf(body);
  d.size = static_cast<int64_t>(body.size());
  d.artifact_type = info.artifact_type;
  d.annotations = *annotations;
  std::string index = wharf::MakeReferrersIndex({d});
  auto parsed = wharf::ParseManifest(wharf::kOciIndexMediaType, index);
  FUZZ_CHECK(parsed.has_value());
  FUZZ_CHECK(parsed->is_index);
  FUZZ_CHECK(parsed->manifests == std::vector<Digest>{d.digest});
  Json entry = Json::parse(index).at("manifests").at(0);
  FUZZ_CHECK(entry.value("artifactType", "") == info.artifact_type);
  FUZZ_CHECK(entry.value("annotations", Json::object()) == Json(*annotations));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size), header, body;
  wharf::fuzz::SplitFirstLine(in, &header, &body);

  auto info = wharf::ParseManifest(header, body);
  if (!info) {
    FUZZ_CHECK(info.error().code() == Code::kInvalidArgument ||
               info.error().code() == Code::kTooLarge);
  } else {
    FUZZ_CHECK(wharf::IsKnownManifestMediaType(info->media_type));
    FUZZ_CHECK(info->is_index == wharf::IsIndexMediaType(info->media_type));
    if (info->is_index) {
      FUZZ_CHECK(info->blobs.empty());
    } else {
      FUZZ_CHECK(info->manifests.empty() && !info->blobs.empty());  // the config comes first
    }
    FUZZ_CHECK(info->artifact_type.empty() || wharf::ValidMediaType(info->artifact_type));
    CheckDigestLists(body, *info);
    CheckReferrersIndex(body, *info);
  }

  // The body as a stored annotations object (meta stores keep them as JSON text).
  auto annotations = wharf::ParseAnnotations(body);
  if (annotations) {
    auto again = wharf::ParseAnnotations(wharf::SerializeAnnotations(*annotations));
    FUZZ_CHECK(again && *again == *annotations);
  } else {
    FUZZ_CHECK(annotations.error().code() == Code::kInvalidArgument);
  }
  return 0;
}

// Manifest validation and the referrers index (OCI Image Specification v1.1 manifest.md,
// image-index.md, descriptor.md; Docker Image Manifest V2 Schema 2 and manifest lists;
// OCI Distribution Specification v1.1 "Listing Referrers").
//
// Everything here runs on untrusted bytes from a PUT: it never throws, bounds JSON nesting
// before parsing, rejects duplicate object keys (two parsers must never see two manifests),
// and checks every value's type before use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/limits.h"
#include "common/status.h"

namespace wharf {

inline constexpr std::string_view kOciManifestMediaType =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndexMediaType = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifestMediaType =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestListMediaType =
    "application/vnd.docker.distribution.manifest.list.v2+json";

// kMaxManifestBytes (common/limits.h): manifests larger than this are refused.
// The deepest JSON nesting accepted in a manifest. Real manifests nest 4 or 5 levels.
inline constexpr int kMaxManifestDepth = 64;

// True for the four media types above.
bool IsKnownManifestMediaType(std::string_view media_type);
// True for the OCI index and the Docker manifest list.
bool IsIndexMediaType(std::string_view media_type);
// RFC 6838 type "/" subtype (restricted-name characters), at most 255 characters; no
// parameters. Descriptor media types and artifact types must satisfy it.
bool ValidMediaType(std::string_view media_type);

// annotations: string keys to string values.
using Annotations = std::map<std::string, std::string>;

// A content descriptor, as the referrers API lists it.
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::string artifact_type;  // omitted from JSON when empty
  Annotations annotations;    // omitted from JSON when empty
  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

// What the registry needs from a valid manifest.
struct ManifestInfo {
  std::string media_type;     // one of the four known media types
  bool is_index = false;      // an OCI index or a Docker manifest list
  std::vector<Digest> blobs;  // image manifest: config, layers, then any "blobs" entries
  // Foreign (non-distributable) layers with URLs: clients fetch them from those URLs, so the
  // registry need not hold them. Not in `blobs`.
  std::vector<Digest> foreign;
  std::vector<Digest> manifests;  // index: the child manifests
  std::optional<Digest> subject;  // the "subject" descriptor's digest (referrers API)
  // "artifactType", or for an image manifest without one, the config's mediaType (as the
  // referrers API requires); empty for an index without one.
  std::string artifact_type;
  std::string annotations = "{}";  // the "annotations" object serialized, "{}" when absent
};

// Validates a manifest PUT. `content_type_header` is the request's Content-Type (parameters
// and case are ignored; may be empty). The effective media type is the body's "mediaType" if
// present, else the header's; when both are present they must agree, and it must be a known
// type. Errors: kTooLarge (body over kMaxManifestBytes); kInvalidArgument for everything else
// (the caller answers MANIFEST_INVALID), with a message naming the offending field.
Result<ManifestInfo> ParseManifest(std::string_view content_type_header, std::string_view body);

// The image index the referrers API returns:
// {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[...]}
// each entry with mediaType, digest, size, and artifactType / annotations when non-empty.
std::string MakeReferrersIndex(const std::vector<Descriptor>& descs);

// Round trip of ManifestInfo::annotations: "{}" for none. ParseAnnotations fails with
// kInvalidArgument unless `json` is an object of strings.
std::string SerializeAnnotations(const Annotations& annotations);
Result<Annotations> ParseAnnotations(std::string_view json);

}  // namespace wharf

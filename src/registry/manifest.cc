#include "registry/manifest.h"

#include <fmt/format.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace wharf {
namespace {

using Json = nlohmann::json;

bool IsRestrictedNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
         c == '#' || c == '$' || c == '&' || c == '-' || c == '^' || c == '_' || c == '.' ||
         c == '+';
}

// RFC 6838 restricted-name: an alphanumeric first character, then up to 126 more.
bool ValidRestrictedName(std::string_view s) {
  if (s.empty() || s.size() > 127) return false;
  char first = s.front();
  bool alnum = (first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z') ||
               (first >= '0' && first <= '9');
  if (!alnum) return false;
  for (char c : s) {
    if (!IsRestrictedNameChar(c)) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The media type of a Content-Type header, without parameters, lowercased.
std::string HeaderMediaType(std::string_view header) {
  std::string out(TrimOws(header.substr(0, header.find(';'))));
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// True when no '{' or '[' outside strings nests deeper than `max_depth`.
bool NestingWithin(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// Checks, before the parser runs, what it would get wrong: nlohmann's lexer takes a NUL byte
// for the end of input (so "{...}\0junk" would parse), and hostile nesting must never reach
// recursive code (destruction, dump()). A NUL is never valid JSON: raw control characters are
// not allowed even inside strings.
Status PreScanJson(std::string_view s, int max_depth) {
  if (s.find('\0') != std::string_view::npos) return InvalidArgument("NUL byte in JSON");
  if (!NestingWithin(s, max_depth)) {
    return InvalidArgument(fmt::format("JSON nested deeper than {} levels", max_depth));
  }
  return Status::Ok();
}

// Parses `text` as JSON; kInvalidArgument if it is malformed, too deep, or has an object with
// a duplicate key (parsers disagree on which one wins, so the registry refuses to guess).
Result<Json> ParseStrictJson(std::string_view text, int max_depth) {
  if (Status st = PreScanJson(text, max_depth); !st.ok()) return Err(std::move(st));
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  Json::parser_callback_t cb = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == Json::parse_event_t::object_end && !keys.empty()) {
      keys.pop_back();
    } else if (event == Json::parse_event_t::key && !keys.empty() && parsed.is_string()) {
      if (!keys.back().insert(parsed.get_ref<const std::string&>()).second) duplicate = true;
    }
    return true;
  };
  Json j = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err(InvalidArgument("malformed JSON"));
  if (duplicate) return Err(InvalidArgument("duplicate key in JSON object"));
  return j;
}

// An optional string field; kInvalidArgument when present and not a string.
Result<std::optional<std::string>> OptionalString(const Json& obj, const char* key,
                                                  std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::optional<std::string>();
  if (!it->is_string()) return Err(InvalidArgument(fmt::format("{}.{}: not a string", where, key)));
  return std::optional<std::string>(it->get<std::string>());
}

Result<Annotations> AnnotationsFromJson(const Json& j, std::string_view where) {
  if (!j.is_object()) return Err(InvalidArgument(fmt::format("{}: not an object", where)));
  Annotations out;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) {
      return Err(InvalidArgument(fmt::format("{}: value of \"{}\" not a string", where, k)));
    }
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

Result<int64_t> DescriptorSize(const Json& obj, std::string_view where) {
  auto it = obj.find("size");
  if (it == obj.end()) return Err(InvalidArgument(fmt::format("{}: no size", where)));
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Err(InvalidArgument(fmt::format("{}.size: too large", where)));
    }
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<int64_t>();
  return Err(InvalidArgument(fmt::format("{}.size: not a non-negative integer", where)));
}

// Type checks on the optional descriptor fields wharf does not otherwise use.
Status CheckDescriptorExtras(const Json& obj, std::string_view where) {
  if (auto it = obj.find("urls"); it != obj.end()) {
    if (!it->is_array()) return InvalidArgument(fmt::format("{}.urls: not an array", where));
    for (const Json& u : *it) {
      if (!u.is_string()) return InvalidArgument(fmt::format("{}.urls: not strings", where));
    }
  }
  if (auto it = obj.find("data"); it != obj.end() && !it->is_string()) {
    return InvalidArgument(fmt::format("{}.data: not a string", where));
  }
  if (auto it = obj.find("platform"); it != obj.end() && !it->is_object()) {
    return InvalidArgument(fmt::format("{}.platform: not an object", where));
  }
  return Status::Ok();
}

Result<Descriptor> DescriptorFromJson(const Json& obj, std::string_view where) {
  if (!obj.is_object()) return Err(InvalidArgument(fmt::format("{}: not an object", where)));
  Descriptor d;
  WHARF_ASSIGN_OR_RETURN(auto media_type, OptionalString(obj, "mediaType", where));
  if (!media_type || !ValidMediaType(*media_type)) {
    return Err(InvalidArgument(fmt::format("{}.mediaType: missing or invalid", where)));
  }
  d.media_type = std::move(*media_type);
  WHARF_ASSIGN_OR_RETURN(auto digest, OptionalString(obj, "digest", where));
  if (!digest) return Err(InvalidArgument(fmt::format("{}: no digest", where)));
  auto parsed = Digest::Parse(*digest);
  if (!parsed) {
    return Err(InvalidArgument(fmt::format("{}.digest: {}", where, parsed.error().message())));
  }
  d.digest = *parsed;
  WHARF_ASSIGN_OR_RETURN(d.size, DescriptorSize(obj, where));
  WHARF_ASSIGN_OR_RETURN(auto artifact_type, OptionalString(obj, "artifactType", where));
  if (artifact_type) {
    if (!ValidMediaType(*artifact_type)) {
      return Err(InvalidArgument(fmt::format("{}.artifactType: invalid", where)));
    }
    d.artifact_type = std::move(*artifact_type);
  }
  if (auto it = obj.find("annotations"); it != obj.end()) {
    WHARF_ASSIGN_OR_RETURN(d.annotations,
                           AnnotationsFromJson(*it, fmt::format("{}.annotations", where)));
  }
  if (Status st = CheckDescriptorExtras(obj, where); !st.ok()) return Err(std::move(st));
  return d;
}

// A layer descriptor clients fetch from its own URLs (Windows base layers): a non-distributable
// media type and at least one URL, each absolute http(s) without a fragment. A
// non-distributable layer without URLs is an ordinary blob (it must be pushed).
Result<bool> IsForeignLayer(const Json& obj, std::string_view where) {
  static constexpr std::string_view kForeignTypes[] = {
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.foreign.diff.tar",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  auto mt = obj.find("mediaType");
  auto urls = obj.find("urls");
  if (mt == obj.end() || !mt->is_string() || urls == obj.end() || !urls->is_array() ||
      urls->empty()) {
    return false;
  }
  const std::string& type = mt->get_ref<const std::string&>();
  bool foreign_type = false;
  for (std::string_view t : kForeignTypes) foreign_type = foreign_type || type == t;
  if (!foreign_type) return false;
  for (const Json& u : *urls) {
    const std::string& url = u.get_ref<const std::string&>();  // strings: checked already
    const bool http = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
    if (!http || url.size() > 2048 || url.find('#') != std::string::npos ||
        url.find_first_of(" \t\r\n") != std::string::npos) {
      return Err(InvalidArgument(fmt::format("{}.urls: not an absolute http(s) URL", where)));
    }
  }
  return true;
}

// Appends the digests of the descriptor array `key` (required or optional) to `out`; with
// `foreign`, foreign layers (IsForeignLayer) go there instead.
Status AppendDescriptorArray(const Json& doc, const char* key, bool required,
                             std::vector<Digest>* out, std::vector<Digest>* foreign = nullptr) {
  auto it = doc.find(key);
  if (it == doc.end()) {
    return required ? InvalidArgument(fmt::format("no {} array", key)) : Status::Ok();
  }
  if (!it->is_array()) return InvalidArgument(fmt::format("{}: not an array", key));
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string where = fmt::format("{}[{}]", key, i);
    auto d = DescriptorFromJson((*it)[i], where);
    if (!d) return d.error();
    if (foreign) {
      Result<bool> is_foreign = IsForeignLayer((*it)[i], where);
      if (!is_foreign) return is_foreign.error();
      if (*is_foreign) {
        foreign->push_back(d->digest);
        continue;
      }
    }
    out->push_back(d->digest);
  }
  return Status::Ok();
}

// The media type the manifest declares, reconciling the body and the header.
Result<std::string> EffectiveMediaType(std::string_view header, const Json& doc) {
  std::string from_header = HeaderMediaType(header);
  WHARF_ASSIGN_OR_RETURN(auto from_body, OptionalString(doc, "mediaType", "manifest"));
  std::string effective;
  if (from_body) {
    if (!from_header.empty() && from_header != *from_body) {
      return Err(InvalidArgument(
          fmt::format("mediaType {} does not match Content-Type {}", *from_body, from_header)));
    }
    effective = std::move(*from_body);
  } else {
    effective = std::move(from_header);
  }
  if (effective.empty()) return Err(InvalidArgument("manifest media type unknown"));
  if (!IsKnownManifestMediaType(effective)) {
    return Err(InvalidArgument("unsupported manifest media type"));
  }
  return effective;
}

// Fields common to image manifests and indexes: subject, artifactType, annotations.
Status ParseCommonFields(const Json& doc, ManifestInfo* info) {
  if (auto it = doc.find("subject"); it != doc.end()) {
    auto d = DescriptorFromJson(*it, "subject");
    if (!d) return d.error();
    info->subject = d->digest;
  }
  auto artifact_type = OptionalString(doc, "artifactType", "manifest");
  if (!artifact_type) return artifact_type.error();
  if (*artifact_type) {
    if (!ValidMediaType(**artifact_type)) return InvalidArgument("artifactType: invalid");
    info->artifact_type = std::move(**artifact_type);
  }
  if (auto it = doc.find("annotations"); it != doc.end()) {
    auto annotations = AnnotationsFromJson(*it, "annotations");
    if (!annotations) return annotations.error();
    info->annotations = SerializeAnnotations(*annotations);
  }
  return Status::Ok();
}

Status ParseImageManifest(const Json& doc, ManifestInfo* info) {
  if (doc.contains("manifests")) return InvalidArgument("image manifest with a manifests field");
  auto config_it = doc.find("config");
  if (config_it == doc.end()) return InvalidArgument("no config descriptor");
  auto config = DescriptorFromJson(*config_it, "config");
  if (!config) return config.error();
  info->blobs.push_back(config->digest);
  WHARF_RETURN_IF_ERROR(
      AppendDescriptorArray(doc, "layers", /*required=*/true, &info->blobs, &info->foreign));
  // "blobs" of the artifact-manifest draft that some tools still produce.
  WHARF_RETURN_IF_ERROR(AppendDescriptorArray(doc, "blobs", /*required=*/false, &info->blobs));
  WHARF_RETURN_IF_ERROR(ParseCommonFields(doc, info));
  if (info->artifact_type.empty()) info->artifact_type = config->media_type;
  return Status::Ok();
}

Status ParseIndex(const Json& doc, ManifestInfo* info) {
  if (doc.contains("config") || doc.contains("layers")) {
    return InvalidArgument("index with a config or layers field");
  }
  WHARF_RETURN_IF_ERROR(
      AppendDescriptorArray(doc, "manifests", /*required=*/true, &info->manifests));
  return ParseCommonFields(doc, info);
}

}  // namespace

bool IsKnownManifestMediaType(std::string_view media_type) {
  return media_type == kOciManifestMediaType || media_type == kDockerManifestMediaType ||
         IsIndexMediaType(media_type);
}

bool IsIndexMediaType(std::string_view media_type) {
  return media_type == kOciIndexMediaType || media_type == kDockerManifestListMediaType;
}

bool ValidMediaType(std::string_view media_type) {
  if (media_type.size() > 255) return false;
  size_t slash = media_type.find('/');
  if (slash == std::string_view::npos) return false;
  return ValidRestrictedName(media_type.substr(0, slash)) &&
         ValidRestrictedName(media_type.substr(slash + 1));
}

Result<ManifestInfo> ParseManifest(std::string_view content_type_header, std::string_view body) {
  if (body.size() > kMaxManifestBytes) {
    return Err(TooLarge(fmt::format("manifest larger than {} bytes", kMaxManifestBytes)));
  }
  WHARF_ASSIGN_OR_RETURN(Json doc, ParseStrictJson(body, kMaxManifestDepth));
  if (!doc.is_object()) return Err(InvalidArgument("manifest is not a JSON object"));
  auto version = doc.find("schemaVersion");
  if (version == doc.end() || !version->is_number_integer() || version->get<int64_t>() != 2) {
    return Err(InvalidArgument("schemaVersion must be 2"));
  }
  ManifestInfo info;
  WHARF_ASSIGN_OR_RETURN(info.media_type, EffectiveMediaType(content_type_header, doc));
  info.is_index = IsIndexMediaType(info.media_type);
  Status st = info.is_index ? ParseIndex(doc, &info) : ParseImageManifest(doc, &info);
  if (!st.ok()) return Err(std::move(st));
  return info;
}

std::string MakeReferrersIndex(const std::vector<Descriptor>& descs) {
  using OrderedJson = nlohmann::ordered_json;
  OrderedJson manifests = OrderedJson::array();
  for (const Descriptor& d : descs) {
    OrderedJson entry;
    entry["mediaType"] = d.media_type;
    entry["digest"] = d.digest.ToString();
    entry["size"] = d.size;
    if (!d.artifact_type.empty()) entry["artifactType"] = d.artifact_type;
    if (!d.annotations.empty()) entry["annotations"] = d.annotations;
    manifests.push_back(std::move(entry));
  }
  OrderedJson index;
  index["schemaVersion"] = 2;
  index["mediaType"] = kOciIndexMediaType;
  index["manifests"] = std::move(manifests);
  return index.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

std::string SerializeAnnotations(const Annotations& annotations) {
  if (annotations.empty()) return "{}";
  Json j(annotations);
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<Annotations> ParseAnnotations(std::string_view json) {
  WHARF_ASSIGN_OR_RETURN(Json j, ParseStrictJson(json, 2));
  return AnnotationsFromJson(j, "annotations");
}

}  // namespace wharf

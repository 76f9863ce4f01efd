#include "registry/errors.h"

#include <array>
#include <cstdlib>

namespace wharf {
namespace {

struct Entry {
  OciError error;
  OciErrorInfo info;
};

// In enumerator order; checked by the test and by the index assertion below.
constexpr std::array kTable = {
    Entry{OciError::kBlobUnknown, {"BLOB_UNKNOWN", 404, "blob unknown to registry"}},
    Entry{OciError::kBlobUploadInvalid, {"BLOB_UPLOAD_INVALID", 400, "blob upload invalid"}},
    Entry{OciError::kBlobUploadUnknown,
          {"BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"}},
    Entry{OciError::kDigestInvalid,
          {"DIGEST_INVALID", 400, "provided digest did not match uploaded content"}},
    Entry{OciError::kManifestBlobUnknown,
          {"MANIFEST_BLOB_UNKNOWN", 400,
           "manifest references a manifest or blob unknown to registry"}},
    Entry{OciError::kManifestInvalid, {"MANIFEST_INVALID", 400, "manifest invalid"}},
    Entry{OciError::kManifestUnknown, {"MANIFEST_UNKNOWN", 404, "manifest unknown to registry"}},
    Entry{OciError::kNameInvalid, {"NAME_INVALID", 400, "invalid repository name"}},
    Entry{OciError::kNameUnknown, {"NAME_UNKNOWN", 404, "repository name not known to registry"}},
    Entry{OciError::kSizeInvalid,
          {"SIZE_INVALID", 400, "provided length did not match content length"}},
    Entry{OciError::kUnauthorized, {"UNAUTHORIZED", 401, "authentication required"}},
    Entry{OciError::kDenied, {"DENIED", 403, "requested access to the resource is denied"}},
    Entry{OciError::kUnsupported, {"UNSUPPORTED", 405, "the operation is unsupported"}},
    Entry{OciError::kTooManyRequests, {"TOOMANYREQUESTS", 429, "too many requests"}},
    Entry{OciError::kRangeInvalid, {"BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable"}},
    Entry{OciError::kUnavailable, {"UNAVAILABLE", 503, "service unavailable"}},
    Entry{OciError::kInternal, {"UNKNOWN", 500, "unknown error"}},
};

constexpr bool TableInOrder() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<size_t>(kTable[i].error) != i) return false;
  }
  return true;
}
static_assert(TableInOrder(), "kTable must list every OciError in enumerator order");
static_assert(kTable.size() == static_cast<size_t>(OciError::kInternal) + 1);

}  // namespace

const OciErrorInfo& GetOciErrorInfo(OciError e) {
  auto i = static_cast<size_t>(e);
  if (i >= kTable.size()) std::abort();  // an out-of-range enum value is a bug
  return kTable[i].info;
}

std::string OciErrorBody(OciError e, std::string_view message, const nlohmann::json& detail) {
  const OciErrorInfo& info = GetOciErrorInfo(e);
  nlohmann::ordered_json err;
  err["code"] = info.code;
  err["message"] = message.empty() ? info.message : message;
  if (!detail.is_null()) err["detail"] = detail;
  nlohmann::ordered_json body;
  body["errors"] = nlohmann::ordered_json::array({std::move(err)});
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace wharf

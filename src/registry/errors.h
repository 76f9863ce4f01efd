// The OCI error table, in one place: each error's code string, HTTP status and default
// message (OCI Distribution Specification v1.1, "Error Codes"), and the JSON error body.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace wharf {

enum class OciError {
  kBlobUnknown,          // BLOB_UNKNOWN 404: blob unknown to registry
  kBlobUploadInvalid,    // BLOB_UPLOAD_INVALID 400: blob upload invalid
  kBlobUploadUnknown,    // BLOB_UPLOAD_UNKNOWN 404: no such upload session
  kDigestInvalid,        // DIGEST_INVALID 400: malformed digest, or content does not match it
  kManifestBlobUnknown,  // MANIFEST_BLOB_UNKNOWN 400: manifest references an unknown blob
  kManifestInvalid,      // MANIFEST_INVALID 400
  kManifestUnknown,      // MANIFEST_UNKNOWN 404
  kNameInvalid,          // NAME_INVALID 400: repository name outside the grammar
  kNameUnknown,          // NAME_UNKNOWN 404: repository not known to registry
  kSizeInvalid,          // SIZE_INVALID 400: provided length did not match content length
  kUnauthorized,         // UNAUTHORIZED 401: authentication required
  kDenied,               // DENIED 403: requested access to the resource is denied
  kUnsupported,          // UNSUPPORTED 405: the operation is unsupported (e.g. deletes off)
  kTooManyRequests,      // TOOMANYREQUESTS 429
  // An out-of-order upload chunk or an unsatisfiable Range. The spec mandates status 416 but
  // defines no code for it; BLOB_UPLOAD_INVALID is the spec code that clients know and that
  // fits (distribution's RANGE_INVALID is not in the spec).
  kRangeInvalid,  // BLOB_UPLOAD_INVALID 416
  // Server-side failures (5xx; not in the spec, which lists only client errors). Codes follow
  // distribution's, which clients already recognize.
  kUnavailable,  // UNAVAILABLE 503: the storage cluster cannot serve now; retry later
  kInternal,     // UNKNOWN 500: a bug or an unexpected failure
};

struct OciErrorInfo {
  std::string_view code;     // e.g. "BLOB_UNKNOWN"
  int http_status;           // e.g. 404
  std::string_view message;  // the default human-readable message
};

// The table entry for `e`. Never fails: every enumerator has one.
const OciErrorInfo& GetOciErrorInfo(OciError e);
inline std::string_view OciErrorCode(OciError e) { return GetOciErrorInfo(e).code; }
inline int OciErrorStatus(OciError e) { return GetOciErrorInfo(e).http_status; }

// The response body {"errors":[{"code":"…","message":"…","detail":…}]}. An empty `message`
// uses the default; "detail" is omitted when `detail` is null. Bytes of `message` or `detail`
// that are not valid UTF-8 are replaced with U+FFFD (never throws).
std::string OciErrorBody(OciError e, std::string_view message = {},
                         const nlohmann::json& detail = nullptr);

}  // namespace wharf

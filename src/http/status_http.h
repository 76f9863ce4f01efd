// The one table from wharf's Status codes to HTTP, for the cluster's own APIs (master,
// chunkserver) and the file API. Errors there are {"error": {"code": "...", "message": "..."}}
// with the code's name. (The registry answers with the OCI table in registry/errors.h.)
#pragma once

#include <string>

#include "common/asio.h"
#include "common/status.h"
#include "http/server.h"

namespace wharf {

//   kInvalidArgument, kDigestMismatch, kCancelled (body ended early) -> 400
//   kNotFound 404, kUnsupported 405, kConflict 409, kTooLarge 413, kRangeInvalid 416,
//   kUnavailable 503, kNoSpace 507 (Insufficient Storage), anything else 500.
http::status HttpStatusOf(const Status& st);

// {"error": {"code": "<CodeName>", "message": "<message>"}}
std::string ErrorJsonBody(const Status& st);

// Answers `ex` with HttpStatusOf(st) and ErrorJsonBody(st).
awaitable<void> RespondError(Exchange& ex, Status st);

}  // namespace wharf

// The file API (FastDFS-style storage for pictures and artifacts):
//   POST   /files        body = content (any size; Content-Type kept)
//                        -> 201 {"id": "<32 hex>", "digest": "sha256:…", "size": N}
//                        or a multipart/form-data body: one file per file part
//                        (gateway/file_form.h) -> 201 {"files": [...]}
//   GET    /files/{id}   (and HEAD) bytes, Content-Type, Content-Length, ETag, Range,
//                        Content-Disposition with the file name when it has one
//   DELETE /files/{id}   -> 204
// Errors: {"error": {"code": "...", "message": "..."}} (404 unknown id, 503 nothing writable).
#pragma once

#include "common/asio.h"
#include "gateway/gateway.h"
#include "http/server.h"

namespace wharf {

// Serves /files and /files/{id}.
awaitable<void> HandleFiles(GatewayContext& ctx, Exchange& ex);

}  // namespace wharf

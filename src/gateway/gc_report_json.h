// A garbage collection report (gateway/garbage_collector.h) as JSON: the one shape that
// `wharf gc --json` (cli/cmd_gc.cc) and GET /admin/gc's "last_round" (gateway/admin_api.cc)
// both print, so the two never name a count differently.
#pragma once

#include <nlohmann/json.hpp>

#include "gateway/garbage_collector.h"

namespace wharf {

// {"manifests", "blob_links", "blobs", "blob_bytes", "chunks_released", "chunks_deleted",
//  "bytes_deleted", "chunks_pending", "bytes_pending", "uploads_expired", "uploads_stale",
//  "stale_chunks"}: GcReport's fields under these names ("blob_links" is `links`), all numbers.
nlohmann::json GcReportJson(const GcReport& report);

}  // namespace wharf

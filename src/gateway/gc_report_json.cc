#include "gateway/gc_report_json.h"

namespace wharf {

nlohmann::json GcReportJson(const GcReport& r) {
  return {{"manifests", r.manifests},
          {"blob_links", r.links},
          {"blobs", r.blobs},
          {"blob_bytes", r.blob_bytes},
          {"chunks_released", r.chunks_released},
          {"chunks_deleted", r.chunks_deleted},
          {"bytes_deleted", r.bytes_deleted},
          {"chunks_pending", r.chunks_pending},
          {"bytes_pending", r.bytes_pending},
          {"uploads_expired", r.uploads_expired},
          {"uploads_stale", r.uploads_stale},
          {"stale_chunks", r.stale_chunks}};
}

}  // namespace wharf

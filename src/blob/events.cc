#include "blob/events.h"

namespace wharf {

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kBlobCommitted:
      return "blob_committed";
    case EventKind::kBlobMounted:
      return "blob_mounted";
    case EventKind::kBlobDeleted:
      return "blob_deleted";
    case EventKind::kManifestCommitted:
      return "manifest_committed";
    case EventKind::kTagCommitted:
      return "tag_committed";
    case EventKind::kManifestDeleted:
      return "manifest_deleted";
    case EventKind::kTagDeleted:
      return "tag_deleted";
  }
  return "unknown";
}

}  // namespace wharf

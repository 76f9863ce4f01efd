#include "blob/read_through.h"

namespace wharf {

awaitable<Result<std::unique_ptr<BlobReader>>> NoReadThrough::OpenBlob(std::string repo,
                                                                       Digest digest) {
  co_return Err(NotFound("blob " + digest.ToString() + " not in " + repo));
}

awaitable<Result<ManifestRecord>> NoReadThrough::GetManifest(std::string repo, Reference ref) {
  co_return Err(NotFound("manifest " + ref.ToString() + " not in " + repo));
}

}  // namespace wharf

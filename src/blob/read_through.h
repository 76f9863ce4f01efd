// ReadThroughSource: where the blob service looks for a blob or manifest the local store
// lacks: a site's upstream (upstream/site_cache.h), a pull-through cache's upstreams
// (upstream/proxy.h), or nothing (NoReadThrough).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "blob/blob_reader.h"
#include "common/asio.h"
#include "common/digest.h"
#include "common/status.h"
#include "meta/meta_store.h"
#include "registry/names.h"

namespace wharf {

class ReadThroughSource {
 public:
  virtual ~ReadThroughSource() = default;
  // The blob `digest` of `repo`. kNotFound when the source lacks it too; kUnavailable when the
  // source cannot answer now.
  virtual awaitable<Result<std::unique_ptr<BlobReader>>> OpenBlob(std::string repo,
                                                                  Digest digest) = 0;
  // The manifest `ref` (tag or digest) of `repo`; its digest names content. kNotFound,
  // kUnavailable as OpenBlob.
  virtual awaitable<Result<ManifestRecord>> GetManifest(std::string repo, Reference ref) = 0;
  // True: the tags of `repo` are the source's to resolve (a site cache, or a pull-through
  // cache of the repository's upstream, where tags move): the blob service asks GetManifest
  // for every tag of `repo`, before looking at its own store.
  virtual bool ResolvesTags(const std::string& repo) const {
    (void)repo;
    return false;
  }
};

// Where pushes are written through before they are acknowledged (a site's upstream). The blob
// service calls it after a blob or manifest was committed locally, and a push succeeds only when
// it returns Ok; its error (kUnavailable, naming the upstream) is the push's.
class WriteThrough {
 public:
  virtual ~WriteThrough() = default;
  // Blob `digest`, now stored and linked in `repo` here (committed or mounted).
  virtual awaitable<Status> BlobStored(std::string repo, Digest digest) = 0;
  // Manifest `manifest`, now stored in `repo` here, under `tag` when given.
  virtual awaitable<Status> ManifestStored(std::string repo, std::optional<std::string> tag,
                                           ManifestRecord manifest) = 0;
  // Manifest `ref` (a digest, or a tag) of `repo` was deleted here (committed); an error is
  // the deletion's answer (it stays done here). By default nothing is done.
  virtual awaitable<Status> ManifestDeleted(std::string repo, Reference ref) {
    (void)repo, (void)ref;
    co_return Status::Ok();
  }
};

// A registry without an upstream: every lookup is kNotFound.
class NoReadThrough final : public ReadThroughSource {
 public:
  awaitable<Result<std::unique_ptr<BlobReader>>> OpenBlob(std::string repo, Digest digest) override;
  awaitable<Result<ManifestRecord>> GetManifest(std::string repo, Reference ref) override;
};

}  // namespace wharf

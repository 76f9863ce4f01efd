// Registry events: what subscribers (replication, webhooks, site write-through) hear after a
// manifest, tag or blob was committed or deleted. In process, synchronous, on the service's
// executor, and only after the metadata store committed the change.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"

namespace wharf {

enum class EventKind {
  kBlobCommitted,      // an upload (or monolithic put) committed a blob into repo
  kBlobMounted,        // an existing blob was linked into repo (cross-repository mount)
  kBlobDeleted,        // the blob's link in repo was removed
  kManifestCommitted,  // a manifest was stored in repo (reference: its digest)
  kTagCommitted,       // a tag of repo points at a manifest (reference: the tag)
  kManifestDeleted,    // a manifest and its tags were removed from repo
  kTagDeleted,         // a tag was removed (digest: empty; the store does not say which)
};

std::string_view EventKindName(EventKind kind);

struct Event {
  EventKind kind = EventKind::kBlobCommitted;
  std::string repo;
  std::string reference;  // the tag, or the digest as text
  Digest digest;
  std::string media_type;  // manifests only
  uint64_t size = 0;       // bytes of the blob or manifest, when known
};

// Called in order of subscription. A subscriber must not block (hand slow work elsewhere) and
// must not throw.
using EventSubscriber = std::function<void(const Event&)>;

// The subscriber list. Used on one executor; not thread-safe.
class EventBus {
 public:
  void Subscribe(EventSubscriber subscriber) { subscribers_.push_back(std::move(subscriber)); }
  void Publish(const Event& event) const {
    for (const auto& s : subscribers_) s(event);
  }

 private:
  std::vector<EventSubscriber> subscribers_;
};

}  // namespace wharf

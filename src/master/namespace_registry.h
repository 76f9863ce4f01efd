// NamespaceRegistry: which metadata store the cluster serves ("one namespace per cluster").
//
// Every gateway claims the identity of its metadata store (MetaStore::StoreId) with the masters;
// the first claim a master sees sets it, for good, and a gateway on another store is refused: two
// gateways with separate SQLite files on one cluster would each delete the chunks the other's
// ledger knows (the inventory sweep deletes chunks its ledger does not know). Persisted next to
// members.json, in its own file:
//
//   <data_dir>/
//     namespace.json   {"format": 1, "store_id": "ms-0123abcd..."}
//
// written with WriteFileAtomic when the id is first set. Masters are peers: one that has no id
// yet asks its peers before taking a gateway's (master_server.cc), so a pair agrees.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/status.h"

namespace wharf {

// Whether `id` is a plausible store id: 1 to 128 of [A-Za-z0-9._-]. Outside input (a request
// body, a file) is checked with it.
bool ValidStoreId(std::string_view id);

// Parses namespace.json's text: the store id. kInvalidArgument naming what is wrong.
Result<std::string> ParseNamespaceFile(std::string_view text);

// Thread-safe (one mutex). Claim may write the file: call it off the event loop.
class NamespaceRegistry {
 public:
  // `data_dir` "" keeps nothing on disk.
  explicit NamespaceRegistry(std::string data_dir);

  // Reads namespace.json; a missing file leaves the id unset. kCorruption for an unreadable
  // file, kIOError for a disk error. Call once at start.
  Status Load();

  // The store id the cluster serves, if any gateway (or peer) set it.
  std::optional<std::string> store_id() const;

  // Sets the id if unset (persisted first: if the write fails nothing is set, kIOError), or
  // checks it. Returns true when this call set it. kConflict (the message names both ids) when
  // another id is set; kInvalidArgument for an implausible id.
  Result<bool> Claim(const std::string& id);

 private:
  const std::string data_dir_;
  const Logger log_;
  mutable std::mutex mutex_;
  std::optional<std::string> store_id_;  // guarded by mutex_
};

}  // namespace wharf

// Continuous anti-entropy (anti_entropy.h) and the roster a member keeps of its group
// (member_roster.h).
//
// Each round, for every peer of the group that serves reads (active or readonly): fetch its
// range digests, compare them with this member's, list the peer's chunks in the ranges that
// differ, and pull those this member lacks, verified by their checksum on commit, at most
// repair_rate bytes per second. Left alone:
//   - chunks younger than repair_grace on the peer: a gateway may still be writing them here;
//   - chunks this member was asked to delete (Tombstones): GC is deleting them from the peer
//     too, and keeps them in its ledger until every member confirmed (garbage_collector.h), so
//     a peer's stale copy goes away without repair fighting it;
//   - chunks present here with another checksum: the scrubber decides which copy is corrupt.
// wharf_chunkserver_chunks_missing counts what the last comparison found lacking, minus what
// was pulled since; heartbeats carry it to the masters (under_replicated per group).
#include <fmt/format.h>

#include <ctime>
#include <map>

#include "chunkserver/chunk_client.h"
#include "chunkserver/chunkserver.h"
#include "common/async.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "http/status_http.h"

namespace wharf {
namespace {

constexpr char kRosterFile[] = "roster.json";
// Chunks listed for pulling in one round at most (the rest wait for the next round; they are
// still counted as missing).
constexpr size_t kMaxPullsPerRound = 100000;

struct Wanted {
  std::string peer_addr;
  uint64_t size = 0;
  uint64_t checksum = 0;
};

}  // namespace

Status Chunkserver::LoadRoster() {
  auto roster = std::make_unique<MemberRoster>(options_.group, options_.id, addr_);
  const std::string path = options_.dirs.front() + "/" + kRosterFile;
  auto text = ReadFile(path);
  if (text) {
    bool ignored = false;
    Status st = roster->ParseFile(*text, &ignored);
    if (!st.ok()) return Corruption(fmt::format("{}: {}", path, st.message()));
    if (ignored) log_->warn("roster of another group ignored path={}", path);
  } else if (text.error().code() != Code::kNotFound) {
    return text.error();
  }
  log_->info("roster loaded members={}", roster->entries().size());
  std::lock_guard lock(roster_mu_);
  roster_ = std::move(roster);
  return Status::Ok();
}

std::vector<RosterEntry> Chunkserver::RosterEntries() {
  std::lock_guard lock(roster_mu_);
  return roster_ ? roster_->entries() : std::vector<RosterEntry>{};
}

awaitable<void> Chunkserver::LearnRoster(std::string reply_body) {
  auto reply = HeartbeatReply::Parse(reply_body);
  if (!reply) {
    log_->debug("heartbeat reply without a usable roster err={}", reply.error());
    co_return;
  }
  std::string file;
  {
    std::lock_guard lock(roster_mu_);
    if (!roster_ || !roster_->Merge(*reply)) co_return;
    file = roster_->ToFile();
  }
  const std::string path = options_.dirs.front() + "/" + kRosterFile;
  auto write = [path, file] { return WriteFileAtomic(path, file); };
  Status st = co_await Offload(write);
  if (st.ok()) {
    log_->info("roster updated members={}", RosterEntries().size());
  } else {
    log_->warn("persisting roster failed path={} err={} (will retry)", path, st);
  }
}

Result<RangeDigests> Chunkserver::ComputeDigests() { return store_->Digests(); }

awaitable<void> Chunkserver::HandleDigests(Exchange& ex) {
  auto compute = [this] { return ComputeDigests(); };
  auto digests = co_await Offload(compute);
  if (!digests) {
    co_await RespondError(ex, digests.error());
    co_return;
  }
  (void)co_await ex.Respond(http::status::ok, digests->ToJson().dump());
}

awaitable<void> Chunkserver::RepairLoop() {
  HttpClient client(ex_, PeerClientOptions());
  while (!stopped_) {
    co_await SleepFor(options_.repair_interval);
    if (stopped_ || syncing_) continue;
    co_await RepairRound(client);
  }
}

awaitable<void> Chunkserver::RepairRound(HttpClient& client) {
  const Labels labels = {{"member", options_.id}};
  static auto& pulled = Metrics().Counter("wharf_chunkserver_repair_pulled_total",
                                          "Chunks anti-entropy copied from a peer.");
  static auto& pull_failed = Metrics().Counter("wharf_chunkserver_repair_pull_failures_total",
                                               "Chunks anti-entropy could not copy.");
  auto& missing_gauge =
      Metrics().Gauge("wharf_chunkserver_chunks_missing",
                      "Chunks its peers hold that this member lacks (last anti-entropy round, "
                      "minus those pulled since); 0 in steady state.",
                      labels);
  auto map = co_await FetchMap(client);
  if (!map) co_return;
  const GroupInfo* group = map->FindGroup(options_.group);
  if (group == nullptr) co_return;
  auto compute = [this] { return ComputeDigests(); };
  auto mine = co_await Offload(compute);
  if (!mine) co_return;
  ChunkClient chunks(client);
  const int64_t young_after =
      static_cast<int64_t>(std::time(nullptr)) -
      std::chrono::duration_cast<std::chrono::seconds>(options_.repair_grace).count();
  const auto now = Tombstones::Clock::now();
  std::map<std::string, Wanted> wanted;
  uint64_t overflow = 0;
  bool compared = false;
  for (const MemberInfo& peer : group->members) {
    if (peer.id == options_.id) continue;
    if (peer.state != MemberState::kActive && peer.state != MemberState::kReadonly) continue;
    auto resp = co_await client.Request(peer.addr, http::verb::get, "/v1/digests");
    if (!resp || resp->status != 200) {
      log_->debug("anti-entropy: no digests from peer={} err={}", peer.id,
                  resp ? std::to_string(resp->status) : resp.error().ToString());
      continue;
    }
    auto theirs = RangeDigests::Parse(resp->body);
    if (!theirs) {
      log_->warn("anti-entropy: bad digests from peer={} err={}", peer.id, theirs.error());
      continue;
    }
    compared = true;
    for (size_t r = 0; r < kDigestRanges && !stopped_; ++r) {
      if (theirs->digests[r] == mine->digests[r] && theirs->counts[r] == mine->counts[r]) {
        continue;
      }
      const std::string prefix = RangePrefix(r);
      std::string after = prefix;  // every id of the range sorts after its prefix
      bool done = false;
      while (!done) {
        auto page = co_await chunks.List(peer.addr, after, 1000);
        if (!page) break;
        for (const InventoryEntry& c : page->chunks) {
          if (c.id.compare(0, 2, prefix) != 0) {
            done = true;
            break;
          }
          if (c.mtime_unix > young_after || wanted.count(c.id)) continue;
          if (store_->Stat(c.id)) continue;  // here (another checksum: the scrubber's job)
          if (tombstones_->Contains(c.id, now)) continue;
          if (wanted.size() >= kMaxPullsPerRound) {
            ++overflow;
            continue;
          }
          wanted.emplace(c.id, Wanted{peer.addr, c.size, c.checksum});
        }
        if (page->next.empty()) break;
        after = page->next;
      }
    }
  }
  if (!compared) co_return;  // nobody to compare with: keep the last count
  uint64_t missing = wanted.size() + overflow;
  missing_ = missing;
  missing_gauge.Set(static_cast<double>(missing));
  if (missing > 0) {
    log_->info("anti-entropy: chunks missing here missing={} group={}", missing, options_.group);
  }
  uint64_t copied = 0;
  for (const auto& [id, w] : wanted) {
    if (stopped_) break;
    if (store_->Stat(id) || tombstones_->Contains(id, Tombstones::Clock::now())) {
      --missing;  // arrived (a gateway's write) or deleted meanwhile
    } else {
      Status st = co_await FetchChunk(client, w.peer_addr, id, w.size, w.checksum);
      if (!st.ok()) {
        pull_failed.Inc();
        log_->warn("anti-entropy: pull failed chunk={} peer={} err={}", id, w.peer_addr, st);
        continue;
      }
      pulled.Inc();
      ++copied;
      --missing;
    }
    missing_ = missing;
    missing_gauge.Set(static_cast<double>(missing));
    if (options_.repair_rate > 0 && w.size > 0) {
      co_await SleepFor(std::chrono::milliseconds(w.size * 1000 / options_.repair_rate));
    }
  }
  if (copied > 0) {
    log_->info("anti-entropy: pulled chunks={} still_missing={} chunks_now={}", copied, missing,
               store_->Count());
  }
}

}  // namespace wharf

// The chunkserver's background work: heartbeats to every master, catch-up from a peer at
// start (FastDFS: a new or returning member syncs before it serves), and the scrubber that
// re-verifies checksums and repairs a corrupt chunk from a peer.
#include "chunkserver/chunk_client.h"
#include "chunkserver/chunkserver.h"
#include "common/async.h"
#include "common/checksum.h"
#include "common/metrics.h"
#include "master/heartbeat.h"
#include "master/master_client.h"

namespace wharf {
namespace {
constexpr size_t kFetchBufferBytes = 1u << 20;
}  // namespace

ClientOptions Chunkserver::PeerClientOptions() const {
  ClientOptions o;
  o.cluster_key = options_.cluster_key;
  return o;
}

std::string Chunkserver::ReportedState(const Result<SpaceInfo>& space) {
  if (syncing_) return "syncing";
  if (!store_->Health().ok()) return "readonly";
  if (!space || space->free <= space->reserve_bytes) return "readonly";
  return "active";
}

awaitable<void> Chunkserver::HeartbeatLoop() {
  HttpClient client(ex_, ClientOptions{std::chrono::seconds(2), std::chrono::seconds(5), 2,
                                       options_.cluster_key});
  static auto& failures = Metrics().Counter("wharf_chunkserver_heartbeat_failures_total",
                                            "Heartbeats a master did not accept.");
  std::map<std::string, bool> reachable;
  // A write probe every ~10 s, and every heartbeat while writes fail (to notice recovery):
  // a directory that cannot be written turns the member read-only even with no write load.
  const uint64_t probe_every = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::chrono::milliseconds(10'000) / options_.heartbeat));
  uint64_t beats = 0;
  while (!stopped_) {
    if (beats++ % probe_every == 0 || !store_->Health().ok()) {
      auto probe = [this] { return store_->ProbeWrite(); };
      (void)co_await Offload(probe);
    }
    auto get_space = [this] { return store_->Space(); };
    auto space = co_await Offload(get_space);
    HeartbeatReport r;
    r.group = options_.group;
    r.id = options_.id;
    r.addr = addr_;
    auto state = ParseMemberState(ReportedState(space));
    r.state = state ? *state : MemberState::kReadonly;
    if (space) {
      r.capacity = space->capacity;
      r.free = space->free;
      r.reserve = space->reserve_bytes;
    }
    r.chunks = store_->Count();
    r.busy = busy_.load();
    r.interval_ms = static_cast<uint64_t>(options_.heartbeat.count());
    r.missing = missing_.load();
    r.roster = RosterEntries();
    std::string body = r.ToJson().dump();
    HeaderList headers = {{"Content-Type", "application/json"}};
    for (const auto& master : options_.masters) {
      auto resp = co_await client.Request(master, http::verb::post, "/v1/heartbeat", body, headers);
      bool ok = resp && resp->status == 200;
      if (!ok) {
        failures.Inc();
        if (reachable[master] || !reachable.count(master)) {
          log_->warn("heartbeat failed master={} err={}", master,
                     resp ? resp->body : resp.error().ToString());
        }
      } else if (!reachable[master]) {
        log_->info("heartbeat accepted master={}", master);
      }
      if (ok) co_await LearnRoster(std::move(resp->body));
      reachable[master] = ok;
    }
    // Sleeps a heartbeat interval, or less when the state changes (catch-up ended): the
    // master learns at once that this member serves.
    heartbeat_wake_->expires_after(options_.heartbeat);
    boost::system::error_code ec;
    co_await heartbeat_wake_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

awaitable<Result<ClusterMap>> Chunkserver::FetchMap(HttpClient& client) {
  MasterClient masters(client, options_.masters);
  auto map = co_await masters.FetchMap();
  if (!map) co_return Err(map.error());
  std::lock_guard lock(map_mu_);
  last_map_ = *map;
  co_return std::move(*map);
}

std::vector<MemberInfo> Chunkserver::ActivePeers(const ClusterMap& map) const {
  std::vector<MemberInfo> out;
  if (const GroupInfo* g = map.FindGroup(options_.group)) {
    for (const auto& m : g->members) {
      if (m.id != options_.id && m.state == MemberState::kActive) out.push_back(m);
    }
  }
  return out;
}

awaitable<void> Chunkserver::CatchUp() {
  HttpClient client(ex_, PeerClientOptions());
  // Grace before deciding that no peer can teach us anything: a few heartbeats, so that a
  // peer that is merely slow to report is not mistaken for an absent one.
  const auto grace =
      std::max<std::chrono::milliseconds>(options_.heartbeat * 3, std::chrono::milliseconds(1500));
  const auto started = std::chrono::steady_clock::now();
  while (!stopped_ && syncing_) {
    auto map = co_await FetchMap(client);
    if (map) {
      auto peers = ActivePeers(*map);
      for (const auto& peer : peers) {
        auto synced = co_await SyncFrom(client, peer);
        if (synced) {
          log_->info("catch-up done peer={} fetched={} chunks={}", peer.id, *synced,
                     store_->Count());
          syncing_ = false;
          break;
        }
        log_->warn("catch-up from peer failed peer={} err={}", peer.id, synced.error());
      }
      if (!syncing_) break;
      if (peers.empty() && NothingToLearn(*map)) {
        log_->info("every peer of group={} is known and empty: nothing to catch up, serving",
                   options_.group);
        syncing_ = false;
        break;
      }
      if (peers.empty() && std::chrono::steady_clock::now() - started > grace) {
        log_->info("no active peer in group={}: nothing to catch up from, serving", options_.group);
        syncing_ = false;
        break;
      }
    } else if (std::chrono::steady_clock::now() - started > grace * 2) {
      log_->warn("no master reachable for catch-up err={}; serving what is stored", map.error());
      syncing_ = false;
      break;
    }
    // Polls the map often: peers register within moments of each other.
    co_await SleepFor(std::min<std::chrono::milliseconds>(options_.heartbeat / 2,
                                                          std::chrono::milliseconds(200)));
  }
  if (heartbeat_wake_) heartbeat_wake_->cancel();  // report the new state now
}

bool Chunkserver::NothingToLearn(const ClusterMap& map) const {
  const GroupInfo* g = map.FindGroup(options_.group);
  if (!g) return false;
  size_t peers = 0;
  for (const auto& m : g->members) {
    if (m.id == options_.id) continue;
    // An offline peer may hold chunks it has not reported; one with chunks may hold some we
    // lack (it becomes active after its own catch-up, and then we copy from it).
    if (m.state == MemberState::kOffline || m.chunks > 0) return false;
    ++peers;
  }
  return peers > 0;
}

awaitable<Result<uint64_t>> Chunkserver::SyncFrom(HttpClient& client, const MemberInfo& peer) {
  static auto& synced = Metrics().Counter("wharf_chunkserver_sync_chunks_total",
                                          "Chunks pulled from a peer during catch-up.");
  ChunkClient chunks(client);
  uint64_t fetched = 0;
  std::string after;
  for (;;) {
    auto page = co_await chunks.List(peer.addr, after, 1000);
    if (!page) co_return Err(page.error());
    for (const InventoryEntry& c : page->chunks) {
      if (auto have = store_->Stat(c.id); have && have->checksum == c.checksum) continue;
      // Deleted here (maybe before a restart): GC is deleting the peer's copy too.
      if (tombstones_->Contains(c.id, Tombstones::Clock::now())) continue;
      Status st = co_await FetchChunk(client, peer.addr, c.id, c.size, c.checksum);
      if (!st.ok()) co_return Err(st);
      ++fetched;
      synced.Inc();
    }
    if (page->next.empty()) break;
    after = page->next;
  }
  co_return fetched;
}

awaitable<Status> Chunkserver::FetchChunk(HttpClient& client, const std::string& peer_addr,
                                          const std::string& id, uint64_t size, uint64_t checksum) {
  ChunkClient chunks(client);
  auto call = co_await chunks.OpenGet(peer_addr, id);
  if (!call) co_return call.error();
  auto begin = [this, id, size, checksum] { return store_->BeginWrite(id, size, checksum); };
  auto begun = co_await Offload(begin);
  if (!begun) co_return begun.error();
  std::shared_ptr<ChunkWriter> writer = std::move(*begun);
  std::vector<char> buf(kFetchBufferBytes);
  Status st;
  for (;;) {
    auto n = co_await (*call)->ReadSome(buf.data(), buf.size());
    if (!n) {
      st = n.error();
      break;
    }
    if (*n == 0) break;
    auto append = [writer, p = buf.data(), k = *n] { return writer->Append(p, k); };
    st = co_await Offload(append);
    if (!st.ok()) break;
  }
  // Commit verifies the checksum announced by the peer's inventory: a corrupt copy is refused.
  auto commit = [writer] { return writer->Commit(); };
  if (st.ok()) st = co_await Offload(commit);
  co_return st;
}

awaitable<void> Chunkserver::Repair(HttpClient& client, ChunkInfo info) {
  static auto& repairs = Metrics().Counter("wharf_chunkserver_repairs_total",
                                           "Corrupt chunks re-fetched from a peer.");
  static auto& failed = Metrics().Counter("wharf_chunkserver_repair_failures_total",
                                          "Corrupt chunks no peer could supply yet.");
  auto map = co_await FetchMap(client);
  if (map) {
    for (const auto& peer : ActivePeers(*map)) {
      Status st = co_await FetchChunk(client, peer.addr, info.id, info.size, info.checksum);
      if (st.ok()) {
        repairs.Inc();
        log_->warn("chunk repaired chunk={} peer={}", info.id, peer.id);
        co_return;
      }
      log_->warn("repair from peer failed chunk={} peer={} err={}", info.id, peer.id, st);
    }
  }
  failed.Inc();
  log_->error("chunk could not be repaired chunk={}; it stays quarantined", info.id);
}

awaitable<void> Chunkserver::ScrubLoop() {
  static auto& scrubbed = Metrics().Counter("wharf_chunkserver_scrub_chunks_total",
                                            "Chunks re-verified by the scrubber.");
  static auto& corrupt = Metrics().Counter("wharf_chunkserver_scrub_corrupt_total",
                                           "Chunks the scrubber found corrupt.");
  HttpClient client(ex_, PeerClientOptions());
  while (!stopped_) {
    co_await SleepFor(options_.scrub_interval);
    if (syncing_) continue;
    std::string after;
    while (!stopped_) {
      auto page = store_->List(after, 256);
      if (!page || page->empty()) break;
      for (const auto& c : *page) {
        after = c.id;
        auto verify = [this, id = c.id] { return store_->Verify(id); };
        auto verified = co_await Offload(verify);
        scrubbed.Inc();
        if (!verified && verified.error().code() == Code::kCorruption) {
          corrupt.Inc();
          log_->error("scrub found corrupt chunk={} err={}", c.id, verified.error());
          auto quarantine = [this, id = c.id] { return store_->Quarantine(id); };
          Status q = co_await Offload(quarantine);
          if (!q.ok()) log_->error("quarantine failed chunk={} err={}", c.id, q);
          co_await Repair(client, c);
        }
        // Bounded rate: a chunk of n bytes costs n / rate seconds.
        if (options_.scrub_rate > 0 && c.size > 0) {
          co_await SleepFor(std::chrono::milliseconds(c.size * 1000 / options_.scrub_rate));
        }
      }
    }
  }
}

}  // namespace wharf

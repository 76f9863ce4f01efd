#include "cli/daemon_flags.h"

#include "cli/flag_checks.h"
#include "common/units.h"
#include "http/server.h"

namespace wharf::cli {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

constexpr const char* kDaemonKeyHelp =
    "file of the cluster's shared secret (mode 0600, >= 32 bytes): internal requests are "
    "signed and verified with it (default: none, the cluster is open)";

// --sync of a chunkserver and of `wharf up`; `what` names the write it governs.
void AddSyncFlag(CLI::App& app, std::string* sync, const std::string& what) {
  app.add_option("--sync", *sync,
                 "how " + what +
                     " is made durable before it is acknowledged. group: for a chunk of 1MiB or "
                     "more, one syncfs of the data directory's file system before the rename "
                     "and one after, each shared by every write committing at that moment "
                     "(group commit; it also flushes other files of that file system, so give "
                     "chunk data a file system of its own), smaller chunks as file; file: "
                     "fdatasync of each chunk file and fsync of its directory")
      ->capture_default_str()
      ->check(OneOf({"group", "file"}));
}

// --direct-io of a chunkserver and of `wharf up`.
void AddDirectIoFlag(CLI::App& app, std::string* direct_io) {
  app.add_option("--direct-io", *direct_io,
                 "on: chunks of 1MiB or more are written with O_DIRECT, from a reused staging "
                 "buffer straight to the disk (no page-cache copy; reads of a chunk just "
                 "written then come from the disk); off: through the page cache (for a file "
                 "system where O_DIRECT is slow; one without it, such as tmpfs, falls back by "
                 "itself)")
      ->capture_default_str()
      ->check(OneOf({"on", "off"}));
}

Status ParseOnOff(const std::string& flag, const std::string& v, bool* out) {
  if (v != "on" && v != "off") return InvalidArgument(flag + ": want on or off: " + v);
  *out = v == "on";
  return Status::Ok();
}

// --sync of a chunkserver and of `wharf up`.
Status ParseSyncFlag(const std::string& v, LocalChunkStore::Options::Sync* out) {
  if (v == "group") {
    *out = LocalChunkStore::Options::Sync::kGroup;
  } else if (v == "file") {
    *out = LocalChunkStore::Options::Sync::kPerFile;
  } else {
    return InvalidArgument("--sync: want group or file: " + v);
  }
  return Status::Ok();
}

}  // namespace

void AddMasterFlags(CLI::App& app, MasterFlags* f) {
  AddCommonFlags(app, &f->common);
  AddClusterKeyFlag(app, &f->cluster_key, kDaemonKeyHelp);
  app.add_option("--listen", f->o.listen, "HOST:PORT to serve on")
      ->capture_default_str()
      ->check(HostPort());
  app.add_option("--advertise", f->o.advertise,
                 "HOST:PORT this master is reached by, when not the address connections arrive "
                 "on (a DNS name, a NAT'd address; repeatable)");
  app.add_option("--data", f->o.data_dir, "directory for the persisted member list (required)");
  app.add_option("--peer", f->peers, "another master (repeatable, or comma-separated)");
  app.add_option("--chunk-size", f->chunk_size, "chunk size gateways write")
      ->capture_default_str()
      ->check(SizeIn(kMinChunkBytes, kMaxChunkBytes));
  app.add_option("--policy", f->policy, "placement policy answered to /v1/placement")
      ->capture_default_str()
      ->check(OneOf({"most_free", "round_robin", "named"}));
  app.add_option("--group", f->o.named_group, "the group for --policy named");
  app.add_option("--offline-after", f->o.offline_after_intervals,
                 "heartbeat intervals of silence before a member is offline")
      ->capture_default_str()
      ->check(NumberAbove(1.5));
}

Status FinishMasterFlags(MasterFlags* f) {
  MasterOptions& o = f->o;
  auto cs = ParseBytes(f->chunk_size);
  if (!cs) return InvalidArgument("--chunk-size: " + cs.error().message());
  if (Status st = CheckChunkSize(*cs); !st.ok()) {
    return InvalidArgument("--chunk-size: " + st.message());
  }
  o.chunk_size = *cs;
  auto pol = ParsePlacementPolicy(f->policy);
  if (!pol) return InvalidArgument("--policy: " + pol.error().message());
  o.policy = *pol;
  if (o.policy == PlacementPolicy::kNamed && o.named_group.empty()) {
    return InvalidArgument("--policy named needs --group");
  }
  if (!(o.offline_after_intervals > 1.5)) {
    return InvalidArgument("--offline-after must be more than 1.5 intervals");
  }
  if (o.data_dir.empty()) return InvalidArgument("--data is required");
  o.peers = SplitCommas(f->peers);
  return Status::Ok();
}

void AddChunkserverFlags(CLI::App& app, ChunkserverFlags* f) {
  ChunkserverOptions& o = f->o;
  AddCommonFlags(app, &f->common);
  AddClusterKeyFlag(app, &f->cluster_key, kDaemonKeyHelp);
  app.add_option("--group", o.group, "the group this member belongs to (required)");
  app.add_option("--id", o.id, "member id (default: generated once, kept in the first --dir)");
  app.add_option("--listen", o.listen, "HOST:PORT to serve on")
      ->capture_default_str()
      ->check(HostPort());
  app.add_option("--advertise", o.advertise,
                 "HOST:PORT reported to masters, and a name signed requests may address "
                 "(default: listen)")
      ->check(HostPort());
  app.add_option("--dir", o.dirs, "data directory (repeatable; at least one)");
  app.add_option("--master", f->masters, "master HOST:PORT (repeatable, or comma-separated)");
  app.add_option("--reserve", f->reserve, "free space kept: a percentage of capacity or a size")
      ->capture_default_str()
      ->check(ReserveValue());
  app.add_option("--heartbeat", f->heartbeat, "time between heartbeats (plain number: seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(10), hours(1)));
  app.add_option("--scrub-interval", f->scrub_interval,
                 "time between scrub passes (plain number: seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(10), hours(366 * 24)));
  app.add_option("--scrub-rate", f->scrub_rate, "bytes per second the scrubber reads (0: no limit)")
      ->capture_default_str()
      ->check(SizeIn(0, 1ull << 40));
  AddSyncFlag(app, &f->sync, "a chunk write");
  AddDirectIoFlag(app, &f->direct_io);
  app.add_option("--max-chunk", f->max_chunk, "largest chunk accepted")
      ->capture_default_str()
      ->check(SizeIn(1, 1ull << 40));
  app.add_option("--repair-interval", f->repair_interval,
                 "time between anti-entropy rounds: compare with every peer, pull what is "
                 "missing (plain number: seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(100), hours(24)));
  app.add_option("--repair-grace", f->repair_grace,
                 "how long a peer's chunk must have existed before it is pulled (plain number: "
                 "seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(0), hours(24 * 7)));
  app.add_option("--repair-rate", f->repair_rate, "bytes per second anti-entropy pulls")
      ->capture_default_str()
      ->check(SizeIn(1, 1ull << 40));
  app.add_option("--tombstone-ttl", f->tombstone_ttl,
                 "how long a deleted chunk is remembered (on disk, across restarts) so that "
                 "repair does not pull it back from a peer; at least 10 x --repair-interval "
                 "(plain number: seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(1000), hours(24 * 366)));
}

Status FinishChunkserverFlags(ChunkserverFlags* f) {
  ChunkserverOptions& o = f->o;
  auto r = ParseReserve(f->reserve);
  if (!r) return InvalidArgument("--reserve: " + r.error().message());
  o.reserve = *r;
  WHARF_RETURN_IF_ERROR(ParseSyncFlag(f->sync, &o.sync));
  WHARF_RETURN_IF_ERROR(ParseOnOff("--direct-io", f->direct_io, &o.direct_io));
  auto hb = ParseDuration(f->heartbeat);
  if (!hb || hb->count() < 10) {
    return InvalidArgument("--heartbeat: not a duration >= 10ms: " + f->heartbeat);
  }
  o.heartbeat = *hb;
  auto si = ParseDuration(f->scrub_interval);
  if (!si || si->count() < 10) {
    return InvalidArgument("--scrub-interval: bad duration " + f->scrub_interval);
  }
  o.scrub_interval = *si;
  auto sr = ParseBytes(f->scrub_rate);
  if (!sr) return InvalidArgument("--scrub-rate: " + sr.error().message());
  o.scrub_rate = *sr;
  auto mc = ParseBytes(f->max_chunk);
  if (!mc) return InvalidArgument("--max-chunk: " + mc.error().message());
  if (*mc == 0) return InvalidArgument("--max-chunk: must be more than 0");
  o.max_chunk_bytes = *mc;
  auto ri = ParseDuration(f->repair_interval);
  if (!ri || ri->count() < 100) {
    return InvalidArgument("--repair-interval: not a duration >= 100ms: " + f->repair_interval);
  }
  o.repair_interval = *ri;
  auto rg = ParseDuration(f->repair_grace);
  if (!rg) return InvalidArgument("--repair-grace: bad duration " + f->repair_grace);
  o.repair_grace = *rg;
  auto tt = ParseDuration(f->tombstone_ttl);
  if (!tt || *tt < 10 * o.repair_interval) {
    return InvalidArgument(
        "--tombstone-ttl: want a duration of at least 10 x --repair-interval, "
        "got '" +
        f->tombstone_ttl + "'");
  }
  o.tombstone_ttl = std::chrono::duration_cast<std::chrono::seconds>(*tt);
  auto rr = ParseBytes(f->repair_rate);
  if (!rr || *rr == 0)
    return InvalidArgument("--repair-rate: not a size above 0: " + f->repair_rate);
  o.repair_rate = *rr;
  o.masters = SplitCommas(f->masters);
  // What Chunkserver::Start refuses too, so that --check-config sees it.
  if (o.group.empty()) return InvalidArgument("--group is required");
  if (o.dirs.empty()) return InvalidArgument("at least one --dir is required");
  if (o.masters.empty()) return InvalidArgument("at least one --master is required");
  for (const auto& m : o.masters) {
    if (auto hp = SplitHostPort(m); !hp)
      return InvalidArgument("--master: " + hp.error().message());
  }
  return Status::Ok();
}

void AddGatewayCommandFlags(CLI::App& app, GatewayCommandFlags* f) {
  AddCommonFlags(app, &f->common);
  AddClusterKeyFlag(app, &f->cluster_key, kDaemonKeyHelp);
  AddGatewayFlags(app, GatewayFlagsFor::kGateway, &f->gateway, &f->o);
}

void AddUpFlags(CLI::App& app, UpFlags* f) {
  LocalClusterOptions& o = f->o;
  AddCommonFlags(app, &f->common);
  app.add_option("--data", o.data_dir, "data directory of every daemon")->capture_default_str();
  app.add_option("--cluster-host", o.host, "address the master and the chunkservers bind")
      ->capture_default_str();
  app.add_option("--cluster-port", o.base_port,
                 "master port; chunkservers use the next four (0 = any free ports)")
      ->capture_default_str()
      ->check(IntIn(0, 65535 - 4));
  app.add_option("--reserve", f->reserve, "free space each chunkserver keeps")
      ->capture_default_str()
      ->check(ReserveValue());
  app.add_option("--repair-interval", f->repair_interval,
                 "time between the chunkservers' anti-entropy rounds (plain number: seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(100), hours(24)));
  AddSyncFlag(app, &f->sync, "a chunkserver's chunk write");
  AddDirectIoFlag(app, &f->direct_io);
  app.add_option("--local-reads", f->local_reads,
                 "on: the gateway reads chunks of the chunkservers in this process from their "
                 "stores directly (verified, then sendfile), not over loopback HTTP; off: over "
                 "HTTP, as a gateway of its own does")
      ->capture_default_str()
      ->check(OneOf({"on", "off"}));
  AddClusterKeyFlag(app, &o.cluster_key_file,
                    "the cluster's key file (default: DATA/cluster.key, created mode 0600 when "
                    "absent)");
  AddGatewayFlags(app, GatewayFlagsFor::kUp, &f->gateway, &o.gateway);
}

Status FinishUpFlags(UpFlags* f) {
  // The one gateway of `wharf up` is its SQLite store's only writer: tags may be cached.
  if (f->gateway.lookup_cache_tags.empty()) f->gateway.lookup_cache_tags = "on";
  WHARF_RETURN_IF_ERROR(FinishGatewayFlags(f->gateway, &f->o.gateway));
  f->o.chunk_size = f->o.gateway.chunk_size;
  auto res = ParseReserve(f->reserve);
  if (!res) return InvalidArgument("--reserve: " + res.error().message());
  f->o.reserve = *res;
  WHARF_RETURN_IF_ERROR(ParseSyncFlag(f->sync, &f->o.sync));
  auto ri = ParseDuration(f->repair_interval);
  if (!ri || ri->count() < 100) {
    return InvalidArgument("--repair-interval: not a duration >= 100ms: " + f->repair_interval);
  }
  f->o.repair_interval = *ri;
  WHARF_RETURN_IF_ERROR(ParseOnOff("--local-reads", f->local_reads, &f->o.local_reads));
  WHARF_RETURN_IF_ERROR(ParseOnOff("--direct-io", f->direct_io, &f->o.direct_io));
  return Status::Ok();
}

}  // namespace wharf::cli

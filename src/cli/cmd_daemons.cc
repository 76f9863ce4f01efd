// `wharf master`, `wharf chunkserver` and `wharf gateway`.
#include <iostream>

#include "chunkserver/chunkserver.h"
#include "cli/commands.h"
#include "cli/gateway_flags.h"
#include "cli/gc_flags.h"
#include "cli/run_loop.h"
#include "common/config.h"
#include "common/log.h"
#include "common/units.h"
#include "gateway/gateway.h"
#include "http/access_log.h"
#include "http/cluster_auth.h"
#include "master/master_server.h"

namespace wharf::cli {
namespace {

void AddCommon(CLI::App& app, std::string* config, std::string* log_level) {
  app.add_option("--config", *config, "YAML file of flag values (flags win)");
  app.add_option("--log-level", *log_level, "trace|debug|info|warn|error")->capture_default_str();
}

void AddClusterKey(CLI::App& app, std::string* path) {
  app.add_option("--cluster-key", *path,
                 "file of the cluster's shared secret (mode 0600, >= 32 bytes): internal "
                 "requests are signed and verified with it");
}

// Loads --cluster-key into *key (empty path: none). Returns an exit code when the key file is
// refused.
std::optional<int> UseClusterKey(const std::string& role, const std::string& path,
                                 std::shared_ptr<const ClusterKey>* key) {
  if (path.empty()) return std::nullopt;
  auto loaded = ClusterKey::Load(path);
  if (!loaded) return ConfigError(role, loaded.error().message());
  *key = std::move(*loaded);
  return std::nullopt;
}

void AddTlsFlags(CLI::App& app, std::string* cert, std::string* key, std::string* client_ca) {
  app.add_option("--tls-cert", *cert,
                 "PEM certificate (a chain allowed) to serve HTTPS with; reloaded on SIGHUP");
  app.add_option("--tls-key", *key, "PEM private key of --tls-cert (unencrypted)");
  app.add_option("--tls-client-ca", *client_ca,
                 "PEM CA certificates: ask clients for a certificate and accept only those "
                 "they signed");
}

// Once the daemon runs: one warning line when it runs without a key.
void WarnIfOpen(const std::string& role, const std::shared_ptr<const ClusterKey>& key) {
  if (key) return;
  GetLogger(role)->warn(
      "no --cluster-key: internal requests are not authenticated, anyone who can reach the "
      "cluster's ports can register members, read and delete chunks");
}

}  // namespace

int RunMaster(Args args) {
  const std::string role = "master";
  CLI::App app{"wharf master: the topology tracker", "wharf master"};
  std::string config, log_level = "info", chunk_size = "16MiB", policy = "most_free";
  std::vector<std::string> peers;
  std::string cluster_key;
  MasterOptions o;
  AddCommon(app, &config, &log_level);
  AddClusterKey(app, &cluster_key);
  app.add_option("--listen", o.listen, "HOST:PORT to serve on")->capture_default_str();
  app.add_option("--data", o.data_dir, "directory for the persisted member list");
  app.add_option("--peer", peers, "another master (repeatable, or comma-separated)");
  app.add_option("--chunk-size", chunk_size, "chunk size gateways write")->capture_default_str();
  app.add_option("--policy", policy, "most_free|round_robin|named")->capture_default_str();
  app.add_option("--group", o.named_group, "the group for --policy named");
  app.add_option("--offline-after", o.offline_after_intervals,
                 "heartbeat intervals of silence before a member is offline")
      ->capture_default_str();
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (!SetLogLevel(log_level)) return ConfigError(role, "unknown --log-level " + log_level);
  auto cs = ParseBytes(chunk_size);
  if (!cs) return ConfigError(role, "--chunk-size: " + cs.error().message());
  if (Status st = CheckChunkSize(*cs); !st.ok()) {
    return ConfigError(role, "--chunk-size: " + st.message());
  }
  o.chunk_size = *cs;
  auto pol = ParsePlacementPolicy(policy);
  if (!pol) return ConfigError(role, "--policy: " + pol.error().message());
  o.policy = *pol;
  if (o.policy == PlacementPolicy::kNamed && o.named_group.empty()) {
    return ConfigError(role, "--policy named needs --group");
  }
  if (!(o.offline_after_intervals > 1.5)) {
    return ConfigError(role, "--offline-after must be more than 1.5 intervals");
  }
  o.peers = SplitCommas(peers);
  if (auto rc = UseClusterKey(role, cluster_key, &o.cluster_key)) return *rc;
  asio::io_context io;
  MasterServer master(io.get_executor(), o);
  if (Status st = master.Start(); !st.ok()) return ConfigError(role, st.ToString());
  WarnIfOpen(role, o.cluster_key);
  std::cout << "master listening on " << master.address() << std::endl;
  return RunUntilSignal(io, [&] { master.Stop(); });
}

int RunChunkserver(Args args) {
  const std::string role = "chunkserver";
  CLI::App app{"wharf chunkserver: a storage member of one group", "wharf chunkserver"};
  std::string config, log_level = "info", reserve = "10%", scrub_rate = "64MiB";
  std::string heartbeat = "2", scrub_interval = "3600", max_chunk = "1GiB";
  std::vector<std::string> masters;
  std::string cluster_key;
  ChunkserverOptions o;
  AddCommon(app, &config, &log_level);
  AddClusterKey(app, &cluster_key);
  app.add_option("--group", o.group, "the group this member belongs to");
  app.add_option("--id", o.id, "member id (default: generated once, kept in the first --dir)");
  app.add_option("--listen", o.listen, "HOST:PORT to serve on")->capture_default_str();
  app.add_option("--advertise", o.advertise, "HOST:PORT reported to masters (default: listen)");
  app.add_option("--dir", o.dirs, "data directory (repeatable)");
  app.add_option("--master", masters, "master HOST:PORT (repeatable, or comma-separated)");
  app.add_option("--reserve", reserve, "free space kept: 10% or a size")->capture_default_str();
  app.add_option("--heartbeat", heartbeat, "seconds between heartbeats")->capture_default_str();
  app.add_option("--scrub-interval", scrub_interval, "seconds between scrub passes")
      ->capture_default_str();
  app.add_option("--scrub-rate", scrub_rate, "bytes per second the scrubber reads")
      ->capture_default_str();
  app.add_option("--max-chunk", max_chunk, "largest chunk accepted")->capture_default_str();
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (!SetLogLevel(log_level)) return ConfigError(role, "unknown --log-level " + log_level);
  auto r = ParseReserve(reserve);
  if (!r) return ConfigError(role, "--reserve: " + r.error().message());
  o.reserve = *r;
  auto hb = ParseDuration(heartbeat);
  if (!hb || hb->count() < 10)
    return ConfigError(role, "--heartbeat: not a duration >= 10ms: " + heartbeat);
  o.heartbeat = *hb;
  auto si = ParseDuration(scrub_interval);
  if (!si || si->count() < 10)
    return ConfigError(role, "--scrub-interval: bad duration " + scrub_interval);
  o.scrub_interval = *si;
  auto sr = ParseBytes(scrub_rate);
  if (!sr) return ConfigError(role, "--scrub-rate: " + sr.error().message());
  o.scrub_rate = *sr;
  auto mc = ParseBytes(max_chunk);
  if (!mc) return ConfigError(role, "--max-chunk: " + mc.error().message());
  if (*mc == 0) return ConfigError(role, "--max-chunk: must be more than 0");
  o.max_chunk_bytes = *mc;
  o.masters = SplitCommas(masters);
  if (auto rc = UseClusterKey(role, cluster_key, &o.cluster_key)) return *rc;
  asio::io_context io;
  Chunkserver cs(io.get_executor(), o);
  if (Status st = cs.Start(); !st.ok()) return ConfigError(role, st.ToString());
  WarnIfOpen(role, o.cluster_key);
  std::cout << "chunkserver " << cs.id() << " listening on " << cs.address() << std::endl;
  return RunUntilSignal(io, [&] { cs.Stop(); });
}

int RunGateway(Args args) {
  const std::string role = "gateway";
  CLI::App app{"wharf gateway: the registry and file API", "wharf gateway"};
  std::string config, log_level = "info", chunk_size = "16MiB", policy = "most_free";
  std::string upload_expiry = "24h", gc_interval = "10", max_manifest = "4MiB";
  std::string upload_stale = "10m";
  std::string token_ttl = "5m";
  std::string gc_grace = "1h", gc_untagged_after;
  std::vector<std::string> masters;
  std::string cluster_key;
  GatewayOptions o;
  AddCommon(app, &config, &log_level);
  AddClusterKey(app, &cluster_key);
  app.add_option("--listen", o.listen, "HOST:PORT to serve on")->capture_default_str();
  app.add_option("--master", masters, "master HOST:PORT (repeatable, or comma-separated)");
  app.add_option("--meta", o.meta_url,
                 "metadata store: sqlite:PATH, or postgres://USER@HOST:PORT/DB?... shared by "
                 "every gateway of the cluster");
  app.add_option("--chunk-size", chunk_size, "size of the chunks blobs are cut into")
      ->capture_default_str();
  app.add_option("--inflight", o.max_inflight_chunks, "chunks in flight per upload")
      ->capture_default_str();
  app.add_option("--policy", policy, "most_free|round_robin|named")->capture_default_str();
  app.add_option("--group", o.named_group, "the group for --policy named");
  app.add_option("--upload-expiry", upload_expiry,
                 "upload sessions expire this long after the last byte received")
      ->capture_default_str();
  app.add_option("--upload-stale", upload_stale,
                 "what a request that died mid-body left (a crashed gateway's) is collected "
                 "after this long without progress; keep it above the 120 s body read timeout")
      ->capture_default_str();
  app.add_option("--gc-interval", gc_interval, "seconds between garbage collection passes")
      ->capture_default_str();
  app.add_option("--gc-grace", gc_grace,
                 "unreferenced blobs linked more recently than this are kept")
      ->capture_default_str();
  app.add_option("--gc-untagged-after", gc_untagged_after,
                 "collect untagged manifests pushed longer ago than this (default: keep them)");
  app.add_option("--max-manifest", max_manifest, "largest manifest accepted")
      ->capture_default_str();
  app.add_option("--access-log", o.access_log,
                 "one line per request: off|stderr|FILE (appended; reopened on SIGHUP)")
      ->capture_default_str();
  AddGatewayAuthFlags(app, &o.auth, &token_ttl);
  GatewayUrlFlags url_flags;
  AddGatewayUrlFlags(app, &url_flags);
  std::string writable_wait = "5s", member_timeout = "5s";
  app.add_option("--member-timeout", member_timeout,
                 "deadline of each call to a chunkserver or master (connect, first byte, "
                 "progress); a read is hedged to another member after a quarter of it")
      ->capture_default_str();
  app.add_option("--writable-wait", writable_wait,
                 "how long a write waits for a writable group before answering 503")
      ->capture_default_str();
  AddTlsFlags(app, &o.tls_cert, &o.tls_key, &o.tls_client_ca);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  auto ww = ParseDuration(writable_wait);
  if (!ww || ww->count() > 600'000) return ConfigError(role, "--writable-wait: bad duration");
  o.writable_wait = *ww;
  auto mt = ParseMemberTimeout(member_timeout);
  if (!mt) return ConfigError(role, mt.error().message());
  o.member_timeout = *mt;
  o.public_url = url_flags.public_url;
  o.trusted_proxies = SplitCommas(url_flags.trusted_proxies);
  o.allow_foreign_layers = !url_flags.refuse_foreign_layers;
  if (!SetLogLevel(log_level)) return ConfigError(role, "unknown --log-level " + log_level);
  if (Status st = FinishGatewayAuthFlags(token_ttl, &o.auth); !st.ok()) {
    return ConfigError(role, st.message());
  }
  auto cs = ParseBytes(chunk_size);
  if (!cs) return ConfigError(role, "--chunk-size: " + cs.error().message());
  if (Status st = CheckChunkSize(*cs); !st.ok()) {
    return ConfigError(role, "--chunk-size: " + st.message());
  }
  o.chunk_size = *cs;
  if (o.max_inflight_chunks < 1 || o.max_inflight_chunks > 64) {
    return ConfigError(role, "--inflight must be 1..64");
  }
  auto pol = ParsePlacementPolicy(policy);
  if (!pol) return ConfigError(role, "--policy: " + pol.error().message());
  o.policy = *pol;
  auto ue = ParseDuration(upload_expiry);
  if (!ue || ue->count() < 1000) return ConfigError(role, "--upload-expiry: bad duration");
  o.upload_expiry = std::chrono::duration_cast<std::chrono::seconds>(*ue);
  auto us = ParseDuration(upload_stale);
  if (!us || us->count() < 1000) return ConfigError(role, "--upload-stale: bad duration");
  o.upload_stale = std::chrono::duration_cast<std::chrono::seconds>(*us);
  auto gi = ParseDuration(gc_interval);
  if (!gi || gi->count() < 10) return ConfigError(role, "--gc-interval: bad duration");
  o.gc_interval = *gi;
  auto gcf = ParseGcFlags(gc_grace, gc_untagged_after);
  if (!gcf) return ConfigError(role, gcf.error().message());
  o.gc_grace = gcf->grace;
  o.gc_untagged_after = gcf->untagged_after;
  auto mm = ParseBytes(max_manifest);
  if (!mm) return ConfigError(role, "--max-manifest: " + mm.error().message());
  if (*mm == 0) return ConfigError(role, "--max-manifest: must be more than 0");
  o.max_manifest_bytes = *mm;
  o.masters = SplitCommas(masters);
  if (auto rc = UseClusterKey(role, cluster_key, &o.cluster_key)) return *rc;
  asio::io_context io;
  Gateway gw(io.get_executor(), o);
  if (Status st = gw.Start(); !st.ok()) return ConfigError(role, st.ToString());
  WarnIfOpen(role, o.cluster_key);
  std::cout << "gateway listening on " << gw.address() << std::endl;
  return RunUntilSignal(
      io, [&] { gw.Stop(); }, 1,
      [&gw] {
        AccessLog::ReopenAll();
        (void)gw.ReloadTls();  // logs what happened
      });
}

}  // namespace wharf::cli

#include "cli/gateway_flags.h"

#include "cli/flag_checks.h"
#include "cli/gc_flags.h"
#include "common/limits.h"
#include "common/units.h"
#include "http/tls.h"

namespace wharf::cli {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr hours kTenYears{10 * 366 * 24};

// A duration for --gc-untagged-after, or "off".
CLI::Validator DurationOrOff() {
  CLI::Validator d = DurationIn(milliseconds(0), kTenYears);
  return CLI::Validator(
      [d](std::string& s) -> std::string {
        if (s == "off" || s.empty()) return "";
        std::string copy = s;
        return d(copy);
      },
      "off|" + d.get_description(), "duration_or_off");
}

}  // namespace

void AddGatewayAuthFlags(CLI::App& app, GatewayAuthOptions* o, std::string* ttl) {
  app.add_option("--htpasswd", o->htpasswd,
                 "users and bcrypt hashes (htpasswd -B); Basic auth; re-read on change");
  app.add_option("--access", o->access,
                 "access policy (YAML): who may pull/push/delete what; re-read on change");
  app.add_option("--token-key", o->token_key,
                 "private key (PEM, P-256 or RSA): issue Bearer tokens at /v2/token");
  app.add_option("--token-public-key", o->token_public_keys,
                 "[KID=]FILE: accept tokens signed by this key (repeatable)");
  app.add_option("--token-issuer", o->token_issuer, "iss of tokens made and accepted (wharf)");
  app.add_option("--token-service", o->token_service,
                 "audience of tokens, the challenges' service (wharf)");
  app.add_option("--token-ttl", *ttl, "lifetime of issued tokens")
      ->capture_default_str()
      ->check(DurationIn(seconds(1), hours(7 * 24)));
  app.add_option("--auth-realm", o->realm,
                 "Basic realm, or with tokens the token service's URL "
                 "(default: this gateway's /v2/token)");
  app.add_flag("--read-only", o->read_only, "maintenance: every write answers 405, reads go on");
  app.add_option("--max-login-failures", o->max_login_failures,
                 "failed logins per minute from one address before 429")
      ->capture_default_str()
      ->check(IntIn(1, 1'000'000));
}

void AddGatewayUrlFlags(CLI::App& app, GatewayUrlFlags* f) {
  app.add_option("--public-url", f->public_url,
                 "base of the absolute URLs sent to clients, e.g. https://registry.example.com "
                 "(default: from the request's Host)");
  app.add_option("--trusted-proxy", f->trusted_proxies,
                 "address or network whose X-Forwarded-Proto/Host are believed (repeatable)");
  app.add_flag("--refuse-foreign-layers", f->refuse_foreign_layers,
               "refuse manifests whose foreign (non-distributable) layers were not pushed here");
}

void AddTlsFlags(CLI::App& app, std::string* cert, std::string* key, std::string* client_ca) {
  app.add_option("--tls-cert", *cert,
                 "PEM certificate (a chain allowed) to serve HTTPS with; reloaded on SIGHUP");
  app.add_option("--tls-key", *key, "PEM private key of --tls-cert (unencrypted)");
  app.add_option("--tls-client-ca", *client_ca,
                 "PEM CA certificates: ask clients for a certificate and accept only those "
                 "they signed");
}

void AddGatewayFlags(CLI::App& app, GatewayFlagsFor who, GatewayFlags* f, GatewayOptions* o) {
  const bool up = who == GatewayFlagsFor::kUp;
  app.add_option("--listen", o->listen,
                 up ? "HOST:PORT of the gateway (registry and file API)" : "HOST:PORT to serve on")
      ->capture_default_str()
      ->check(HostPort());
  if (!up) {
    app.add_option("--master", f->masters, "master HOST:PORT (repeatable, or comma-separated)");
  }
  app.add_option("--meta", o->meta_url,
                 up ? "the gateway's metadata store (default sqlite:DATA/meta.db; or "
                      "postgres://...)"
                    : "metadata store: sqlite:PATH, or postgres://USER@HOST:PORT/DB?... shared "
                      "by every gateway of the cluster (required)");
  app.add_option("--chunk-size", f->chunk_size,
                 up ? "chunk size (the master's and the gateway's)"
                    : "size of the chunks blobs are cut into")
      ->capture_default_str()
      ->check(SizeIn(kMinChunkBytes, kMaxChunkBytes));
  app.add_option("--inflight", o->max_inflight_chunks, "chunks in flight per upload")
      ->capture_default_str()
      ->check(IntIn(1, 64));
  app.add_option("--policy", f->policy, "how the gateway picks the group of a write")
      ->capture_default_str()
      ->check(OneOf({"most_free", "round_robin", "named"}));
  app.add_option("--group", o->named_group, "the group for --policy named");
  app.add_option("--upload-expiry", f->upload_expiry,
                 "upload sessions expire this long after the last byte received")
      ->capture_default_str()
      ->check(DurationIn(seconds(1), hours(366 * 24)));
  app.add_option("--upload-stale", f->upload_stale,
                 "what a request that died mid-body left (a crashed gateway's) is collected "
                 "after this long without progress; keep it above the 120 s body read timeout")
      ->capture_default_str()
      ->check(DurationIn(seconds(1), hours(366 * 24)));
  app.add_option("--gc-interval", f->gc_interval,
                 "time between garbage collection passes (plain number: seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(10), hours(24)));
  app.add_option("--gc-grace", f->gc_grace,
                 "unreferenced blobs linked more recently than this are kept (whole seconds)")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(0), kTenYears));
  app.add_option("--gc-untagged-after", f->gc_untagged_after,
                 "collect untagged manifests pushed longer ago than this (default: off, keep "
                 "them)")
      ->check(DurationOrOff());
  app.add_option("--max-manifest", f->max_manifest, "largest manifest accepted (larger: 413)")
      ->capture_default_str()
      ->check(SizeIn(1, kMaxManifestBytes));
  app.add_option("--access-log", o->access_log,
                 up ? "the gateway's request log: off|stderr|FILE (appended; reopened on SIGHUP)"
                    : "one line per request: off|stderr|FILE (appended; reopened on SIGHUP)")
      ->capture_default_str();
  AddGatewayAuthFlags(app, &o->auth, &f->token_ttl);
  AddGatewayUrlFlags(app, &f->url);
  app.add_option("--writable-wait", f->writable_wait,
                 "how long a write waits for a writable group before answering 503")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(0), std::chrono::minutes(10)));
  app.add_option("--member-timeout", f->member_timeout,
                 "deadline of each call to a chunkserver or master (connect, first byte, "
                 "progress); a read is hedged to another member after a quarter of it")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(100), std::chrono::minutes(10)));
  app.add_option("--read-hedge", f->read_hedge,
                 "how long a chunk read waits for a member before asking another too (the "
                 "first good copy wins); 0: a quarter of --member-timeout; off: never, a read "
                 "fails over only once the member timed out")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(0), std::chrono::minutes(10)) | CLI::IsMember({"off"}));
  if (up) f->memory_budget = "auto";
  app.add_option("--memory-budget", f->memory_budget,
                 "bound on the memory of all in-flight buffers of the gateway (upload chunks, "
                 "reads, request bodies, manifests); when spent, requests wait for memory "
                 "instead of the gateway growing. At least 2 x --chunk-size + 2MiB; auto: 5 x "
                 "--chunk-size, at least 16MiB (the default of wharf up: its two groups share one "
                 "disk, and fewer chunks in flight halve its peak memory)")
      ->capture_default_str()
      ->check(SizeIn(16u << 20, 1ull << 40) | CLI::IsMember({"auto"}));
  app.add_option("--min-body-rate", f->min_body_rate,
                 "slowest request body accepted, bytes per second averaged over "
                 "--min-body-rate-window (slower: the connection is closed); 0: no minimum")
      ->capture_default_str()
      ->check(SizeIn(0, 1ull << 30));
  app.add_option("--min-body-rate-window", f->min_body_rate_window,
                 "the time over which --min-body-rate is judged: a body may stall this long")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(100), std::chrono::minutes(10)));
  app.add_option("--lookup-cache-ttl", f->lookup_cache_ttl,
                 "how long the gateway believes a cached lookup of a linked blob, a manifest by "
                 "digest or (--lookup-cache-tags) a tag; its own writes invalidate at once, other "
                 "gateways' are seen this late at most. 0: no cache")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(0), std::chrono::hours(1)));
  app.add_option("--lookup-cache-size", f->lookup_cache_size,
                 "bound on the memory of the lookup cache")
      ->capture_default_str()
      ->check(SizeIn(1u << 20, 1ull << 34));
  app.add_option("--lookup-cache-tags", f->lookup_cache_tags,
                 up ? "cache tags too: on (default; this gateway is its store's only writer) or "
                      "off (other gateways write to the same --meta)"
                    : "cache tags too: off (default) or on, when this gateway is the only one "
                      "writing to its --meta (tags moved elsewhere would be seen up to "
                      "--lookup-cache-ttl late)")
      ->check(OneOf({"on", "off"}));
  AddTlsFlags(app, &o->tls_cert, &o->tls_key, &o->tls_client_ca);
  app.add_option("--site-upstream", o->site_upstream,
                 "site mode: the shared upstream registry (http(s)://HOST:PORT); pushes are "
                 "written through to it before they are acknowledged, misses fetched from it");
  app.add_option("--site-upstream-ca", o->site_upstream_ca,
                 "PEM CA certificates to verify an https --site-upstream with (default: the "
                 "system's)");
  app.add_option("--site-upstream-user", o->site_upstream_user,
                 "user for the upstream (Basic, or to fetch its Bearer tokens)");
  app.add_option("--site-upstream-password-file", f->site_upstream_password_file,
                 "file holding the password of --site-upstream-user (first line)");
  app.add_option("--site-tag-ttl", f->site_tag_ttl,
                 "a tag is looked up upstream again when its last lookup is older than this")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(0), hours(24)));
  app.add_option("--site-write", f->site_write,
                 "sync: a push is acknowledged once the upstream holds it too; async: once "
                 "stored at the site, the upstream getting it later through a durable queue in "
                 "the metadata store (retried with backoff; GET /admin/queue)")
      ->capture_default_str()
      ->check(OneOf({"sync", "async"}));
  app.add_option("--proxy", f->proxy,
                 "pull-through cache: NAME=URL of an upstream registry; pulls of NAME/REPO are "
                 "served from here or fetched from URL's REPO (Docker Hub: library/ added), "
                 "pushes to NAME/... refused. Repeatable; the same NAME again: a failover "
                 "upstream, tried in order");
  app.add_option("--proxy-user", f->proxy_user,
                 "NAME=USER: the user for NAME's upstreams (Basic, or to fetch Bearer tokens)");
  app.add_option("--proxy-password-file", f->proxy_password_file,
                 "NAME=FILE: the file holding the password of NAME's --proxy-user (first line)");
  app.add_option("--proxy-ca", f->proxy_ca,
                 "NAME=FILE: PEM CA certificates to verify NAME's https upstreams with (default: "
                 "the system's)");
  app.add_option("--proxy-tag-ttl", f->proxy_tag_ttl,
                 "a proxied tag is looked up upstream again when its last lookup is older than "
                 "this")
      ->capture_default_str()
      ->check(DurationIn(milliseconds(0), hours(24)));
  app.add_option("--replicate", o->replicate_file,
                 "replication rules (YAML): push rules copy what is pushed here to other "
                 "registries through a durable job queue (GET /admin/replication), pull rules "
                 "copy from them periodically; read at start");
  app.add_flag("--proxy-serve-stale", o->proxy_serve_stale,
               "with every upstream of a NAME down, serve a tag as last looked up (default: 503; "
               "content already cached is served either way)");
  app.add_option("--site-cache-low", f->site_cache_low,
                 "site mode: when the cluster's free space falls under this (e.g. 10%), the least "
                 "recently pulled blobs confirmed upstream are evicted (default: never); needs "
                 "--site-cache-high");
  app.add_option("--site-cache-high", f->site_cache_high,
                 "site mode: eviction goes on until free space is back at this (e.g. 20%), "
                 "counting what garbage collection has still to delete");
}

static Status FinishProxyFlags(const GatewayFlags& f, GatewayOptions* o) {
  auto ttl = ParseDuration(f.proxy_tag_ttl);
  if (!ttl || ttl->count() < 0) return InvalidArgument("--proxy-tag-ttl: bad duration");
  o->proxy_tag_ttl = *ttl;
  auto proxies =
      upstream::ParseProxyFlags(f.proxy, f.proxy_user, f.proxy_password_file, f.proxy_ca);
  if (!proxies) return proxies.error();
  o->proxies = std::move(*proxies);
  if (o->proxies.empty() && o->proxy_serve_stale) {
    return InvalidArgument("--proxy-serve-stale needs --proxy NAME=URL");
  }
  return Status::Ok();
}

static Status FinishSiteCacheFlags(const GatewayFlags& f, bool site, GatewayOptions* o) {
  if (f.site_cache_low.empty() && f.site_cache_high.empty()) return Status::Ok();
  if (!site) return InvalidArgument("--site-cache-low/--site-cache-high need --site-upstream");
  if (f.site_cache_low.empty() || f.site_cache_high.empty()) {
    return InvalidArgument("--site-cache-low and --site-cache-high go together");
  }
  auto low = ParseWatermark("--site-cache-low", f.site_cache_low);
  if (!low) return low.error();
  auto high = ParseWatermark("--site-cache-high", f.site_cache_high);
  if (!high) return high.error();
  if (!(*low < *high)) {
    return InvalidArgument("--site-cache-low (" + f.site_cache_low +
                           ") must be under --site-cache-high (" + f.site_cache_high + ")");
  }
  o->site_cache_low_percent = *low;
  o->site_cache_high_percent = *high;
  return Status::Ok();
}

static Status FinishSiteFlags(const GatewayFlags& f, GatewayOptions* o) {
  auto ttl = ParseDuration(f.site_tag_ttl);
  if (!ttl || ttl->count() < 0) return InvalidArgument("--site-tag-ttl: bad duration");
  o->site_tag_ttl = *ttl;
  const bool site = !o->site_upstream.empty();
  if (!site && (!o->site_upstream_ca.empty() || !o->site_upstream_user.empty() ||
                !f.site_upstream_password_file.empty())) {
    return InvalidArgument("--site-upstream-ca/-user/-password-file need --site-upstream");
  }
  if (f.site_write != "sync" && f.site_write != "async") {
    return InvalidArgument("--site-write: want sync or async, got '" + f.site_write + "'");
  }
  o->site_write_async = f.site_write == "async";
  if (!site && o->site_write_async)
    return InvalidArgument("--site-write async needs --site-upstream");
  WHARF_RETURN_IF_ERROR(FinishSiteCacheFlags(f, site, o));
  if (!site) return Status::Ok();
  if (o->site_upstream.rfind("http://", 0) != 0 && o->site_upstream.rfind("https://", 0) != 0) {
    return InvalidArgument("--site-upstream: want http://HOST:PORT or https://HOST:PORT, got '" +
                           o->site_upstream + "'");
  }
  if (!f.site_upstream_password_file.empty() && o->site_upstream_user.empty()) {
    return InvalidArgument("--site-upstream-password-file needs --site-upstream-user");
  }
  o->site_upstream_password_file = f.site_upstream_password_file;
  return Status::Ok();
}

Result<std::chrono::milliseconds> ParseMemberTimeout(const std::string& text) {
  auto d = ParseDuration(text);
  if (!d || d->count() < 100 || d->count() > 600'000) {
    return Err(
        InvalidArgument("--member-timeout: want a duration from 100ms to 10m, got '" + text + "'"));
  }
  return *d;
}

Status FinishGatewayAuthFlags(const std::string& ttl, GatewayAuthOptions* o) {
  auto d = ParseDuration(ttl);
  if (!d) return InvalidArgument("--token-ttl: " + d.error().message());
  o->token_ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
  if (o->max_login_failures < 1) return InvalidArgument("--max-login-failures must be at least 1");
  return Status::Ok();
}

Status FinishGatewayFlags(const GatewayFlags& f, GatewayOptions* o) {
  WHARF_RETURN_IF_ERROR(FinishGatewayAuthFlags(f.token_ttl, &o->auth));
  o->public_url = f.url.public_url;
  o->trusted_proxies = SplitCommas(f.url.trusted_proxies);
  o->allow_foreign_layers = !f.url.refuse_foreign_layers;
  auto cs = ParseBytes(f.chunk_size);
  if (!cs) return InvalidArgument("--chunk-size: " + cs.error().message());
  if (Status st = CheckChunkSize(*cs); !st.ok()) {
    return InvalidArgument("--chunk-size: " + st.message());
  }
  o->chunk_size = *cs;
  if (o->max_inflight_chunks < 1 || o->max_inflight_chunks > 64) {
    return InvalidArgument("--inflight must be 1..64");
  }
  auto pol = ParsePlacementPolicy(f.policy);
  if (!pol) return InvalidArgument("--policy: " + pol.error().message());
  o->policy = *pol;
  if (o->policy == PlacementPolicy::kNamed && o->named_group.empty()) {
    return InvalidArgument("--policy named needs --group");
  }
  auto ue = ParseDuration(f.upload_expiry);
  if (!ue || ue->count() < 1000) return InvalidArgument("--upload-expiry: bad duration");
  o->upload_expiry = std::chrono::duration_cast<std::chrono::seconds>(*ue);
  auto gi = ParseDuration(f.gc_interval);
  if (!gi || gi->count() < 10) return InvalidArgument("--gc-interval: bad duration");
  o->gc_interval = *gi;
  auto gcf = ParseGcFlags(f.gc_grace, f.gc_untagged_after);
  if (!gcf) return gcf.error();
  o->gc_grace = gcf->grace;
  o->gc_untagged_after = gcf->untagged_after;
  auto mm = ParseBytes(f.max_manifest);
  if (!mm) return InvalidArgument("--max-manifest: " + mm.error().message());
  if (*mm == 0) return InvalidArgument("--max-manifest: must be more than 0");
  o->max_manifest_bytes = *mm;
  auto ww = ParseDuration(f.writable_wait);
  if (!ww || ww->count() < 0 || ww->count() > 600'000) {
    return InvalidArgument("--writable-wait: bad duration");
  }
  o->writable_wait = *ww;
  auto us = ParseDuration(f.upload_stale);
  if (!us || us->count() < 1000) return InvalidArgument("--upload-stale: bad duration");
  o->upload_stale = std::chrono::duration_cast<std::chrono::seconds>(*us);
  WHARF_RETURN_IF_ERROR(FinishSiteFlags(f, o));
  WHARF_RETURN_IF_ERROR(FinishProxyFlags(f, o));
  auto mt = ParseMemberTimeout(f.member_timeout);
  if (!mt) return mt.error();
  o->member_timeout = *mt;
  if (f.read_hedge == "off") {
    o->read_hedge = std::chrono::milliseconds(-1);
  } else {
    auto rh = ParseDuration(f.read_hedge);
    if (!rh || rh->count() < 0 || rh->count() > 600'000) {
      return InvalidArgument("--read-hedge: want off or a duration from 0 to 10m, got '" +
                             f.read_hedge + "'");
    }
    o->read_hedge = *rh;
  }
  if (f.memory_budget == "auto") {
    o->memory_budget =
        std::max<uint64_t>({5 * o->chunk_size, MinMemoryBudget(o->chunk_size), uint64_t{16} << 20});
  } else {
    auto mb = ParseBytes(f.memory_budget);
    if (!mb) return InvalidArgument("--memory-budget: " + mb.error().message());
    o->memory_budget = *mb;
  }
  WHARF_RETURN_IF_ERROR(CheckMemoryBudget(o->memory_budget, o->chunk_size));
  auto mr = ParseBytes(f.min_body_rate);
  if (!mr) return InvalidArgument("--min-body-rate: " + mr.error().message());
  o->min_body_rate = *mr;
  auto mw = ParseDuration(f.min_body_rate_window);
  if (!mw || mw->count() < 100 || mw->count() > 600'000) {
    return InvalidArgument("--min-body-rate-window: want a duration from 100ms to 10m");
  }
  o->min_body_rate_window = *mw;
  auto lt = ParseDuration(f.lookup_cache_ttl);
  if (!lt || lt->count() < 0 || lt->count() > 3'600'000) {
    return InvalidArgument("--lookup-cache-ttl: want a duration from 0 to 1h");
  }
  o->lookup_cache.ttl = *lt;
  auto ls = ParseBytes(f.lookup_cache_size);
  if (!ls || *ls < (1u << 20)) return InvalidArgument("--lookup-cache-size: want at least 1MiB");
  o->lookup_cache.max_bytes = *ls;
  if (!f.lookup_cache_tags.empty() && f.lookup_cache_tags != "on" && f.lookup_cache_tags != "off") {
    return InvalidArgument("--lookup-cache-tags: want on or off");
  }
  o->lookup_cache.tags = f.lookup_cache_tags == "on";
  o->masters = SplitCommas(f.masters);
  return Status::Ok();
}

Status CheckGatewayFiles(const GatewayOptions& o) {
  if (auto hp = SplitHostPort(o.listen); !hp)
    return InvalidArgument("--listen: " + hp.error().message());
  for (const auto& m : o.masters) {
    if (auto hp = SplitHostPort(m); !hp)
      return InvalidArgument("--master: " + hp.error().message());
  }
  if (auto urls = PublicUrl::Make(o.public_url, o.trusted_proxies, !o.tls_cert.empty()); !urls) {
    return urls.error();
  }
  if (o.auth.enabled()) {
    // Reads the files and keys (creates nothing).
    if (auto auth = GatewayAuth::Load(o.auth); !auth) return auth.error();
  }
  if (!o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_client_ca.empty()) {
    auto tls =
        TlsContext::Load({.cert = o.tls_cert, .key = o.tls_key, .client_ca = o.tls_client_ca});
    if (!tls) return tls.error();
  }
  return Status::Ok();
}

}  // namespace wharf::cli

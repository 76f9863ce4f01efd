// The gateway's flags, defined once and added by both `wharf gateway` and `wharf up`, so the
// one-process cluster takes every flag a gateway does (and its --config file every key).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "gateway/auth_config.h"
#include "gateway/gateway.h"

namespace wharf::cli {

// Adds --htpasswd, --access, --token-key, --token-public-key, --token-issuer,
// --token-service, --token-ttl, --auth-realm, --read-only and --max-login-failures; the ttl
// is kept as text in *ttl until FinishGatewayAuthFlags parses it.
void AddGatewayAuthFlags(CLI::App& app, GatewayAuthOptions* o, std::string* ttl);
// kInvalidArgument for a bad --token-ttl or --max-login-failures.
Status FinishGatewayAuthFlags(const std::string& ttl, GatewayAuthOptions* o);

// The gateway's client-facing flags: --public-url, --trusted-proxy, --refuse-foreign-layers.
struct GatewayUrlFlags {
  std::string public_url;
  std::vector<std::string> trusted_proxies;  // as given (comma lists not yet split)
  bool refuse_foreign_layers = false;
};
void AddGatewayUrlFlags(CLI::App& app, GatewayUrlFlags* f);

// --tls-cert, --tls-key, --tls-client-ca.
void AddTlsFlags(CLI::App& app, std::string* cert, std::string* key, std::string* client_ca);

// Who adds the gateway's flags: `wharf gateway`, or `wharf up` (whose --chunk-size is also the
// master's, whose --meta defaults to sqlite:DATA/meta.db, and which sets --master itself).
enum class GatewayFlagsFor { kGateway, kUp };

// The gateway flags kept as text until FinishGatewayFlags parses them into GatewayOptions
// (validators have checked each value by then).
struct GatewayFlags {
  std::string chunk_size = "16MiB";
  std::string policy = "most_free";
  std::string upload_expiry = "24h";
  std::string gc_interval = "10";
  std::string gc_grace = "1h";
  std::string gc_untagged_after;
  std::string max_manifest = "4MiB";
  std::string token_ttl = "5m";
  std::string writable_wait = "5s";
  std::string upload_stale = "10m";
  std::string member_timeout = "5s";
  std::string read_hedge = "0";
  std::string memory_budget = "512MiB";
  std::string min_body_rate = "1KiB";
  std::string min_body_rate_window = "10s";
  std::string lookup_cache_ttl = "2s";
  std::string lookup_cache_size = "64MiB";
  std::string lookup_cache_tags;     // "": on for `wharf up` (the store's only writer), else off
  std::vector<std::string> masters;  // kGateway only
  GatewayUrlFlags url;
  std::string site_tag_ttl = "30s";
  std::string site_upstream_password_file;
  std::string site_write = "sync";  // sync | async
  // --proxy NAME=URL (repeatable) and the NAME=VALUE settings of each NAME.
  std::vector<std::string> proxy, proxy_user, proxy_password_file, proxy_ca;
  std::string proxy_tag_ttl = "30s";
  std::string site_cache_low;  // "": no eviction; else a percentage, with site_cache_high
  std::string site_cache_high;
};

// Adds every gateway flag but --cluster-key (each command describes its own) and --config /
// --log-level (common_flags.h): --listen, --master (kGateway only), --meta, --chunk-size,
// --inflight, --policy, --group, --upload-expiry, --gc-*, --max-manifest, --access-log,
// --writable-wait, --upload-stale, --member-timeout, --read-hedge, --memory-budget,
// --min-body-rate(-window), the access-control, URL and TLS flags, the site (--site-*) and
// pull-through (--proxy*) flags. Plain values land in *o
// directly.
void AddGatewayFlags(CLI::App& app, GatewayFlagsFor who, GatewayFlags* f, GatewayOptions* o);
// --member-timeout: a duration from 100ms to 10m. kInvalidArgument naming the flag otherwise.
Result<std::chrono::milliseconds> ParseMemberTimeout(const std::string& text);
// Parses the text flags of `f` into *o. kInvalidArgument naming the flag.
Status FinishGatewayFlags(const GatewayFlags& f, GatewayOptions* o);
// What the gateway's Start() would refuse in its files without opening or creating anything:
// --listen, --master, --public-url / --trusted-proxy, the access-control files and keys, the
// TLS files. The metadata store is not opened (that creates it).
Status CheckGatewayFiles(const GatewayOptions& o);

}  // namespace wharf::cli

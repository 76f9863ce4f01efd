// The gateway's access-control flags, shared by `wharf gateway` and `wharf up`.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "gateway/auth_config.h"

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

// --member-timeout: a duration from 100ms to 10m. kInvalidArgument naming the flag otherwise.
Result<std::chrono::milliseconds> ParseMemberTimeout(const std::string& text);

}  // namespace wharf::cli

// The gateway's access-control flags, shared by `wharf gateway` and `wharf up`.
#pragma once

#include <string>

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

}  // namespace wharf::cli

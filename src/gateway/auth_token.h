// The gateway's own token server (Docker token spec, as distribution's token servers answer),
// when it has a --token-key:
//
//   GET /v2/token?service=<--token-service>&scope=repository:team/app:pull,push[&scope=...]
//                [&account=<user>]                 Authorization: Basic ... (or none)
//   200 {"token": "<JWS>", "access_token": "<JWS>", "expires_in": 300,
//        "issued_at": "2026-12-01T22:05:00Z"}
//
// The token's `access` claim holds only what the access policy grants the caller of what was
// asked (Authenticator::Grant); an anonymous caller gets the anonymous grants. Bad credentials
// 401 UNAUTHORIZED with a Basic challenge, too many of them 429, an unknown service or a
// malformed scope 400, `account` naming someone else 401.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "gateway/auth_config.h"
#include "http/server.h"

namespace wharf {

// Every value of query parameter `key` in a raw query string, percent-decoded ('+' is a space).
std::vector<std::string> QueryValues(std::string_view query, std::string_view key);

// Answers GET /v2/token. Runs on the gateway's executor (bcrypt and signing run inline: a
// few milliseconds, once per client session).
awaitable<void> HandleToken(const GatewayAuth& auth, Exchange& ex);

}  // namespace wharf

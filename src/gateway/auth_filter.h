// The gateway's access control in its filter chain (http/router.h), before any handler runs:
//
//   ReadOnlyFilter   --read-only: every write to /v2 or /files answers 405 UNSUPPORTED.
//   AuthFilter       maps the request to the access it needs (RequiredAccessFor), asks the
//                    Authenticator, and answers 401 UNAUTHORIZED with the challenge, 403
//                    DENIED or 429 TOOMANYREQUESTS with Retry-After; otherwise it records the
//                    caller in the request context (and the access log) and lets it through.
//
// What each route needs:
//   /healthz /metrics /v2/token        nothing (the token endpoint checks its own credentials)
//   GET /v2/                           an identity (no credentials: 401, clients rely on it)
//   /v2/_catalog                       any caller; the handler lists what it may pull
//   /ui/ (the status page)             a caller who may pull some repository, or any
//                                      authenticated caller; the page lists what it may pull
//   tags/list, referrers, GET/HEAD manifests and blobs       pull
//   PUT manifests, uploads (POST/PATCH/PUT/GET/DELETE)      push (a mount also pull on
//                                                          `from`, checked by the handler)
//   DELETE manifests and blobs         delete
//   /files: GET/HEAD files:read, POST files:write, DELETE files:delete
//   /admin/...                         admin
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.h"
#include "common/asio.h"
#include "common/metrics.h"
#include "gateway/auth_config.h"
#include "gateway/public_url.h"
#include "http/router.h"
#include "registry/errors.h"

namespace wharf {

struct RequiredAccess {
  enum class Kind {
    kNone,        // open (ops routes, the token endpoint, paths no route takes)
    kIdentity,    // an authenticated caller (GET /v2/)
    kCatalog,     // any caller, identified if credentials are sent
    kRepository,  // `action` on `repository`
    kFiles,       // `action` (a file action)
    kStatusPage,  // an authenticated caller, or an anonymous one the policy lets pull somewhere
    kAdmin,       // the admin action (the /admin/ views)
  };
  Kind kind = Kind::kNone;
  std::string repository;
  auth::Action action = auth::Action::kPull;
  std::string mount_from;  // a mount's valid `from` (not the target): pull on it, in the challenge
  bool operator==(const RequiredAccess&) const = default;
};

// What a Bearer challenge for `need` asks for: the repository's scope (pull, or pull and push
// before a push, as clients ask), a mount's pull on `from`, or the catalog. Built only when a
// request is refused.
std::vector<auth::Scope> ChallengeScopes(const RequiredAccess& need);

// The access a request needs (the table above). `route` is the router's route name
// ("registry", "files", "token", "healthz", ...); `from` the query's `from` of a mount
// (adds a pull scope on it to the challenge). Pure: no I/O.
RequiredAccess RequiredAccessFor(std::string_view route, http::verb method, std::string_view path,
                                 std::string_view from = {});

// True for a method that changes something (everything but GET, HEAD and OPTIONS).
bool IsWrite(http::verb method);

// The filter's answer for one request, HTTP-free so that it is tested without a server.
struct AuthAnswer {
  bool proceed = false;  // let the request through (decision.caller is who calls)
  unsigned status = 0;   // else answer this...
  OciError error = OciError::kUnauthorized;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers;  // WWW-Authenticate, Retry-After
  auth::Decision decision;
};

// `authorization`: the header's value; `remote`: the peer's address (no port); `base_url`:
// "scheme://host[:port]" clients reach this gateway by (PublicUrl::BaseFor: https when it
// serves TLS or a trusted proxy says so), which names its token realm, or "" (the realm is
// then the relative "/v2/token"); `cert_subject`: the verified TLS client certificate's
// subject ("" when none), which the policy names "cert:<subject>".
AuthAnswer DecideAccess(const auth::Authenticator& auth, const RequiredAccess& need,
                        std::string_view authorization, std::string_view remote,
                        std::string_view base_url, std::string_view cert_subject = {});
// The same with the base URL computed only when a challenge names it (the filter's form).
AuthAnswer DecideAccess(const auth::Authenticator& auth, const RequiredAccess& need,
                        std::string_view authorization, std::string_view remote,
                        const std::function<std::string()>& base_url,
                        std::string_view cert_subject);

// wharf_gateway_auth_failures_total{reason}.
CounterMetric& AuthFailureCounter(const std::string& reason);

// The address of "ip:port" ("[::1]:80" and "::1:80" too), for the login throttle.
std::string_view RemoteAddress(std::string_view remote);

class ReadOnlyFilter : public Filter {
 public:
  awaitable<Result> OnRequest(Exchange& ex) override;
};

class AuthFilter : public Filter {
 public:
  AuthFilter(GatewayAuth* auth, const PublicUrl* urls) : auth_(auth), urls_(urls) {}
  awaitable<Result> OnRequest(Exchange& ex) override;

 private:
  GatewayAuth* auth_;      // outlives the router
  const PublicUrl* urls_;  // outlives the router; names the token realm
};

}  // namespace wharf

// The one decision the gateway's auth filter asks for each request: who is calling (Basic
// against htpasswd, Bearer against the token keys, a verified client certificate, or nobody)
// and may they do this action on this repository. HTTP-free: the filter hands in header values
// and answers with the verdict's status, challenge and Retry-After.
//
//   Decision d = auth.Authorize({.authorization = req["Authorization"], .remote = peer_ip,
//                                .repository = name, .action = Action::kPush, .scopes = scopes});
//   switch (d.verdict) {
//     case Verdict::kAllow:        next(d.caller); break;
//     case Verdict::kUnauthorized: 401 UNAUTHORIZED, WWW-Authenticate: d.challenge; break;
//     case Verdict::kDenied:       403 DENIED; break;
//     case Verdict::kThrottled:    429 TOOMANYREQUESTS, Retry-After: d.retry_after; break;
//   }
//   if (!d.failure.empty()) count wharf_gateway_auth_failures_total{reason=d.failure} and log.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/htpasswd.h"
#include "auth/policy.h"
#include "auth/scope.h"
#include "auth/throttle.h"
#include "auth/token.h"

namespace wharf::auth {

// Every part is optional. Who may do what, by what is configured:
// - nothing: open, everything is allowed (the gateway as it was);
// - an access policy: the policy decides for Basic, certificate and anonymous callers;
// - htpasswd or tokens but no policy: any authenticated caller may do everything, anonymous
//   callers nothing (distribution's behaviour);
// - a Bearer caller: the token's `access` claim decides repository actions (the policy was
//   applied when the token was issued); file actions go to the policy for the token's subject.
struct AuthenticatorParts {
  std::shared_ptr<HtpasswdFile> htpasswd;
  std::shared_ptr<TokenVerifier> tokens;
  std::shared_ptr<AccessPolicyFile> policy;
  std::shared_ptr<LoginThrottle> throttle;
  std::string basic_realm = "wharf";
  std::string token_realm;  // e.g. "https://host/v2/token"; when set, challenges are Bearer
  // Challenges are Bearer even without a fixed token_realm (each request then names its own,
  // AuthRequest::token_realm).
  bool bearer = false;
  std::string service;  // the Bearer challenge's service (= --token-service)
};

struct Caller {
  Principal principal;                       // anonymous when no identity was proved
  std::shared_ptr<const TokenClaims> token;  // set for Bearer callers
};

enum class Verdict { kAllow, kUnauthorized, kDenied, kThrottled };

struct AuthRequest {
  std::string_view authorization;  // the Authorization header value, "" when absent
  std::string_view remote;         // the peer address (throttle key)
  std::string_view cert_subject;   // a verified client certificate's subject, "" when none
  std::string_view repository;     // "" for file API requests and the catalog
  Action action = Action::kPull;
  std::vector<Scope> scopes;  // what the challenge asks for (the request's resource)
  // The Bearer challenge's realm for this request when AuthenticatorParts::token_realm is
  // empty (a gateway issuing its own tokens names its /v2/token by the request's Host).
  std::string_view token_realm;
  // False: leave Decision::challenge empty; the caller builds it with Challenge() only when it
  // refuses (the scopes and the realm cost allocations on every request otherwise).
  bool challenge = true;
};

struct Decision {
  Verdict verdict = Verdict::kDenied;
  Caller caller;
  std::string challenge;         // the WWW-Authenticate value, for kUnauthorized
  std::string failure;           // a metric label when credentials were refused: bad_password,
                                 // unknown_user, malformed, bad_token, unsupported_scheme,
                                 // throttled; "" otherwise
  std::string failure_detail;    // a log line's detail for a failure
  std::string_view token_error;  // the Bearer challenge's error ("invalid_token" or ""); static
  std::chrono::seconds retry_after{0};  // for kThrottled
};

// Thread-safe: the parts are.
class Authenticator {
 public:
  explicit Authenticator(AuthenticatorParts parts) : parts_(std::move(parts)) {}

  // Identity only (for the token endpoint and for catalog filtering): kAllow with the caller,
  // or kUnauthorized / kThrottled.
  Decision Identify(const AuthRequest& request) const;
  // Identity, then permission for request.action on request.repository.
  Decision Authorize(const AuthRequest& request) const;
  // Whether an identified caller may do `action` on `repository` (rules above).
  bool Allowed(const Caller& caller, std::string_view repository, Action action) const;
  // The `access` claim of a token for `caller` asking for `scopes`: the policy's grant
  // (GrantedAccess), or without a policy every requested repository action for an
  // authenticated caller and nothing for an anonymous one. A "registry:catalog:*" scope is
  // kept for any caller (the catalog lists only what the caller may pull anyway).
  std::vector<AccessEntry> Grant(const Caller& caller, const std::vector<Scope>& scopes) const;
  // Whether the caller may see `repository` in the catalog: pull by the rules above, or, for a
  // Bearer caller whose token grants "registry:catalog:*", pull by the policy for its subject.
  bool MayList(const Caller& caller, std::string_view repository) const;
  // Whether the caller may pull some repository (any name a rule or its token grants pull on):
  // who may see the status page's repository section at all.
  bool MayPullSomewhere(const Caller& caller) const;
  // The WWW-Authenticate value that asks for credentials for `request` (its scopes), naming
  // `token_error` (a Decision's) in a Bearer challenge when not empty.
  std::string Challenge(const AuthRequest& request, std::string_view token_error = "") const;
  // True when nothing is configured: the gateway is open (it logs so at start).
  bool open() const { return !parts_.htpasswd && !parts_.tokens && !parts_.policy; }
  const AuthenticatorParts& parts() const { return parts_; }

 private:
  Decision Refuse(const AuthRequest& request, std::string failure, std::string detail,
                  std::string_view token_error) const;
  Decision FromBasic(const AuthRequest& request) const;
  Decision FromBearer(const AuthRequest& request) const;

  const AuthenticatorParts parts_;
};

}  // namespace wharf::auth

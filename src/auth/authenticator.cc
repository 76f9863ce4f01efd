#include "auth/authenticator.h"

#include <algorithm>

#include "auth/base64.h"
#include "auth/credentials.h"
#include "auth/grant.h"

namespace wharf::auth {
namespace {

// containers/image (podman, skopeo, buildah) answers a Basic challenge it has no credentials
// for with "Basic Og==", an empty user and password: that is an anonymous caller, not a failed
// login (else anonymous pulls could never work behind a Basic challenge).
bool EmptyBasic(std::string_view authorization) {
  if (SchemeOf(authorization) != AuthScheme::kBasic || authorization.size() > 64) return false;
  std::string_view rest = authorization.substr(5);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  auto decoded = Base64Decode(rest, 8);
  return decoded && *decoded == ":";
}

}  // namespace

std::string Authenticator::Challenge(const AuthRequest& request,
                                     std::string_view token_error) const {
  if (!parts_.token_realm.empty()) {
    return BearerChallenge(parts_.token_realm, parts_.service, request.scopes, token_error);
  }
  if (parts_.bearer && !request.token_realm.empty()) {
    return BearerChallenge(request.token_realm, parts_.service, request.scopes, token_error);
  }
  return BasicChallenge(parts_.basic_realm);
}

Decision Authenticator::Refuse(const AuthRequest& request, std::string failure, std::string detail,
                               std::string_view token_error) const {
  if (parts_.throttle) parts_.throttle->RecordFailure(request.remote);
  Decision d;
  d.verdict = Verdict::kUnauthorized;
  if (request.challenge) d.challenge = Challenge(request, token_error);
  d.token_error = token_error;
  d.failure = std::move(failure);
  d.failure_detail = std::move(detail);
  return d;
}

Decision Authenticator::FromBasic(const AuthRequest& request) const {
  auto creds = ParseBasicAuthorization(request.authorization);
  if (!creds) return Refuse(request, "malformed", creds.error().message(), "");
  std::shared_ptr<const Htpasswd> users = parts_.htpasswd ? parts_.htpasswd->Current() : nullptr;
  if (!users) return Refuse(request, "unknown_user", "no htpasswd users: user=" + creds->user, "");
  bool known = users->HasUser(creds->user);
  if (!users->Verify(creds->user, creds->password)) {
    return Refuse(request, known ? "bad_password" : "unknown_user", "user=" + creds->user, "");
  }
  if (parts_.throttle) parts_.throttle->RecordSuccess(request.remote);
  Decision d;
  d.verdict = Verdict::kAllow;
  d.caller.principal = Principal::User(std::move(creds->user));
  return d;
}

Decision Authenticator::FromBearer(const AuthRequest& request) const {
  auto token = BearerTokenOf(request.authorization);
  if (!token) return Refuse(request, "malformed", token.error().message(), "invalid_token");
  // The verifier (a hash lookup for a token seen before) runs before the character check: a
  // token it accepts is a JWS (base64url and dots), and checking several hundred characters on
  // every request cost more than the lookup. The check only names why a token was refused.
  using Claims = Result<std::shared_ptr<const TokenClaims>>;
  Claims claims = parts_.tokens ? parts_.tokens->Verify(*token)
                                : Claims(Err(InvalidArgument("tokens not accepted")));
  if (!claims) {
    if (!IsBearerToken68(*token)) {
      return Refuse(request, "malformed", "Bearer token malformed", "invalid_token");
    }
    return Refuse(request, "bad_token", claims.error().message(), "invalid_token");
  }
  Decision d;
  d.verdict = Verdict::kAllow;
  d.caller.principal = Principal::User((*claims)->subject);
  d.caller.token = std::move(*claims);
  return d;
}

Decision Authenticator::Identify(const AuthRequest& request) const {
  Decision d;
  if (request.authorization.empty() || EmptyBasic(request.authorization)) {
    d.verdict = Verdict::kAllow;
    if (!request.cert_subject.empty()) {
      d.caller.principal = Principal::User("cert:" + std::string(request.cert_subject));
    }
    return d;
  }
  if (parts_.throttle) {
    if (auto wait = parts_.throttle->RetryAfter(request.remote)) {
      d.verdict = Verdict::kThrottled;
      d.retry_after = *wait;
      d.failure = "throttled";
      return d;
    }
  }
  switch (SchemeOf(request.authorization)) {
    case AuthScheme::kBasic:
      return FromBasic(request);
    case AuthScheme::kBearer:
      return FromBearer(request);
    default:
      return Refuse(request, "unsupported_scheme", "", "");
  }
}

bool Authenticator::Allowed(const Caller& caller, std::string_view repository,
                            Action action) const {
  if (open()) return true;
  if (caller.token && !IsGlobalAction(action)) {
    return Grants(caller.token->access, "repository", repository, ActionName(action));
  }
  std::shared_ptr<const AccessPolicy> policy = parts_.policy ? parts_.policy->Current() : nullptr;
  if (policy) return policy->Allowed(caller.principal, repository, action);
  return !caller.principal.anonymous();
}

std::vector<AccessEntry> Authenticator::Grant(const Caller& caller,
                                              const std::vector<Scope>& scopes) const {
  std::shared_ptr<const AccessPolicy> policy = parts_.policy ? parts_.policy->Current() : nullptr;
  std::vector<AccessEntry> out;
  if (policy) {
    out = GrantedAccess(*policy, caller.principal, scopes);
  } else if (!caller.principal.anonymous()) {
    for (const Scope& scope : scopes) {
      if (scope.type != "repository") continue;
      AccessEntry entry{scope.type, scope.name, {}};
      for (const std::string& a : scope.actions) {
        std::vector<std::string> names{a};
        if (a == "*") names = {"pull", "push", "delete"};
        for (std::string& n : names) {
          auto parsed = ParseAction(n);
          if (!parsed || IsGlobalAction(*parsed)) continue;
          if (std::find(entry.actions.begin(), entry.actions.end(), n) == entry.actions.end()) {
            entry.actions.push_back(std::move(n));
          }
        }
      }
      if (!entry.actions.empty()) out.push_back(std::move(entry));
    }
  }
  for (const Scope& scope : scopes) {
    if (scope.type == "registry" && scope.name == "catalog" &&
        std::find(scope.actions.begin(), scope.actions.end(), "*") != scope.actions.end()) {
      out.push_back(AccessEntry{"registry", "catalog", {"*"}});
      break;
    }
  }
  return out;
}

bool Authenticator::MayList(const Caller& caller, std::string_view repository) const {
  if (Allowed(caller, repository, Action::kPull)) return true;
  if (!caller.token || !Grants(caller.token->access, "registry", "catalog", "*")) return false;
  Caller as_subject;
  as_subject.principal = caller.principal;
  return Allowed(as_subject, repository, Action::kPull);
}

bool Authenticator::MayPullSomewhere(const Caller& caller) const {
  if (open()) return true;
  if (caller.token) {
    for (const AccessEntry& e : caller.token->access) {
      if (e.type == "registry" && e.name == "catalog") return true;  // MayList's rule
      if (e.type == "repository" &&
          std::find(e.actions.begin(), e.actions.end(), "pull") != e.actions.end()) {
        return true;
      }
    }
    return false;
  }
  std::shared_ptr<const AccessPolicy> policy = parts_.policy ? parts_.policy->Current() : nullptr;
  if (policy) return policy->GrantsAnywhere(caller.principal, Action::kPull);
  return !caller.principal.anonymous();
}

Decision Authenticator::Authorize(const AuthRequest& request) const {
  Decision d = Identify(request);
  if (d.verdict != Verdict::kAllow) return d;
  if (Allowed(d.caller, request.repository, request.action)) return d;
  if (d.caller.principal.anonymous()) {
    d.verdict = Verdict::kUnauthorized;
    if (request.challenge) d.challenge = Challenge(request, "");
  } else {
    d.verdict = Verdict::kDenied;
  }
  return d;
}

}  // namespace wharf::auth

#include "auth/authenticator.h"

#include "auth/credentials.h"

namespace wharf::auth {
std::string Authenticator::Challenge(const AuthRequest& request,
                                     std::string_view token_error) const {
  if (parts_.token_realm.empty()) return BasicChallenge(parts_.basic_realm);
  return BearerChallenge(parts_.token_realm, parts_.service, request.scopes, token_error);
}

Decision Authenticator::Refuse(const AuthRequest& request, std::string failure, std::string detail,
                               std::string_view token_error) const {
  if (parts_.throttle) parts_.throttle->RecordFailure(request.remote);
  Decision d;
  d.verdict = Verdict::kUnauthorized;
  d.challenge = Challenge(request, token_error);
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
  auto token = ParseBearerAuthorization(request.authorization);
  if (!token) return Refuse(request, "malformed", token.error().message(), "invalid_token");
  if (!parts_.tokens) return Refuse(request, "bad_token", "tokens not accepted", "invalid_token");
  auto claims = parts_.tokens->Verify(*token);
  if (!claims) return Refuse(request, "bad_token", claims.error().message(), "invalid_token");
  Decision d;
  d.verdict = Verdict::kAllow;
  d.caller.principal = Principal::User((*claims)->subject);
  d.caller.token = std::move(*claims);
  return d;
}

Decision Authenticator::Identify(const AuthRequest& request) const {
  Decision d;
  if (request.authorization.empty()) {
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
  if (caller.token && !IsFileAction(action)) {
    return Grants(caller.token->access, "repository", repository, ActionName(action));
  }
  std::shared_ptr<const AccessPolicy> policy = parts_.policy ? parts_.policy->Current() : nullptr;
  if (policy) return policy->Allowed(caller.principal, repository, action);
  return !caller.principal.anonymous();
}

Decision Authenticator::Authorize(const AuthRequest& request) const {
  Decision d = Identify(request);
  if (d.verdict != Verdict::kAllow) return d;
  if (Allowed(d.caller, request.repository, request.action)) return d;
  if (d.caller.principal.anonymous()) {
    d.verdict = Verdict::kUnauthorized;
    d.challenge = Challenge(request, "");
  } else {
    d.verdict = Verdict::kDenied;
  }
  return d;
}

}  // namespace wharf::auth

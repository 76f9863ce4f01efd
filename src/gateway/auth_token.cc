#include "gateway/auth_token.h"

#include "auth/credentials.h"
#include "common/log.h"
#include "common/metrics.h"
#include "gateway/auth_filter.h"
#include "gateway/registry_internal.h"

namespace wharf {
namespace {

awaitable<void> Refuse(const GatewayAuth& auth, Exchange& ex, const auth::Decision& d) {
  static Logger log = GetLogger("gateway");
  if (!d.failure.empty()) {
    AuthFailureCounter(d.failure).Inc();
    log->warn("auth failure reason={} remote={} route=token request_id={} {}", d.failure,
              RemoteAddress(ex.remote()), ex.request_id(), d.failure_detail);
  }
  if (d.verdict == auth::Verdict::kThrottled) {
    ex.AddHeader("Retry-After", std::to_string(d.retry_after.count()));
    co_await registry::SendError(ex, OciError::kTooManyRequests,
                                 "too many failed logins from this address; retry later");
    co_return;
  }
  ex.AddHeader("WWW-Authenticate", auth::BasicChallenge(auth.authenticator().parts().basic_realm));
  co_await registry::SendError(ex, OciError::kUnauthorized,
                               "authentication failed: invalid credentials");
}

}  // namespace

std::vector<std::string> QueryValues(std::string_view query, std::string_view key) {
  std::vector<std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq)) != key) continue;
    out.push_back(eq == std::string_view::npos ? std::string()
                                               : PercentDecode(pair.substr(eq + 1)));
  }
  return out;
}

awaitable<void> HandleToken(const GatewayAuth& auth, Exchange& ex) {
  static auto& issued = Metrics().Counter("wharf_gateway_tokens_issued_total", "Tokens issued.");
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) {
    ex.AddHeader("Allow", "GET, HEAD");
    co_await registry::SendError(ex, OciError::kUnsupported, "use GET /v2/token");
    co_return;
  }
  std::vector<std::string> service = QueryValues(ex.query_string(), "service");
  if (!service.empty() && service.front() != auth.service()) {
    co_await registry::SendError(ex, OciError::kDenied,
                                 "this token server serves service " + auth.service(), {}, 400);
    co_return;
  }
  std::vector<std::string> scope_values = QueryValues(ex.query_string(), "scope");
  std::vector<std::string_view> views(scope_values.begin(), scope_values.end());
  auto scopes = auth::ParseScopes(views);
  if (!scopes) {
    co_await registry::SendError(ex, OciError::kDenied, "bad scope: " + scopes.error().message(),
                                 {}, 400);
    co_return;
  }
  std::string_view authorization = ex.header(http::field::authorization);
  auth::AuthRequest r;
  r.authorization = authorization;
  r.remote = RemoteAddress(ex.remote());
  auth::Decision d;
  if (!authorization.empty() && auth::SchemeOf(authorization) != auth::AuthScheme::kBasic) {
    d.verdict = auth::Verdict::kUnauthorized;
    d.failure = "unsupported_scheme";
    d.failure_detail = "the token endpoint takes Basic credentials";
  } else {
    d = auth.authenticator().Identify(r);
  }
  if (d.verdict != auth::Verdict::kAllow) {
    co_await Refuse(auth, ex, d);
    co_return;
  }
  std::vector<std::string> account = QueryValues(ex.query_string(), "account");
  if (!account.empty() && !account.front().empty() && account.front() != d.caller.principal.name) {
    d.verdict = auth::Verdict::kUnauthorized;
    d.failure = "account_mismatch";
    d.failure_detail = "account=" + account.front() + " user=" + d.caller.principal.name;
    co_await Refuse(auth, ex, d);
    co_return;
  }
  std::vector<auth::AccessEntry> access = auth.authenticator().Grant(d.caller, *scopes);
  auto token = auth.issuer()->Issue(d.caller.principal.name, auth.service(), access);
  if (!token) {
    co_await registry::SendError(ex, OciError::kInternal, token.error().message());
    co_return;
  }
  issued.Inc();
  if (!d.caller.principal.anonymous()) ex.context().principal = Principal{d.caller.principal.name};
  (void)co_await ex.Respond(http::status::ok, token->ResponseJson());
}

}  // namespace wharf

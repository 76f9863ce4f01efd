#include "gateway/auth_filter.h"

#include "common/log.h"
#include "common/log_throttle.h"
#include "common/metrics.h"
#include "gateway/registry_internal.h"
#include "registry/names.h"
#include "registry/route.h"

namespace wharf {
namespace {

using auth::Action;
using auth::Scope;
using auth::Verdict;

Scope RepositoryScope(const std::string& name, Action action) {
  Scope s{"repository", "", name, {}};
  switch (action) {
    case Action::kPull:
      s.actions = {"pull"};
      break;
    case Action::kPush:
      s.actions = {"pull", "push"};  // what clients ask for before a push
      break;
    default:
      s.actions = {std::string(auth::ActionName(action))};
      break;
  }
  return s;
}

RequiredAccess Repository(std::string_view name, Action action) {
  RequiredAccess need;
  need.kind = RequiredAccess::Kind::kRepository;
  need.repository = std::string(name);
  need.action = action;
  return need;
}

bool IsRead(http::verb method) { return method == http::verb::get || method == http::verb::head; }

// Reads need pull; DELETE needs delete; anything else needs push (PUT, and methods the
// handlers answer 405 for, so that an anonymous caller learns nothing from the 405).
Action ContentAction(http::verb method) {
  if (IsRead(method)) return Action::kPull;
  if (method == http::verb::delete_) return Action::kDelete;
  return Action::kPush;
}

RequiredAccess ForRegistry(http::verb method, std::string_view path, std::string_view from) {
  auto route = ParseRouteView(path);
  if (!route) return {};  // the handler answers 404 / NAME_INVALID: nothing to protect
  RequiredAccess need;
  switch (route->kind) {
    case RouteKind::kBase:
      need.kind = RequiredAccess::Kind::kIdentity;
      return need;
    case RouteKind::kCatalog:
      need.kind = RequiredAccess::Kind::kCatalog;
      return need;
    case RouteKind::kTagsList:
    case RouteKind::kReferrers:
      return Repository(route->name, Action::kPull);
    case RouteKind::kManifest:
    case RouteKind::kBlob:
      return Repository(route->name, ContentAction(method));
    case RouteKind::kUploadStart:
      need = Repository(route->name, Action::kPush);
      if (!from.empty() && ValidRepositoryName(from) && from != need.repository) {
        need.mount_from = std::string(from);
      }
      return need;
    case RouteKind::kUpload:
      return Repository(route->name, Action::kPush);
  }
  return need;
}

RequiredAccess ForFiles(http::verb method, std::string_view path) {
  RequiredAccess need;
  need.kind = RequiredAccess::Kind::kFiles;
  bool collection = path == "/files" || path == "/files/";
  if (!collection && IsRead(method)) {
    need.action = Action::kFilesRead;
  } else if (!collection && method == http::verb::delete_) {
    need.action = Action::kFilesDelete;
  } else {
    need.action = Action::kFilesWrite;
  }
  return need;
}

}  // namespace

CounterMetric& AuthFailureCounter(const std::string& reason) {
  return Metrics().Counter("wharf_gateway_auth_failures_total",
                           "Requests refused for their credentials (bad_password, unknown_user, "
                           "malformed, bad_token, unsupported_scheme, account_mismatch), "
                           "throttled, or denied.",
                           {{"reason", reason}});
}

bool IsWrite(http::verb method) { return !IsRead(method) && method != http::verb::options; }

RequiredAccess RequiredAccessFor(std::string_view route, http::verb method, std::string_view path,
                                 std::string_view from) {
  if (route == "registry") return ForRegistry(method, path, from);
  if (route == "files") return ForFiles(method, path);
  if (route == "ui") {
    RequiredAccess need;
    need.kind = RequiredAccess::Kind::kStatusPage;
    return need;
  }
  if (route == "admin") {
    RequiredAccess need;
    need.kind = RequiredAccess::Kind::kAdmin;
    need.action = Action::kAdmin;
    return need;
  }
  return {};
}

std::vector<Scope> ChallengeScopes(const RequiredAccess& need) {
  switch (need.kind) {
    case RequiredAccess::Kind::kCatalog:
    case RequiredAccess::Kind::kStatusPage:
      return {Scope{"registry", "", "catalog", {"*"}}};
    case RequiredAccess::Kind::kRepository: {
      std::vector<Scope> scopes{RepositoryScope(need.repository, need.action)};
      if (!need.mount_from.empty()) {
        scopes.push_back(RepositoryScope(need.mount_from, Action::kPull));
      }
      return scopes;
    }
    default:
      return {};
  }
}

std::string_view RemoteAddress(std::string_view remote) {
  if (remote.starts_with('[')) {
    size_t close = remote.find(']');
    return close == std::string_view::npos ? remote : remote.substr(1, close - 1);
  }
  size_t colon = remote.rfind(':');
  return colon == std::string_view::npos ? remote : remote.substr(0, colon);
}

AuthAnswer DecideAccess(const auth::Authenticator& auth, const RequiredAccess& need,
                        std::string_view authorization, std::string_view remote,
                        std::string_view base_url, std::string_view cert_subject) {
  return DecideAccess(
      auth, need, authorization, remote, [base_url] { return std::string(base_url); },
      cert_subject);
}

AuthAnswer DecideAccess(const auth::Authenticator& auth, const RequiredAccess& need,
                        std::string_view authorization, std::string_view remote,
                        const std::function<std::string()>& base_url,
                        std::string_view cert_subject) {
  AuthAnswer a;
  if (need.kind == RequiredAccess::Kind::kNone) {
    a.proceed = true;
    a.decision.verdict = Verdict::kAllow;
    return a;
  }
  auth::AuthRequest r;
  r.authorization = authorization;
  r.remote = remote;
  r.cert_subject = cert_subject;
  r.repository = need.repository;
  r.action = need.action;
  r.challenge = false;  // built below, only for a refusal
  switch (need.kind) {
    case RequiredAccess::Kind::kIdentity:
      a.decision = auth.Identify(r);
      if (a.decision.verdict == Verdict::kAllow && a.decision.caller.principal.anonymous()) {
        a.decision.verdict = Verdict::kUnauthorized;
      }
      break;
    case RequiredAccess::Kind::kCatalog:
      a.decision = auth.Identify(r);
      break;
    case RequiredAccess::Kind::kStatusPage:
      a.decision = auth.Identify(r);
      if (a.decision.verdict == Verdict::kAllow && a.decision.caller.principal.anonymous() &&
          !auth.MayPullSomewhere(a.decision.caller)) {
        a.decision.verdict = Verdict::kUnauthorized;
      }
      break;
    default:
      a.decision = auth.Authorize(r);
      break;
  }
  if (a.decision.verdict == Verdict::kUnauthorized) {
    std::string realm = base_url() + "/v2/token";
    r.scopes = ChallengeScopes(need);
    r.token_realm = realm;
    a.decision.challenge = auth.Challenge(r, a.decision.token_error);
  }
  switch (a.decision.verdict) {
    case Verdict::kAllow:
      a.proceed = true;
      break;
    case Verdict::kUnauthorized:
      a.status = 401;
      a.error = OciError::kUnauthorized;
      a.message = a.decision.failure.empty() ? "authentication required"
                                             : "authentication failed: invalid credentials";
      a.headers.emplace_back("WWW-Authenticate", a.decision.challenge);
      break;
    case Verdict::kDenied:
      a.status = 403;
      a.error = OciError::kDenied;
      a.message = "requested access to the resource is denied: " +
                  std::string(auth::ActionName(need.action)) +
                  (need.repository.empty() ? std::string() : " on " + need.repository);
      break;
    case Verdict::kThrottled:
      a.status = 429;
      a.error = OciError::kTooManyRequests;
      a.message = "too many failed logins from this address; retry later";
      a.headers.emplace_back("Retry-After", std::to_string(a.decision.retry_after.count()));
      break;
  }
  return a;
}

awaitable<Filter::Result> ReadOnlyFilter::OnRequest(Exchange& ex) {
  const std::string& route = ex.context().route;
  if ((route != "registry" && route != "files") || !IsWrite(ex.method())) {
    co_return Result::kContinue;
  }
  static auto& refused = Metrics().Counter("wharf_gateway_read_only_refused_total",
                                           "Writes refused because the gateway is read-only.");
  refused.Inc();
  if (route == "registry") ex.AddHeader("Docker-Distribution-API-Version", "registry/2.0");
  ex.AddHeader("Allow", "GET, HEAD");
  co_await registry::SendError(ex, OciError::kUnsupported,
                               "the registry is read-only (maintenance): writes are refused, "
                               "reads go on");
  co_return Result::kStop;
}

awaitable<Filter::Result> AuthFilter::OnRequest(Exchange& ex) {
  static Logger log = GetLogger("gateway");
  static LogThrottle throttled_log;
  const std::string& route = ex.context().route;
  std::string from;
  if (route == "registry" && ex.method() == http::verb::post && ex.query("mount")) {
    from = ex.query("from").value_or("");
  }
  RequiredAccess need = RequiredAccessFor(route, ex.method(), ex.path(), from);
  if (need.kind == RequiredAccess::Kind::kNone) co_return Result::kContinue;
  std::string_view remote = RemoteAddress(ex.remote());
  auto base_url = [this, &ex] { return urls_->BaseFor(ex); };
  AuthAnswer a = DecideAccess(auth_->authenticator(), need, ex.header(http::field::authorization),
                              remote, base_url, ex.context().tls_client_subject);
  const auth::Decision& d = a.decision;
  if (!d.failure.empty()) {
    AuthFailureCounter(d.failure).Inc();
    bool log_it = true;
    std::string held;
    if (d.failure == "throttled") {
      auto n = throttled_log.Admit();
      log_it = n.has_value();
      if (n && *n > 0) held = " held_back=" + std::to_string(*n);
    }
    if (log_it) {
      log->warn("auth failure reason={} remote={} route={} path={} request_id={} {}{}", d.failure,
                remote, route, ex.path(), ex.request_id(), d.failure_detail, held);
    }
  } else if (d.verdict == Verdict::kDenied) {
    AuthFailureCounter("denied").Inc();
    log->info("access denied remote={} user={} action={} repository={} request_id={}", remote,
              d.caller.principal.name, auth::ActionName(need.action), need.repository,
              ex.request_id());
  }
  if (!d.caller.principal.anonymous()) ex.context().principal = Principal{d.caller.principal.name};
  if (a.proceed) {
    auth_->Remember(ex, std::move(a.decision.caller));
    co_return Result::kContinue;
  }
  if (route == "registry") ex.AddHeader("Docker-Distribution-API-Version", "registry/2.0");
  for (auto& [name, value] : a.headers) ex.AddHeader(name, value);
  co_await registry::SendError(ex, a.error, a.message, nlohmann::json(), a.status);
  co_return Result::kStop;
}

}  // namespace wharf

#include "gateway/auth_config.h"

#include "common/log.h"
#include "http/server.h"

namespace wharf {
namespace {

Status FlagError(std::string_view flag, const std::string& value, const Status& st) {
  std::string msg = std::string(flag) + " " + value + ": " + st.message();
  // The ReloadingFile's message already starts with the path.
  if (st.message().starts_with(value + ": ")) msg = std::string(flag) + " " + st.message();
  return Status(st.code() == Code::kNotFound ? Code::kInvalidArgument : st.code(), msg);
}

// "[KID=]FILE" of --token-public-key.
Result<auth::JwsKey> LoadPublicKey(const std::string& spec) {
  std::string kid, path = spec;
  if (size_t eq = spec.find('='); eq != std::string::npos && spec.find('/') > eq) {
    kid = spec.substr(0, eq);
    path = spec.substr(eq + 1);
  }
  auto key = auth::LoadJwsKeyFile(path, kid);
  if (!key) return Err(FlagError("--token-public-key", path, key.error()));
  return key;
}

}  // namespace

Result<std::unique_ptr<GatewayAuth>> GatewayAuth::Load(const GatewayAuthOptions& options) {
  std::unique_ptr<GatewayAuth> g(new GatewayAuth());
  g->options_ = options;
  auth::AuthenticatorParts parts;
  if (!options.htpasswd.empty()) {
    g->htpasswd_ = std::make_shared<auth::HtpasswdFile>(options.htpasswd, &auth::Htpasswd::Parse);
    if (Status st = g->htpasswd_->Load(); !st.ok()) {
      return Err(FlagError("--htpasswd", options.htpasswd, st));
    }
    if (g->htpasswd_->Current()->size() == 0) {
      return Err(InvalidArgument("--htpasswd " + options.htpasswd + ": no users in the file"));
    }
    parts.htpasswd = g->htpasswd_;
  }
  if (!options.access.empty()) {
    g->policy_ =
        std::make_shared<auth::AccessPolicyFile>(options.access, &auth::AccessPolicy::Parse);
    if (Status st = g->policy_->Load(); !st.ok()) {
      return Err(FlagError("--access", options.access, st));
    }
    parts.policy = g->policy_;
  }
  const bool issuing = !options.token_key.empty();
  const bool external = !options.token_public_keys.empty();
  if (options.token_ttl < std::chrono::seconds(10) || options.token_ttl > std::chrono::hours(24)) {
    return Err(InvalidArgument("--token-ttl must be between 10s and 24h"));
  }
  if (external && (options.token_issuer.empty() || options.token_service.empty())) {
    return Err(InvalidArgument("--token-public-key needs --token-issuer and --token-service"));
  }
  if (external && !issuing && options.realm.empty()) {
    return Err(InvalidArgument(
        "--token-public-key without --token-key needs --auth-realm (the token service's URL)"));
  }
  if (!issuing && !external && (!options.token_issuer.empty() || !options.token_service.empty())) {
    return Err(
        InvalidArgument("--token-issuer/--token-service need --token-key or "
                        "--token-public-key"));
  }
  g->service_ = options.token_service.empty() ? "wharf" : options.token_service;
  if (issuing || external) {
    std::vector<auth::JwsKey> keys;
    std::string issuer_name = options.token_issuer.empty() ? "wharf" : options.token_issuer;
    if (issuing) {
      auto key = auth::LoadJwsKeyFile(options.token_key);
      if (!key) return Err(FlagError("--token-key", options.token_key, key.error()));
      auto verify_key = auth::LoadJwsKeyFile(options.token_key);
      if (!verify_key) return Err(FlagError("--token-key", options.token_key, verify_key.error()));
      auth::IssuerOptions io;
      io.issuer = issuer_name;
      io.ttl = options.token_ttl;
      auto issuer = auth::TokenIssuer::Create(io, std::move(*key));
      if (!issuer) return Err(FlagError("--token-key", options.token_key, issuer.error()));
      g->issuer_ = std::move(*issuer);
      keys.push_back(std::move(*verify_key));
    }
    for (const std::string& spec : options.token_public_keys) {
      WHARF_ASSIGN_OR_RETURN(auth::JwsKey key, LoadPublicKey(spec));
      keys.push_back(std::move(key));
    }
    auth::VerifierOptions vo;
    vo.issuer = issuer_name;
    vo.service = g->service_;
    auto verifier = auth::TokenVerifier::Create(vo, std::move(keys));
    if (!verifier) return Err(InvalidArgument("--token-public-key: " + verifier.error().message()));
    parts.tokens = std::shared_ptr<auth::TokenVerifier>(std::move(*verifier));
    parts.bearer = true;
    parts.token_realm = options.realm;  // empty: each request names this gateway's /v2/token
  } else if (!options.realm.empty()) {
    parts.basic_realm = options.realm;
  }
  parts.service = g->service_;
  auth::ThrottleOptions to;
  to.max_failures = options.max_login_failures;
  parts.throttle = std::make_shared<auth::LoginThrottle>(to);
  g->authenticator_ = std::make_unique<auth::Authenticator>(std::move(parts));
  return g;
}

void GatewayAuth::ReloadChangedFiles() {
  static Logger log = GetLogger("gateway");
  if (htpasswd_) {
    auto r = htpasswd_->ReloadIfChanged();
    if (!r) {
      log->warn("htpasswd reload failed, keeping the last good one err={}", r.error());
    } else if (*r) {
      log->info("htpasswd reloaded file={} users={}", htpasswd_->path(),
                htpasswd_->Current()->size());
    }
  }
  if (policy_) {
    auto r = policy_->ReloadIfChanged();
    if (!r) {
      log->warn("access policy reload failed, keeping the last good one err={}", r.error());
    } else if (*r) {
      log->info("access policy reloaded file={}", policy_->path());
    }
  }
}

std::shared_ptr<const auth::Caller> GatewayAuth::CallerOf(const Exchange& ex) const {
  return std::static_pointer_cast<const auth::Caller>(ex.context().auth_caller);
}

void GatewayAuth::Remember(Exchange& ex, auth::Caller caller) {
  ex.context().auth_caller = std::make_shared<const auth::Caller>(std::move(caller));
}

}  // namespace wharf

#include "cli/gateway_flags.h"

#include "common/units.h"

namespace wharf::cli {

void AddGatewayAuthFlags(CLI::App& app, GatewayAuthOptions* o, std::string* ttl) {
  app.add_option("--htpasswd", o->htpasswd,
                 "users and bcrypt hashes (htpasswd -B); Basic auth; re-read on change");
  app.add_option("--access", o->access,
                 "access policy (YAML): who may pull/push/delete what; re-read on change");
  app.add_option("--token-key", o->token_key,
                 "private key (PEM, P-256 or RSA): issue Bearer tokens at /v2/token");
  app.add_option("--token-public-key", o->token_public_keys,
                 "[KID=]FILE: accept tokens signed by this key (repeatable)");
  app.add_option("--token-issuer", o->token_issuer, "iss of tokens made and accepted (wharf)");
  app.add_option("--token-service", o->token_service,
                 "audience of tokens, the challenges' service (wharf)");
  app.add_option("--token-ttl", *ttl, "lifetime of issued tokens")->capture_default_str();
  app.add_option("--auth-realm", o->realm,
                 "Basic realm, or with tokens the token service's URL "
                 "(default: this gateway's /v2/token)");
  app.add_flag("--read-only", o->read_only, "maintenance: every write answers 405, reads go on");
  app.add_option("--max-login-failures", o->max_login_failures,
                 "failed logins per minute from one address before 429")
      ->capture_default_str();
}

void AddGatewayUrlFlags(CLI::App& app, GatewayUrlFlags* f) {
  app.add_option("--public-url", f->public_url,
                 "base of the absolute URLs sent to clients, e.g. https://registry.example.com");
  app.add_option("--trusted-proxy", f->trusted_proxies,
                 "address or network whose X-Forwarded-Proto/Host are believed (repeatable)");
  app.add_flag("--refuse-foreign-layers", f->refuse_foreign_layers,
               "refuse manifests whose foreign (non-distributable) layers were not pushed here");
}

Status FinishGatewayAuthFlags(const std::string& ttl, GatewayAuthOptions* o) {
  auto d = ParseDuration(ttl);
  if (!d) return InvalidArgument("--token-ttl: " + d.error().message());
  o->token_ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
  if (o->max_login_failures < 1) return InvalidArgument("--max-login-failures must be at least 1");
  return Status::Ok();
}

Result<std::chrono::milliseconds> ParseMemberTimeout(const std::string& text) {
  auto d = ParseDuration(text);
  if (!d || d->count() < 100 || d->count() > 600'000) {
    return Err(
        InvalidArgument("--member-timeout: want a duration from 100ms to 10m, got '" + text + "'"));
  }
  return *d;
}

}  // namespace wharf::cli

// Access control of the gateway as configured by its flags: the files and keys behind
// --htpasswd, --access, --token-*, loaded and checked once at start (a bad file stops the
// gateway with one line), then re-read on change by the gateway's reload loop.
//
//   GatewayAuthOptions o;  o.htpasswd = "/etc/wharf/htpasswd";  o.access = "access.yaml";
//   Result<std::unique_ptr<GatewayAuth>> auth = GatewayAuth::Load(o);
//   if (!auth) ... "--htpasswd /etc/wharf/htpasswd: line 2 user bob: not bcrypt ..." ...
//   (*auth)->authenticator().Authorize(...);
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "common/status.h"

namespace wharf {

class Exchange;

struct GatewayAuthOptions {
  std::string htpasswd;   // --htpasswd FILE (bcrypt only)
  std::string access;     // --access FILE (YAML access policy)
  std::string token_key;  // --token-key FILE: a private key; the gateway issues tokens
  // --token-public-key [KID=]FILE (repeatable): keys of an external issuer whose tokens are
  // accepted; without KID the key's libtrust id is its kid.
  std::vector<std::string> token_public_keys;
  std::string token_issuer;   // --token-issuer NAME: `iss` of tokens made and accepted
  std::string token_service;  // --token-service NAME: their audience, the challenge's service
  std::chrono::seconds token_ttl{300};  // --token-ttl
  // --auth-realm: the Basic realm ("wharf"), or with tokens the token service's URL (default
  // "http://<Host of the request>/v2/token" when the gateway issues tokens).
  std::string realm;
  bool read_only = false;  // --read-only: every write answers 405 UNSUPPORTED
  // Failed logins one remote address may make per minute before it gets 429.
  uint32_t max_login_failures = 10;

  // True when any flag that identifies callers or restricts them is given (read_only aside).
  bool enabled() const {
    return !htpasswd.empty() || !access.empty() || !token_key.empty() || !token_public_keys.empty();
  }
};

// Thread-safe. Owned by the Gateway; lives as long as its router.
class GatewayAuth {
 public:
  // Loads and checks every configured file. kInvalidArgument (or the file's error) naming the
  // flag and the file: a missing or unreadable file, a non-bcrypt htpasswd entry, a policy
  // error, a key that is not P-256 or RSA >= 2048, --token-public-key without --token-issuer
  // and --token-service, external tokens without --auth-realm.
  static Result<std::unique_ptr<GatewayAuth>> Load(const GatewayAuthOptions& options);

  const auth::Authenticator& authenticator() const { return *authenticator_; }
  // The gateway's own issuer (--token-key), or null.
  const auth::TokenIssuer* issuer() const { return issuer_.get(); }
  const GatewayAuthOptions& options() const { return options_; }
  const std::string& service() const { return service_; }
  // Re-reads the htpasswd and policy files when they changed (blocking: run it off the event
  // loop). A file that became bad is logged once and the last good content kept.
  void ReloadChangedFiles();

  // The caller the auth filter identified for an exchange still being served (null when the
  // filter did not run for it, e.g. on an open gateway). Handlers that filter what they show
  // (the catalog, a mount) ask for it.
  std::shared_ptr<const auth::Caller> CallerOf(const Exchange& ex) const;
  // Records the caller of `ex` in its context, for as long as the exchange lives (the filter
  // calls it).
  void Remember(Exchange& ex, auth::Caller caller);

 private:
  GatewayAuth() = default;
  GatewayAuthOptions options_;
  std::string service_;
  std::shared_ptr<auth::HtpasswdFile> htpasswd_;
  std::shared_ptr<auth::AccessPolicyFile> policy_;
  std::unique_ptr<auth::TokenIssuer> issuer_;
  std::unique_ptr<auth::Authenticator> authenticator_;
};

}  // namespace wharf

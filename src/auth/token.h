// Bearer tokens of the Docker token spec (distribution's docs/spec/auth/jwt.md): compact JWS
//
//   base64url(header) "." base64url(claims) "." base64url(signature)
//   header: {"typ":"JWT","alg":"ES256"|"RS256","kid":"<key id>"}
//   claims: {"iss":"<issuer>","sub":"<user>","aud":"<service>" (or an array),
//            "exp":<unix s>,"nbf":<unix s>,"iat":<unix s>,"jti":"<random>",
//            "access":[{"type":"repository","name":"team/app","actions":["pull","push"]}]}
//
// TokenVerifier accepts tokens of an issuer (wharf's own, or an external auth service) signed
// by one of its configured keys; TokenIssuer makes them for the gateway's token endpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jws.h"
#include "auth/token_cache.h"
#include "common/status.h"

namespace wharf::auth {

constexpr size_t kMaxTokenBytes = 16 * 1024;
constexpr size_t kMaxTokenHeaderBytes = 2048;  // of the encoded header segment

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// One entry of the `access` claim: type "repository" (or e.g. "registry"), name, actions.
struct AccessEntry {
  std::string type;
  std::string name;
  std::vector<std::string> actions;
  bool operator==(const AccessEntry&) const = default;
};

struct TokenClaims {
  std::string issuer;
  std::string subject;
  std::vector<std::string> audience;
  int64_t expires_at = 0;  // unix seconds
  int64_t not_before = 0;  // 0: absent
  int64_t issued_at = 0;   // 0: absent
  std::string id;          // jti
  std::vector<AccessEntry> access;
};

// True when an entry of `access` of `type` and `name` lists `action` (or "*").
bool Grants(const std::vector<AccessEntry>& access, std::string_view type, std::string_view name,
            std::string_view action);

struct VerifierOptions {
  std::string issuer;   // the `iss` a token must carry (--token-issuer)
  std::string service;  // the audience a token must name (--token-service)
  std::chrono::seconds clock_skew{60};
  size_t cache_entries = 4096;
  WallClock clock = &std::chrono::system_clock::now;
};

// Thread-safe; immutable but for its cache.
class TokenVerifier {
 public:
  // kInvalidArgument without keys, with an empty issuer or service, or with two keys of one kid.
  static Result<std::unique_ptr<TokenVerifier>> Create(VerifierOptions options,
                                                       std::vector<JwsKey> keys);

  // The token's claims when it is well-formed, signed by a configured key with that key's
  // algorithm (the header's `kid` picks the key; without a kid the only key, if there is just
  // one), from the configured issuer, for the configured service, and within exp/nbf give or
  // take the clock skew. Every refusal is an error (malformed: kInvalidArgument/kTooLarge;
  // wrong algorithm or unknown key: kUnsupported/kNotFound; bad signature, issuer, audience,
  // time: kInvalidArgument): the caller answers 401 with error="invalid_token".
  Result<std::shared_ptr<const TokenClaims>> Verify(std::string_view token);

  const TokenCache& cache() const { return cache_; }
  // How many signature verifications ran (cache misses that got that far); for tests.
  uint64_t signature_checks() const { return signature_checks_; }

 private:
  TokenVerifier(VerifierOptions options, std::vector<JwsKey> keys);
  Result<const JwsKey*> KeyFor(std::string_view header_json) const;
  Status CheckClaims(const TokenClaims& claims, int64_t now) const;

  const VerifierOptions options_;
  const std::vector<JwsKey> keys_;
  TokenCache cache_;
  std::atomic<uint64_t> signature_checks_{0};
};

// Parses the claims JSON of a token (exposed for tests and fuzzing).
Result<TokenClaims> ParseClaims(std::string_view json);

struct IssuerOptions {
  std::string issuer;
  std::chrono::seconds ttl{300};
  WallClock clock = &std::chrono::system_clock::now;
};

struct IssuedToken {
  std::string token;
  int64_t expires_in = 0;  // seconds
  int64_t issued_at = 0;   // unix seconds
  // The token endpoint's answer: {"token","access_token","expires_in","issued_at" (RFC 3339)}.
  std::string ResponseJson() const;
};

// Thread-safe.
class TokenIssuer {
 public:
  // The key must hold a private key (--token-key); kInvalidArgument otherwise.
  static Result<std::unique_ptr<TokenIssuer>> Create(IssuerOptions options, JwsKey key);
  Result<IssuedToken> Issue(std::string_view subject, std::string_view audience,
                            const std::vector<AccessEntry>& access) const;
  const JwsKey& key() const { return key_; }

 private:
  TokenIssuer(IssuerOptions options, JwsKey key)
      : options_(std::move(options)), key_(std::move(key)) {}
  const IssuerOptions options_;
  const JwsKey key_;
};

// "2026-12-01T22:05:00Z" for unix seconds.
std::string Rfc3339(int64_t unix_seconds);

}  // namespace wharf::auth

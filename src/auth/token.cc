#include "auth/token.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "auth/base64.h"
#include "common/fs.h"

namespace wharf::auth {
namespace {

using json = nlohmann::json;

// Never throws: bytes that are not UTF-8 (a user name from a file) become U+FFFD.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t UnixNow(const WallClock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock().time_since_epoch()).count();
}

Result<json> ParseObject(std::string_view text, std::string_view what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Err(InvalidArgument(fmt::format("token {} is not a JSON object", what)));
  }
  return j;
}

// A NumericDate (RFC 7519: seconds, maybe fractional) as whole seconds.
Result<int64_t> NumericDate(const json& j, const char* name, bool required) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) return Err(InvalidArgument(fmt::format("token without {}", name)));
    return int64_t{0};
  }
  if (!it->is_number()) return Err(InvalidArgument(fmt::format("token {} not a number", name)));
  double v = it->get<double>();
  if (!std::isfinite(v) || v < 0 || v > 1e15) {
    return Err(InvalidArgument(fmt::format("token {} out of range", name)));
  }
  return int64_t(v);
}

Result<std::string> OptString(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return std::string();
  if (!it->is_string()) return Err(InvalidArgument(fmt::format("token {} not a string", name)));
  return it->get<std::string>();
}

Result<std::vector<std::string>> StringList(const json& j, const char* what) {
  if (j.is_string()) return std::vector<std::string>{j.get<std::string>()};
  if (!j.is_array()) return Err(InvalidArgument(fmt::format("token {} malformed", what)));
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) return Err(InvalidArgument(fmt::format("token {} malformed", what)));
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::vector<AccessEntry>> ParseAccess(const json& j) {
  auto it = j.find("access");
  if (it == j.end() || it->is_null()) return std::vector<AccessEntry>{};
  if (!it->is_array()) return Err(InvalidArgument("token access claim not an array"));
  std::vector<AccessEntry> out;
  for (const auto& e : *it) {
    if (!e.is_object()) return Err(InvalidArgument("token access entry not an object"));
    AccessEntry a;
    WHARF_ASSIGN_OR_RETURN(a.type, OptString(e, "type"));
    WHARF_ASSIGN_OR_RETURN(a.name, OptString(e, "name"));
    if (auto acts = e.find("actions"); acts != e.end() && !acts->is_null()) {
      if (!acts->is_array()) return Err(InvalidArgument("token access actions not an array"));
      WHARF_ASSIGN_OR_RETURN(a.actions, StringList(*acts, "access actions"));
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

bool Grants(const std::vector<AccessEntry>& access, std::string_view type, std::string_view name,
            std::string_view action) {
  for (const auto& e : access) {
    if (e.type != type || e.name != name) continue;
    for (const auto& a : e.actions) {
      if (a == action || a == "*") return true;
    }
  }
  return false;
}

Result<TokenClaims> ParseClaims(std::string_view text) {
  WHARF_ASSIGN_OR_RETURN(json j, ParseObject(text, "claims"));
  TokenClaims c;
  WHARF_ASSIGN_OR_RETURN(c.issuer, OptString(j, "iss"));
  WHARF_ASSIGN_OR_RETURN(c.subject, OptString(j, "sub"));
  WHARF_ASSIGN_OR_RETURN(c.id, OptString(j, "jti"));
  if (auto aud = j.find("aud"); aud != j.end()) {
    WHARF_ASSIGN_OR_RETURN(c.audience, StringList(*aud, "aud"));
  }
  WHARF_ASSIGN_OR_RETURN(c.expires_at, NumericDate(j, "exp", true));
  WHARF_ASSIGN_OR_RETURN(c.not_before, NumericDate(j, "nbf", false));
  WHARF_ASSIGN_OR_RETURN(c.issued_at, NumericDate(j, "iat", false));
  WHARF_ASSIGN_OR_RETURN(c.access, ParseAccess(j));
  return c;
}

Result<std::unique_ptr<TokenVerifier>> TokenVerifier::Create(VerifierOptions options,
                                                             std::vector<JwsKey> keys) {
  if (keys.empty()) return Err(InvalidArgument("token verification needs at least one key"));
  if (options.issuer.empty()) return Err(InvalidArgument("token verification needs an issuer"));
  if (options.service.empty()) return Err(InvalidArgument("token verification needs a service"));
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t k = i + 1; k < keys.size(); ++k) {
      if (keys[i].kid == keys[k].kid) {
        return Err(InvalidArgument("two token keys with kid " + keys[i].kid));
      }
    }
  }
  return std::unique_ptr<TokenVerifier>(new TokenVerifier(std::move(options), std::move(keys)));
}

TokenVerifier::TokenVerifier(VerifierOptions options, std::vector<JwsKey> keys)
    : options_(std::move(options)), keys_(std::move(keys)), cache_(options_.cache_entries) {}

Result<const JwsKey*> TokenVerifier::KeyFor(std::string_view header_text) const {
  WHARF_ASSIGN_OR_RETURN(json h, ParseObject(header_text, "header"));
  auto alg = h.find("alg");
  if (alg == h.end() || !alg->is_string()) return Err(InvalidArgument("token header without alg"));
  WHARF_ASSIGN_OR_RETURN(JwsAlg wanted, ParseAlg(alg->get<std::string>()));
  if (h.contains("crit")) return Err(Unsupported("token header with crit"));
  WHARF_ASSIGN_OR_RETURN(std::string typ, OptString(h, "typ"));
  if (!typ.empty() && typ != "JWT") return Err(InvalidArgument("token typ is not JWT"));
  WHARF_ASSIGN_OR_RETURN(std::string kid, OptString(h, "kid"));
  const JwsKey* key = nullptr;
  if (kid.empty()) {
    if (keys_.size() != 1) return Err(NotFound("token without kid and several keys configured"));
    key = &keys_[0];
  } else {
    for (const auto& k : keys_) {
      if (k.kid == kid) key = &k;
    }
    if (!key) return Err(NotFound("token signed by an unknown key"));
  }
  if (key->alg != wanted) return Err(Unsupported("token algorithm not configured for its key"));
  return key;
}

Status TokenVerifier::CheckClaims(const TokenClaims& c, int64_t now) const {
  int64_t skew = options_.clock_skew.count();
  if (c.issuer != options_.issuer) return InvalidArgument("token from another issuer");
  if (std::find(c.audience.begin(), c.audience.end(), options_.service) == c.audience.end()) {
    return InvalidArgument("token for another service");
  }
  if (now >= c.expires_at + skew) return InvalidArgument("token expired");
  if (c.not_before != 0 && now + skew < c.not_before) return InvalidArgument("token not yet valid");
  if (c.issued_at != 0 && now + skew < c.issued_at)
    return InvalidArgument("token issued in the future");
  return Status::Ok();
}

Result<std::shared_ptr<const TokenClaims>> TokenVerifier::Verify(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return Err(TooLarge("token too long"));
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return Err(InvalidArgument("token is not three dot-separated segments"));
  }
  std::string_view signed_part = token.substr(0, d2);
  std::string_view sig_text = token.substr(d2 + 1);
  auto now_tp = options_.clock();
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(now_tp.time_since_epoch()).count();
  if (auto hit = cache_.Get(sig_text, signed_part, now_tp)) {
    WHARF_RETURN_IF_ERROR(CheckClaims(*hit, now));
    return hit;
  }
  if (d1 > kMaxTokenHeaderBytes) return Err(TooLarge("token header too long"));
  WHARF_ASSIGN_OR_RETURN(std::string header, Base64UrlDecode(token.substr(0, d1), kMaxTokenBytes));
  WHARF_ASSIGN_OR_RETURN(const JwsKey* key, KeyFor(header));
  WHARF_ASSIGN_OR_RETURN(std::string payload,
                         Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), kMaxTokenBytes));
  WHARF_ASSIGN_OR_RETURN(std::string sig, Base64UrlDecode(sig_text, 1024));
  // The claims are parsed before the signature is checked, and nothing of them is believed
  // until it was: they are only used to refuse early. A token already expired by its own `exp`
  // is refused without the costly verification (genuine or forged, it would be refused after
  // it anyway), so a client repeating an expired token does not cost an ECDSA/RSA check each
  // time. Every other claim is checked after the signature.
  WHARF_ASSIGN_OR_RETURN(TokenClaims claims, ParseClaims(payload));
  if (now >= claims.expires_at + options_.clock_skew.count()) {
    return Err(InvalidArgument("token expired (signature not checked)"));
  }
  ++signature_checks_;
  if (!JwsVerify(*key, signed_part, sig)) return Err(InvalidArgument("token signature invalid"));
  WHARF_RETURN_IF_ERROR(CheckClaims(claims, now));
  auto shared = std::make_shared<const TokenClaims>(std::move(claims));
  auto expires = std::chrono::system_clock::time_point(
      std::chrono::seconds(shared->expires_at + options_.clock_skew.count()));
  cache_.Put(sig_text, signed_part, shared, expires);
  return shared;
}

Result<std::unique_ptr<TokenIssuer>> TokenIssuer::Create(IssuerOptions options, JwsKey key) {
  if (!key.has_private) return Err(InvalidArgument("token signing key is not a private key"));
  if (options.issuer.empty()) return Err(InvalidArgument("token issuing needs an issuer name"));
  if (options.ttl.count() <= 0) return Err(InvalidArgument("token lifetime must be positive"));
  return std::unique_ptr<TokenIssuer>(new TokenIssuer(std::move(options), std::move(key)));
}

Result<IssuedToken> TokenIssuer::Issue(std::string_view subject, std::string_view audience,
                                       const std::vector<AccessEntry>& access) const {
  int64_t now = UnixNow(options_.clock);
  json header = {{"typ", "JWT"}, {"alg", AlgName(key_.alg)}, {"kid", key_.kid}};
  json grants = json::array();
  for (const auto& a : access) {
    grants.push_back({{"type", a.type}, {"name", a.name}, {"actions", a.actions}});
  }
  json claims = {{"iss", options_.issuer},
                 {"sub", subject},
                 {"aud", audience},
                 {"exp", now + options_.ttl.count()},
                 {"nbf", now},
                 {"iat", now},
                 {"jti", RandomHex(16)},
                 {"access", grants}};
  std::string signed_part = Base64UrlEncode(Dump(header)) + "." + Base64UrlEncode(Dump(claims));
  WHARF_ASSIGN_OR_RETURN(std::string sig, JwsSign(key_, signed_part));
  return IssuedToken{signed_part + "." + Base64UrlEncode(sig), options_.ttl.count(), now};
}

std::string Rfc3339(int64_t unix_seconds) {
  std::time_t t = std::time_t(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string IssuedToken::ResponseJson() const {
  json j = {{"token", token},
            {"access_token", token},
            {"expires_in", expires_in},
            {"issued_at", Rfc3339(issued_at)}};
  return Dump(j);
}

}  // namespace wharf::auth

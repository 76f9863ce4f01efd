#include "auth/credentials.h"

#include <strings.h>

#include <array>

#include "auth/base64.h"
#include "auth/htpasswd.h"

namespace wharf::auth {
namespace {

// Splits "Scheme   rest" into the scheme and rest (after any spaces).
std::pair<std::string_view, std::string_view> SplitScheme(std::string_view v) {
  size_t sp = v.find(' ');
  if (sp == std::string_view::npos) return {v, {}};
  std::string_view rest = v.substr(sp);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  return {v.substr(0, sp), rest};
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// The characters of a token68 (RFC 9110 section 11.2), as a table: a Bearer token is checked
// on every request, and it is several hundred bytes.
constexpr std::array<bool, 256> kToken68Chars = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("-._~+/=")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool IsToken68(std::string_view t) {
  for (char c : t) {
    if (!kToken68Chars[static_cast<unsigned char>(c)]) return false;
  }
  return !t.empty();
}

}  // namespace

AuthScheme SchemeOf(std::string_view header_value) {
  auto [scheme, rest] = SplitScheme(header_value);
  if (scheme.empty()) return AuthScheme::kNone;
  if (IEquals(scheme, "Basic")) return AuthScheme::kBasic;
  if (IEquals(scheme, "Bearer")) return AuthScheme::kBearer;
  return AuthScheme::kOther;
}

Result<BasicCredentials> ParseBasicAuthorization(std::string_view header_value) {
  if (header_value.size() > kMaxAuthorizationBytes) {
    return Err(TooLarge("Authorization header too long"));
  }
  auto [scheme, rest] = SplitScheme(header_value);
  if (!IEquals(scheme, "Basic")) return Err(InvalidArgument("not Basic credentials"));
  auto decoded = Base64Decode(rest, kMaxUserBytes + 1 + kMaxPasswordBytes);
  if (!decoded) return Err(InvalidArgument("Basic credentials: " + decoded.error().message()));
  if (decoded->find('\0') != std::string::npos) {
    return Err(InvalidArgument("Basic credentials hold a NUL byte"));
  }
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return Err(InvalidArgument("Basic credentials without ':'"));
  BasicCredentials out{decoded->substr(0, colon), decoded->substr(colon + 1)};
  if (out.user.empty()) return Err(InvalidArgument("Basic credentials with an empty user"));
  if (out.user.size() > kMaxUserBytes) return Err(TooLarge("Basic credentials: user too long"));
  if (out.password.size() > kMaxPasswordBytes) {
    return Err(TooLarge("Basic credentials: password too long"));
  }
  for (unsigned char c : out.user) {
    if (c < 0x20 || c == 0x7f) return Err(InvalidArgument("control character in user"));
  }
  return out;
}

std::string FormatBasicAuthorization(std::string_view user, std::string_view password) {
  std::string plain(user);
  plain += ':';
  plain += password;
  return "Basic " + Base64Encode(plain);
}

Result<std::string_view> BearerTokenOf(std::string_view header_value) {
  if (header_value.size() > kMaxAuthorizationBytes) {
    return Err(TooLarge("Authorization header too long"));
  }
  auto [scheme, rest] = SplitScheme(header_value);
  if (!IEquals(scheme, "Bearer")) return Err(InvalidArgument("not a Bearer token"));
  return rest;
}

bool IsBearerToken68(std::string_view token) { return IsToken68(token); }

Result<std::string_view> ParseBearerAuthorization(std::string_view header_value) {
  WHARF_ASSIGN_OR_RETURN(std::string_view token, BearerTokenOf(header_value));
  if (!IsToken68(token)) return Err(InvalidArgument("Bearer token malformed"));
  return token;
}

}  // namespace wharf::auth

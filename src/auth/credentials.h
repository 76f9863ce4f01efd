// The credentials an `Authorization` request header carries (RFC 7617 Basic, RFC 6750
// Bearer). Bounded and strict: a hostile header is a kInvalidArgument/kTooLarge, never a crash,
// and the caller answers 401 for any error.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf::auth {

constexpr size_t kMaxAuthorizationBytes = 16 * 1024;

struct BasicCredentials {
  std::string user;
  std::string password;
};

enum class AuthScheme { kNone, kBasic, kBearer, kOther };

// The scheme of an Authorization header value (case-insensitive, as RFC 7235 says).
AuthScheme SchemeOf(std::string_view header_value);

// "Basic <base64(user:password)>". Errors: not Basic, over the size limits (user 255 bytes,
// password 1024 bytes, header kMaxAuthorizationBytes), bad base64, no ':', an empty user,
// control characters in the user or a NUL anywhere.
Result<BasicCredentials> ParseBasicAuthorization(std::string_view header_value);
// The header value for given credentials (for clients and tests).
std::string FormatBasicAuthorization(std::string_view user, std::string_view password);

// "Bearer <token>": the token (token68 characters only), or an error.
Result<std::string_view> ParseBearerAuthorization(std::string_view header_value);

// ParseBearerAuthorization in two steps, for the request path: the token of a "Bearer <token>"
// header, unchecked, or an error (not Bearer, too long); and whether a token is made of token68
// characters only. A token the verifier accepts is a JWS compact serialization (base64url and
// dots), so the character check need only run to name why a refused token was refused.
Result<std::string_view> BearerTokenOf(std::string_view header_value);
bool IsBearerToken68(std::string_view token);

}  // namespace wharf::auth

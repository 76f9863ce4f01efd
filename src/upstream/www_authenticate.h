// WWW-Authenticate (RFC 7235 section 4.1): the challenges an upstream registry answers a 401
// with, e.g.
//   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"
//   Basic realm="registry"
// The header is outside input (any upstream, or whatever sits between): the parser is strict
// about its grammar and bounded in what it keeps.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wharf::upstream {

struct AuthChallenge {
  std::string scheme;                         // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // names lowercased, values unquoted
  std::string token68;                        // the other form (rare): "Negotiate abc=="
  // The value of a parameter, "" when absent.
  std::string param(const std::string& name) const;
};

inline constexpr size_t kMaxChallengeHeaderBytes = 8192;
inline constexpr size_t kMaxChallengeParams = 32;

// Every challenge of one header value, in order. kInvalidArgument for anything outside the
// grammar (an unterminated quoted string, a parameter without a name, a control character), a
// header over kMaxChallengeHeaderBytes or a challenge with more than kMaxChallengeParams
// parameters, or a header with no challenge at all.
Result<std::vector<AuthChallenge>> ParseWwwAuthenticate(std::string_view header);

}  // namespace wharf::upstream

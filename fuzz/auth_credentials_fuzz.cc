// Authorization header values and scope parameters (auth/credentials.h, auth/scope.h) over any
// text: the first line is a header value, each further line a `scope=` value. Accepted input
// round-trips: formatting what was parsed and parsing it again gives the same thing.
#include <cstdint>
#include <string>
#include <vector>

#include "auth/credentials.h"
#include "auth/scope.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header, rest;
  wharf::fuzz::SplitFirstLine(wharf::fuzz::AsText(data, size), &header, &rest);

  if (auto basic = wharf::auth::ParseBasicAuthorization(header)) {
    FUZZ_CHECK(!basic->user.empty() && basic->user.find(':') == std::string::npos);
    FUZZ_CHECK(basic->user.size() <= 255 && basic->password.size() <= 1024);
    auto again = wharf::auth::ParseBasicAuthorization(
        wharf::auth::FormatBasicAuthorization(basic->user, basic->password));
    FUZZ_CHECK(again && again->user == basic->user && again->password == basic->password);
    FUZZ_CHECK(wharf::auth::SchemeOf(header) == wharf::auth::AuthScheme::kBasic);
  }
  if (auto bearer = wharf::auth::ParseBearerAuthorization(header)) {
    FUZZ_CHECK(!bearer->empty() && bearer->find(' ') == std::string_view::npos);
    FUZZ_CHECK(wharf::auth::SchemeOf(header) == wharf::auth::AuthScheme::kBearer);
  }

  std::vector<std::string_view> values;  // one per line after the first, at most 100
  for (size_t pos = 0; !rest.empty() && values.size() < 100;) {
    size_t nl = rest.find('\n', pos);
    values.push_back(rest.substr(pos, nl == std::string_view::npos ? nl : nl - pos));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  auto scopes = wharf::auth::ParseScopes(values);
  if (!scopes) return 0;
  FUZZ_CHECK(scopes->size() <= wharf::auth::kMaxScopes);
  for (const auto& s : *scopes) {
    auto again = wharf::auth::ParseScope(wharf::auth::FormatScope(s));
    FUZZ_CHECK(again && *again == s);
  }
  std::string challenge = wharf::auth::BearerChallenge("https://h/v2/token", "svc", *scopes);
  FUZZ_CHECK(challenge.find('\n') == std::string::npos);
  return 0;
}

// The htpasswd file and the access policy file (auth/htpasswd.h, auth/policy.h) over any bytes:
// each is parsed or refused with kInvalidArgument; an accepted policy answers questions about
// the names in the input without crashing, and anonymous callers never get more than anyone.
#include <cstdint>
#include <string>

#include "auth/htpasswd.h"
#include "auth/policy.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = wharf::fuzz::AsText(data, size);
  auto users = wharf::auth::Htpasswd::Parse(text);
  if (!users) {
    FUZZ_CHECK(users.error().code() == wharf::Code::kInvalidArgument);
    FUZZ_CHECK(users.error().message().find('\n') == std::string::npos);
  }
  auto policy = wharf::auth::AccessPolicy::Parse(text);
  if (!policy) {
    FUZZ_CHECK(policy.error().code() == wharf::Code::kInvalidArgument);
    return 0;
  }
  using wharf::auth::Principal;
  for (std::string_view repo : {"a", "team/app", "x/y/z", "public/base"}) {
    auto anon = policy->AllowedActions(Principal::Anonymous(), repo);
    auto user = policy->AllowedActions(Principal::User("alice"), repo);
    for (auto a : anon) FUZZ_CHECK(user.contains(a));
  }
  return 0;
}

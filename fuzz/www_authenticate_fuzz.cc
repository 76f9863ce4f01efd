// WWW-Authenticate header values (upstream/www_authenticate.h), as an upstream registry or
// anything between sends them, over any text. Accepted input is bounded and round-trips:
// formatting what was parsed and parsing it again gives the same challenges.
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "upstream/www_authenticate.h"

namespace {
std::string Format(const std::vector<wharf::upstream::AuthChallenge>& challenges) {
  std::string out;
  for (const auto& ch : challenges) {
    if (!out.empty()) out += ", ";
    out += ch.scheme;
    if (!ch.token68.empty()) {
      out += " " + ch.token68;
      continue;
    }
    bool first = true;
    for (const auto& [k, v] : ch.params) {
      out += first ? " " : ", ";
      first = false;
      out += k + "=\"";
      for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    }
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = wharf::upstream::ParseWwwAuthenticate(wharf::fuzz::AsText(data, size));
  if (!parsed) return 0;
  FUZZ_CHECK(size <= wharf::upstream::kMaxChallengeHeaderBytes);
  FUZZ_CHECK(!parsed->empty() && parsed->size() <= wharf::upstream::kMaxChallengeParams);
  for (const auto& ch : *parsed) {
    FUZZ_CHECK(!ch.scheme.empty());
    FUZZ_CHECK(ch.params.size() <= wharf::upstream::kMaxChallengeParams);
    FUZZ_CHECK(ch.token68.empty() || ch.params.empty());
    for (const auto& [k, v] : ch.params) FUZZ_CHECK(!k.empty());
  }
  std::string formatted = Format(*parsed);
  if (formatted.size() > wharf::upstream::kMaxChallengeHeaderBytes) return 0;
  auto again = wharf::upstream::ParseWwwAuthenticate(formatted);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->size() == parsed->size());
  for (size_t i = 0; i < parsed->size(); ++i) {
    FUZZ_CHECK((*again)[i].scheme == (*parsed)[i].scheme);
    FUZZ_CHECK((*again)[i].params == (*parsed)[i].params);
    FUZZ_CHECK((*again)[i].token68 == (*parsed)[i].token68);
  }
  return 0;
}

// The replication file (upstream/replication_config.h) over any bytes: parsed, or refused with
// kInvalidArgument in one line; an accepted file's rules are well formed (a name, patterns,
// http(s) targets without a trailing '/') and answer which pushes they match without crashing.
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "upstream/replication_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = wharf::fuzz::AsText(data, size);
  auto config = wharf::upstream::ParseReplicationConfig(text);
  if (!config) {
    FUZZ_CHECK(config.error().code() == wharf::Code::kInvalidArgument);
    FUZZ_CHECK(config.error().message().find('\n') == std::string::npos);
    return 0;
  }
  FUZZ_CHECK(!config->rules.empty());
  FUZZ_CHECK(config->concurrency >= 1 && config->max_attempts >= 1);
  FUZZ_CHECK(config->backoff_initial <= config->backoff_max);
  for (const auto& rule : config->rules) {
    FUZZ_CHECK(!rule.name.empty() && !rule.repositories.empty() && !rule.targets.empty());
    for (const auto& t : rule.targets) {
      FUZZ_CHECK(t.url.starts_with("http://") || t.url.starts_with("https://"));
      FUZZ_CHECK(t.url.back() != '/');
      FUZZ_CHECK(t.password_file.empty() || !t.user.empty());
    }
    for (std::string_view repo : {"a", "team/app", "x/y/z"}) {
      (void)wharf::upstream::RuleMatchesPush(rule, repo, std::string("v1"));
      (void)wharf::upstream::RuleMatchesPush(rule, repo, std::nullopt);
    }
    (void)wharf::upstream::RuleMatchesTag(rule, "latest");
  }
  return 0;
}

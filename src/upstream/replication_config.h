// The replication file of `--replicate FILE` (what upstream/replication.h runs): its rules
// parsed and checked, and which pushes and tags a rule matches. Pure: no I/O.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wharf::upstream {

struct ReplicationTarget {
  std::string url;            // http(s)://HOST[:PORT], no trailing '/'
  std::string user;           // "" = anonymous
  std::string password_file;  // its first line is the password (read by Replicator::Create)
  std::string ca_file;        // PEM CAs for https ("" = the system's)
  friend bool operator==(const ReplicationTarget&, const ReplicationTarget&) = default;
};

enum class ReplicationMode { kPush, kPull };

struct ReplicationRule {
  std::string name;
  std::vector<std::string> repositories;  // patterns
  std::vector<std::string> tags;          // "*"-globs; empty: every tag (and untagged pushes)
  std::vector<ReplicationTarget> targets;
  ReplicationMode mode = ReplicationMode::kPush;
  std::chrono::seconds interval{300};  // pull rules
  bool replicate_deletes = false;      // push rules, `delete: true`
};

struct ReplicationConfig {
  std::vector<ReplicationRule> rules;
  int concurrency = 4;
  int max_attempts = 8;
  std::chrono::seconds backoff_initial{1};
  std::chrono::seconds backoff_max{60};
};

// The replication file. kInvalidArgument, one line naming where ("rules[1].targets[0]: ..."),
// for anything not as above: unknown keys, a rule without a name, repositories or targets,
// two rules of one name, a bad pattern or glob, a target that is not http(s)://HOST, one URL
// given with two different settings, a password file without a user, bad numbers or durations,
// `delete` not true/false or on a pull rule.
Result<ReplicationConfig> ParseReplicationConfig(std::string_view yaml);

// Whether a push of `repo` (with `tag`, or by digest only) is one `rule` replicates.
bool RuleMatchesPush(const ReplicationRule& rule, std::string_view repo,
                     const std::optional<std::string>& tag);
// Whether a deletion here of manifest `repo`@digest (tag nullopt: every rule of the repository
// with `delete: true`, whatever its tag filter) or of `repo`:tag is one `rule` replicates.
bool RuleMatchesDelete(const ReplicationRule& rule, std::string_view repo,
                       const std::optional<std::string>& tag);
// Whether `tag` passes the rule's tag filter.
bool RuleMatchesTag(const ReplicationRule& rule, std::string_view tag);

// The queue's target key of a push target: distinct from a site's upstream URL, so the two
// queues never share items even when they name the same registry.
std::string ReplicationQueueTarget(const std::string& url);

}  // namespace wharf::upstream

#include "upstream/replication_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "auth/policy.h"
#include "common/units.h"
#include "registry/names.h"

namespace wharf::upstream {
namespace {

Status Bad(std::string_view where, std::string_view why) {
  std::string msg = fmt::format("{}: {}", where, why);
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  return InvalidArgument(std::move(msg));
}

Status CheckKeys(const YAML::Node& node, std::string_view where,
                 std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) return Bad(where, "expected a mapping");
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return Bad(where, "keys must be strings");
    const std::string key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Bad(where, "unknown key '" + key + "' (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> Scalar(const YAML::Node& node, std::string_view where) {
  if (!node.IsScalar() || node.Scalar().empty()) return Err(Bad(where, "expected a string"));
  if (node.Scalar().size() > 4096) return Err(Bad(where, "too long"));
  return node.Scalar();
}

Result<std::vector<std::string>> Strings(const YAML::Node& node, std::string_view where) {
  if (!node.IsSequence()) return Err(Bad(where, "expected a list of strings"));
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    WHARF_ASSIGN_OR_RETURN(std::string s, Scalar(node[i], fmt::format("{}[{}]", where, i)));
    out.push_back(std::move(s));
  }
  return out;
}

bool HttpUrl(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.starts_with(scheme)) {
      std::string_view rest = url.substr(scheme.size());
      if (rest.empty() || rest.front() == '/' || rest.front() == ':') return false;
      // A registry's base: no path, query or credentials in it.
      return rest.find_first_of("/?#@ ") == std::string_view::npos;
    }
  }
  return false;
}

Result<ReplicationTarget> ParseTarget(const YAML::Node& node, const std::string& where) {
  ReplicationTarget t;
  if (node.IsScalar()) {
    t.url = node.Scalar();
  } else {
    WHARF_RETURN_IF_ERROR(CheckKeys(node, where, {"url", "user", "password_file", "ca"}));
    if (!node["url"]) return Err(Bad(where, "a target needs a url"));
    WHARF_ASSIGN_OR_RETURN(t.url, Scalar(node["url"], where + ".url"));
    if (node["user"]) {
      WHARF_ASSIGN_OR_RETURN(t.user, Scalar(node["user"], where + ".user"));
    }
    if (node["password_file"]) {
      WHARF_ASSIGN_OR_RETURN(t.password_file,
                             Scalar(node["password_file"], where + ".password_file"));
    }
    if (node["ca"]) {
      WHARF_ASSIGN_OR_RETURN(t.ca_file, Scalar(node["ca"], where + ".ca"));
    }
  }
  while (t.url.size() > 1 && t.url.back() == '/') t.url.pop_back();
  if (!HttpUrl(t.url)) {
    return Err(Bad(where, "want http://HOST[:PORT] or https://HOST[:PORT], got '" + t.url + "'"));
  }
  if (!t.password_file.empty() && t.user.empty()) {
    return Err(Bad(where, "a password_file needs a user"));
  }
  return t;
}

Result<std::chrono::seconds> Seconds(const YAML::Node& node, const std::string& where,
                                     std::chrono::seconds lo, std::chrono::seconds hi) {
  WHARF_ASSIGN_OR_RETURN(std::string text, Scalar(node, where));
  auto d = ParseDuration(text);
  if (!d) return Err(Bad(where, "bad duration '" + text + "' (e.g. 30s, 5m, 1h)"));
  auto s = std::chrono::duration_cast<std::chrono::seconds>(*d);
  if (s < lo || s > hi) {
    return Err(Bad(where, fmt::format("want {}s to {}s, got '{}'", lo.count(), hi.count(), text)));
  }
  return s;
}

Result<int> Int(const YAML::Node& node, const std::string& where, int lo, int hi) {
  WHARF_ASSIGN_OR_RETURN(std::string text, Scalar(node, where));
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    return Err(Bad(where, fmt::format("want a number from {} to {}, got '{}'", lo, hi, text)));
  }
  return v;
}

Result<ReplicationRule> ParseRule(const YAML::Node& node, const std::string& where) {
  WHARF_RETURN_IF_ERROR(CheckKeys(
      node, where, {"name", "repositories", "tags", "targets", "mode", "interval", "delete"}));
  ReplicationRule r;
  if (!node["name"]) return Err(Bad(where, "a rule needs a name"));
  WHARF_ASSIGN_OR_RETURN(r.name, Scalar(node["name"], where + ".name"));
  if (!node["repositories"]) return Err(Bad(where, "a rule needs repositories (patterns)"));
  WHARF_ASSIGN_OR_RETURN(r.repositories, Strings(node["repositories"], where + ".repositories"));
  if (r.repositories.empty()) return Err(Bad(where + ".repositories", "empty"));
  for (size_t i = 0; i < r.repositories.size(); ++i) {
    WHARF_RETURN_IF_ERROR(auth::ValidateRepositoryPattern(
        fmt::format("{}.repositories[{}]", where, i), r.repositories[i]));
  }
  if (node["tags"]) {
    WHARF_ASSIGN_OR_RETURN(r.tags, Strings(node["tags"], where + ".tags"));
    for (size_t i = 0; i < r.tags.size(); ++i) {
      std::string plain = r.tags[i];
      std::replace(plain.begin(), plain.end(), '*', 'a');
      if (plain.size() > 128 || !ValidTag(plain)) {
        return Err(Bad(fmt::format("{}.tags[{}]", where, i),
                       "not a tag pattern (a tag's characters and '*'): '" + r.tags[i] + "'"));
      }
    }
  }
  if (node["mode"]) {
    WHARF_ASSIGN_OR_RETURN(std::string mode, Scalar(node["mode"], where + ".mode"));
    if (mode == "push") {
      r.mode = ReplicationMode::kPush;
    } else if (mode == "pull") {
      r.mode = ReplicationMode::kPull;
    } else {
      return Err(Bad(where + ".mode", "want push or pull, got '" + mode + "'"));
    }
  }
  if (node["interval"]) {
    if (r.mode != ReplicationMode::kPull) {
      return Err(Bad(where + ".interval", "only pull rules run at an interval"));
    }
    WHARF_ASSIGN_OR_RETURN(r.interval,
                           Seconds(node["interval"], where + ".interval", std::chrono::seconds(1),
                                   std::chrono::hours(24 * 7)));
  }
  if (node["delete"]) {
    WHARF_ASSIGN_OR_RETURN(std::string del, Scalar(node["delete"], where + ".delete"));
    if (del == "true") {
      r.replicate_deletes = true;
    } else if (del != "false") {
      return Err(Bad(where + ".delete", "want true or false, got '" + del + "'"));
    }
    if (r.replicate_deletes && r.mode != ReplicationMode::kPush) {
      return Err(Bad(where + ".delete", "only push rules replicate deletes"));
    }
  }
  if (!node["targets"]) return Err(Bad(where, "a rule needs targets"));
  const YAML::Node targets = node["targets"];
  if (!targets.IsSequence() || targets.size() == 0) {
    return Err(Bad(where + ".targets", "expected a non-empty list"));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    WHARF_ASSIGN_OR_RETURN(ReplicationTarget t,
                           ParseTarget(targets[i], fmt::format("{}.targets[{}]", where, i)));
    for (const auto& other : r.targets) {
      if (other.url == t.url) {
        return Err(Bad(fmt::format("{}.targets[{}]", where, i), "the same url twice: " + t.url));
      }
    }
    r.targets.push_back(std::move(t));
  }
  return r;
}

Result<ReplicationConfig> ParseRoot(const YAML::Node& root) {
  if (!root.IsMap()) return Err(Bad("replication", "expected a mapping with rules"));
  WHARF_RETURN_IF_ERROR(CheckKeys(root, "replication", {"rules", "concurrency", "retry"}));
  ReplicationConfig c;
  if (root["concurrency"]) {
    WHARF_ASSIGN_OR_RETURN(c.concurrency, Int(root["concurrency"], "concurrency", 1, 64));
  }
  if (const YAML::Node retry = root["retry"]) {
    WHARF_RETURN_IF_ERROR(CheckKeys(retry, "retry", {"attempts", "initial", "max"}));
    if (retry["attempts"]) {
      WHARF_ASSIGN_OR_RETURN(c.max_attempts, Int(retry["attempts"], "retry.attempts", 1, 1000));
    }
    if (retry["initial"]) {
      WHARF_ASSIGN_OR_RETURN(c.backoff_initial,
                             Seconds(retry["initial"], "retry.initial", std::chrono::seconds(1),
                                     std::chrono::hours(1)));
    }
    if (retry["max"]) {
      WHARF_ASSIGN_OR_RETURN(
          c.backoff_max,
          Seconds(retry["max"], "retry.max", std::chrono::seconds(1), std::chrono::hours(24)));
    }
    if (c.backoff_max < c.backoff_initial) {
      return Err(Bad("retry", "max is shorter than initial"));
    }
  }
  const YAML::Node rules = root["rules"];
  if (!rules || !rules.IsSequence() || rules.size() == 0) {
    return Err(Bad("rules", "expected a non-empty list of rules"));
  }
  std::map<std::string, ReplicationTarget> by_url;
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string where = fmt::format("rules[{}]", i);
    WHARF_ASSIGN_OR_RETURN(ReplicationRule r, ParseRule(rules[i], where));
    for (const auto& other : c.rules) {
      if (other.name == r.name) return Err(Bad(where + ".name", "two rules named " + r.name));
    }
    for (const auto& t : r.targets) {
      auto [it, fresh] = by_url.emplace(t.url, t);
      if (!fresh && !(it->second == t)) {
        return Err(Bad(where, "target " + t.url +
                                  " is given elsewhere with other settings (user, "
                                  "password_file, ca): give them the same everywhere"));
      }
    }
    c.rules.push_back(std::move(r));
  }
  return c;
}

}  // namespace

Result<ReplicationConfig> ParseReplicationConfig(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Err(Bad("replication", fmt::format("not valid YAML: {}", e.what())));
  }
  try {
    return ParseRoot(root);
  } catch (const YAML::Exception& e) {
    return Err(Bad("replication", fmt::format("malformed: {}", e.what())));
  }
}

bool RuleMatchesTag(const ReplicationRule& rule, std::string_view tag) {
  if (rule.tags.empty()) return true;
  return std::any_of(rule.tags.begin(), rule.tags.end(),
                     [tag](const std::string& g) { return auth::MatchGlob(g, tag); });
}

namespace {
bool RepositoryMatches(const ReplicationRule& rule, std::string_view repo) {
  return std::any_of(
      rule.repositories.begin(), rule.repositories.end(),
      [repo](const std::string& p) { return auth::MatchRepositoryPattern(p, repo); });
}
}  // namespace

bool RuleMatchesPush(const ReplicationRule& rule, std::string_view repo,
                     const std::optional<std::string>& tag) {
  if (rule.mode != ReplicationMode::kPush || !RepositoryMatches(rule, repo)) return false;
  if (rule.tags.empty()) return true;
  return tag && RuleMatchesTag(rule, *tag);
}

bool RuleMatchesDelete(const ReplicationRule& rule, std::string_view repo,
                       const std::optional<std::string>& tag) {
  if (!rule.replicate_deletes) return false;
  if (tag) return RuleMatchesPush(rule, repo, tag);
  // By digest: the manifest may have reached the targets under any matching tag.
  return RepositoryMatches(rule, repo);
}

std::string ReplicationQueueTarget(const std::string& url) { return "replicate " + url; }

}  // namespace wharf::upstream

// The replication file (upstream/replication.h): what it accepts, and one clear line naming
// where for everything it refuses, hostile input included; which pushes a rule replicates.
#include "upstream/replication.h"

#include <gtest/gtest.h>

namespace wharf::upstream {
namespace {

std::string ErrorOf(std::string_view yaml) {
  auto r = ParseReplicationConfig(yaml);
  if (r) return "";
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << r.error().message();
  return r.error().message();
}

TEST(ReplicationConfigTest, TheIssuesFormAndEveryKey) {
  auto r = ParseReplicationConfig(R"(
rules:
  - name: to-dr
    repositories: ["team/**"]
    targets: ["https://dr.example:5000/"]
    mode: push
  - name: releases
    repositories: ["team/*", "base"]
    tags: ["v*", "latest"]
    targets:
      - url: https://b.example
        user: repl
        password_file: /etc/wharf/b.pw
        ca: /etc/wharf/b-ca.pem
      - http://127.0.0.1:5001
  - name: mirror
    mode: pull
    interval: 10m
    repositories: ["library/**"]
    targets: ["http://127.0.0.1:5001"]
concurrency: 2
retry: {attempts: 3, initial: 2s, max: 1m}
)");
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->rules.size(), 3u);
  const ReplicationRule& a = r->rules[0];
  EXPECT_EQ(a.name, "to-dr");
  EXPECT_EQ(a.mode, ReplicationMode::kPush);
  ASSERT_EQ(a.targets.size(), 1u);
  EXPECT_EQ(a.targets[0].url, "https://dr.example:5000");  // the trailing '/' dropped
  const ReplicationRule& b = r->rules[1];
  EXPECT_EQ(b.tags, (std::vector<std::string>{"v*", "latest"}));
  ASSERT_EQ(b.targets.size(), 2u);
  EXPECT_EQ(b.targets[0].user, "repl");
  EXPECT_EQ(b.targets[0].password_file, "/etc/wharf/b.pw");
  EXPECT_EQ(b.targets[0].ca_file, "/etc/wharf/b-ca.pem");
  EXPECT_EQ(b.targets[1].url, "http://127.0.0.1:5001");
  EXPECT_EQ(r->rules[2].mode, ReplicationMode::kPull);
  EXPECT_EQ(r->rules[2].interval, std::chrono::minutes(10));
  EXPECT_EQ(r->concurrency, 2);
  EXPECT_EQ(r->max_attempts, 3);
  EXPECT_EQ(r->backoff_initial, std::chrono::seconds(2));
  EXPECT_EQ(r->backoff_max, std::chrono::seconds(60));
  // Defaults.
  auto d = ParseReplicationConfig("rules: [{name: a, repositories: [x], targets: [http://h:1]}]");
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->concurrency, 4);
  EXPECT_EQ(d->max_attempts, 8);
  EXPECT_EQ(d->rules[0].interval, std::chrono::minutes(5));
}

TEST(ReplicationConfigTest, BadFilesAreOneLineNamingWhere) {
  const std::string ok_target = "targets: [http://h:1]";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "replication: expected a mapping with rules"},
      {"[1, 2]", "replication: expected a mapping"},
      {"rules: [", "not valid YAML"},
      {"rules: []", "rules: expected a non-empty list"},
      {"rules: {a: 1}", "rules: expected a non-empty list"},
      {"rulez: []", "unknown key 'rulez'"},
      {"rules: [{repositories: [x], " + ok_target + "}]", "rules[0]: a rule needs a name"},
      {"rules: [{name: a, " + ok_target + "}]", "rules[0]: a rule needs repositories"},
      {"rules: [{name: a, repositories: [], " + ok_target + "}]", "rules[0].repositories: empty"},
      {"rules: [{name: a, repositories: x, " + ok_target + "}]",
       "rules[0].repositories: expected a list"},
      {"rules: [{name: a, repositories: [a//b], " + ok_target + "}]", "empty segment"},
      {"rules: [{name: a, repositories: [a**], " + ok_target + "}]", "whole segment"},
      {"rules: [{name: a, repositories: [[x]], " + ok_target + "}]",
       "rules[0].repositories[0]: expected a string"},
      {"rules: [{name: a, repositories: [x]}]", "rules[0]: a rule needs targets"},
      {"rules: [{name: a, repositories: [x], targets: []}]", "expected a non-empty list"},
      {"rules: [{name: a, repositories: [x], targets: [ftp://h]}]",
       "rules[0].targets[0]: want http://HOST"},
      {"rules: [{name: a, repositories: [x], targets: ['http://u:p@h']}]", "want http://HOST"},
      {"rules: [{name: a, repositories: [x], targets: ['http://h/path']}]", "want http://HOST"},
      {"rules: [{name: a, repositories: [x], targets: ['http://']}]", "want http://HOST"},
      {"rules: [{name: a, repositories: [x], targets: [{user: u}]}]", "a target needs a url"},
      {"rules: [{name: a, repositories: [x], targets: [{url: 'http://h', pass: 1}]}]",
       "unknown key 'pass'"},
      {"rules: [{name: a, repositories: [x], targets: [{url: 'http://h', password_file: /f}]}]",
       "a password_file needs a user"},
      {"rules: [{name: a, repositories: [x], targets: ['http://h', 'http://h/']}]",
       "the same url twice"},
      {"rules: [{name: a, repositories: [x], " + ok_target + ", mode: both}]",
       "rules[0].mode: want push or pull"},
      {"rules: [{name: a, repositories: [x], " + ok_target + ", interval: 1m}]",
       "only pull rules run at an interval"},
      {"rules: [{name: a, mode: pull, repositories: [x], " + ok_target + ", interval: soon}]",
       "rules[0].interval: bad duration"},
      {"rules: [{name: a, mode: pull, repositories: [x], " + ok_target + ", interval: 0s}]",
       "want 1s to"},
      {"rules: [{name: a, repositories: [x], " + ok_target + ", tags: ['v/1']}]",
       "rules[0].tags[0]: not a tag pattern"},
      {"rules: [{name: a, repositories: [x], " + ok_target + ", delete: yes please}]",
       "rules[0].delete: want true or false"},
      {"rules: [{name: a, repositories: [x], " + ok_target + ", delete: [true]}]",
       "rules[0].delete: expected a string"},
      {"rules: [{name: a, mode: pull, repositories: [x], " + ok_target + ", delete: true}]",
       "rules[0].delete: only push rules replicate deletes"},
      {"rules: [{name: a, repositories: [x], " + ok_target + "}, {name: a, repositories: [y], " +
           ok_target + "}]",
       "rules[1].name: two rules named a"},
      {"rules: [{name: a, repositories: [x], targets: [{url: 'http://h:1', user: u}]}, "
       "{name: b, repositories: [y], " +
           ok_target + "}]",
       "is given elsewhere with other settings"},
      {"concurrency: 0\nrules: [{name: a, repositories: [x], " + ok_target + "}]",
       "concurrency: want a number from 1 to 64"},
      {"concurrency: 1e9\nrules: [{name: a, repositories: [x], " + ok_target + "}]",
       "concurrency: want a number"},
      {"retry: {attempts: -1}\nrules: [{name: a, repositories: [x], " + ok_target + "}]",
       "retry.attempts"},
      {"retry: {initial: 1m, max: 1s}\nrules: [{name: a, repositories: [x], " + ok_target + "}]",
       "retry: max is shorter than initial"},
      {"retry: {jitter: 1}\nrules: [{name: a, repositories: [x], " + ok_target + "}]",
       "unknown key 'jitter'"},
      // Hostile shapes.
      {"rules: [*a]", "not valid YAML"},
      {"rules: [{name: " + std::string(5000, 'x') + ", repositories: [x], " + ok_target + "}]",
       "rules[0].name: too long"},
      {"rules: [{? [a]: b}]", "keys must be strings"},
      {std::string(100, '['), "not valid YAML"},
  };
  for (const auto& [yaml, want] : bad) {
    std::string err = ErrorOf(yaml);
    EXPECT_NE(err.find(want), std::string::npos)
        << "yaml: " << yaml.substr(0, 120) << "\nerr: " << err << "\nwant: " << want;
  }
}

TEST(ReplicationRuleTest, WhichPushesARuleReplicates) {
  auto r = ParseReplicationConfig(R"(
rules:
  - {name: all, repositories: ["team/**"], targets: ["http://h:1"]}
  - {name: releases, repositories: ["team/*"], tags: ["v*", "latest"], targets: ["http://h:1"]}
  - {name: mirror, mode: pull, repositories: ["team/**"], targets: ["http://h:2"]}
)");
  ASSERT_TRUE(r) << r.error().ToString();
  const ReplicationRule& all = r->rules[0];
  const ReplicationRule& releases = r->rules[1];
  const ReplicationRule& mirror = r->rules[2];
  EXPECT_TRUE(RuleMatchesPush(all, "team/app", std::string("x")));
  EXPECT_TRUE(RuleMatchesPush(all, "team/a/b", std::nullopt));  // by digest: no tag filter
  EXPECT_FALSE(RuleMatchesPush(all, "other/app", std::string("v1")));
  EXPECT_FALSE(RuleMatchesPush(all, "team", std::string("v1")));
  EXPECT_TRUE(RuleMatchesPush(releases, "team/app", std::string("v1.2")));
  EXPECT_TRUE(RuleMatchesPush(releases, "team/app", std::string("latest")));
  EXPECT_FALSE(RuleMatchesPush(releases, "team/app", std::string("dev")));
  EXPECT_FALSE(RuleMatchesPush(releases, "team/app", std::nullopt));  // untagged: filtered out
  EXPECT_FALSE(RuleMatchesPush(releases, "team/a/b", std::string("v1")));
  EXPECT_FALSE(RuleMatchesPush(mirror, "team/app", std::string("v1")));  // a pull rule
  EXPECT_TRUE(RuleMatchesTag(releases, "v"));
  EXPECT_FALSE(RuleMatchesTag(releases, "xv1"));
  EXPECT_TRUE(RuleMatchesTag(mirror, "anything"));
  EXPECT_NE(ReplicationQueueTarget("http://h:1"), "http://h:1");  // never a site's queue
}

TEST(ReplicationRuleTest, WhichDeletesARuleReplicates) {
  auto r = ParseReplicationConfig(R"(
rules:
  - {name: all, repositories: ["team/**"], targets: ["http://h:1"], delete: true}
  - {name: releases, repositories: ["rel/*"], tags: ["v*"], targets: ["http://h:1"],
     delete: true}
  - {name: keep, repositories: ["keep/*"], targets: ["http://h:1"], delete: false}
  - {name: plain, repositories: ["plain/*"], targets: ["http://h:1"]}
)");
  ASSERT_TRUE(r) << r.error().ToString();
  const auto& rules = r->rules;
  EXPECT_TRUE(rules[0].replicate_deletes);
  EXPECT_FALSE(rules[2].replicate_deletes);
  EXPECT_FALSE(rules[3].replicate_deletes);
  EXPECT_TRUE(RuleMatchesDelete(rules[0], "team/app", std::nullopt));
  EXPECT_TRUE(RuleMatchesDelete(rules[0], "team/app", std::string("dev")));
  EXPECT_FALSE(RuleMatchesDelete(rules[0], "other/app", std::nullopt));
  // By digest every rule of the repository (the manifest may have gone under any tag); a tag
  // only through the filter.
  EXPECT_TRUE(RuleMatchesDelete(rules[1], "rel/app", std::nullopt));
  EXPECT_TRUE(RuleMatchesDelete(rules[1], "rel/app", std::string("v2")));
  EXPECT_FALSE(RuleMatchesDelete(rules[1], "rel/app", std::string("dev")));
  EXPECT_FALSE(RuleMatchesDelete(rules[2], "keep/app", std::nullopt));
  EXPECT_FALSE(RuleMatchesDelete(rules[3], "plain/app", std::nullopt));
  EXPECT_TRUE(RuleMatchesPush(rules[3], "plain/app", std::nullopt));  // pushes still go
}

}  // namespace
}  // namespace wharf::upstream

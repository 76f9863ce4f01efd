// The flag tables of the daemons (cli/daemon_flags.h): `wharf up` takes every flag of
// `wharf gateway` (on the command line and in its --config file) and each reaches the gateway
// LocalCluster starts; the validators refuse what is out of range with a one-line error.
#include "cli/daemon_flags.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "cli/commands.h"
#include "cli/flag_checks.h"

namespace wharf::cli {
namespace {

namespace fs = std::filesystem;

// Every field of GatewayOptions a flag can set, as text.
std::string Describe(const GatewayOptions& o) {
  std::string out;
  auto add = [&](const char* k, const auto& v) { out += fmt::format("{}={}\n", k, v); };
  add("listen", o.listen);
  add("meta_url", o.meta_url);
  add("chunk_size", o.chunk_size);
  add("max_inflight_chunks", o.max_inflight_chunks);
  add("writable_wait", o.writable_wait.count());
  add("upload_stale", o.upload_stale.count());
  add("member_timeout", o.member_timeout.count());
  add("read_hedge", o.read_hedge.count());
  add("memory_budget", o.memory_budget);
  add("min_body_rate", o.min_body_rate);
  add("min_body_rate_window", o.min_body_rate_window.count());
  add("policy", static_cast<int>(o.policy));
  add("named_group", o.named_group);
  add("max_manifest_bytes", o.max_manifest_bytes);
  add("upload_expiry", o.upload_expiry.count());
  add("gc_interval", o.gc_interval.count());
  add("gc_grace", o.gc_grace.count());
  add("gc_untagged_after", o.gc_untagged_after ? o.gc_untagged_after->count() : -1);
  add("access_log", o.access_log);
  add("htpasswd", o.auth.htpasswd);
  add("access", o.auth.access);
  add("token_key", o.auth.token_key);
  add("token_public_keys", fmt::format("{}", fmt::join(o.auth.token_public_keys, ",")));
  add("token_issuer", o.auth.token_issuer);
  add("token_service", o.auth.token_service);
  add("token_ttl", o.auth.token_ttl.count());
  add("realm", o.auth.realm);
  add("read_only", o.auth.read_only);
  add("max_login_failures", o.auth.max_login_failures);
  add("public_url", o.public_url);
  add("trusted_proxies", fmt::format("{}", fmt::join(o.trusted_proxies, ",")));
  add("allow_foreign_layers", o.allow_foreign_layers);
  add("tls_cert", o.tls_cert);
  add("tls_key", o.tls_key);
  add("tls_client_ca", o.tls_client_ca);
  add("site_upstream", o.site_upstream);
  add("site_upstream_ca", o.site_upstream_ca);
  add("site_upstream_user", o.site_upstream_user);
  add("site_upstream_password_file", o.site_upstream_password_file);
  add("site_tag_ttl", o.site_tag_ttl.count());
  add("site_write_async", o.site_write_async);
  for (const auto& p : o.proxies) {
    add("proxy", fmt::format("{}={} user={} password_file={} ca={}", p.name, fmt::join(p.urls, ","),
                             p.user, p.password_file, p.ca_file));
  }
  add("proxy_tag_ttl", o.proxy_tag_ttl.count());
  add("proxy_serve_stale", o.proxy_serve_stale);
  add("replicate_file", o.replicate_file);
  add("site_cache_low_percent", o.site_cache_low_percent);
  add("site_cache_high_percent", o.site_cache_high_percent);
  add("lookup_cache_ttl", o.lookup_cache.ttl.count());
  add("lookup_cache_size", o.lookup_cache.max_bytes);
  add("lookup_cache_tags", o.lookup_cache.tags);
  return out;
}

// A value other than the default for each gateway flag ("" for a switch).
const std::map<std::string, std::string>& Samples() {
  static const std::map<std::string, std::string> kSamples = {
      {"--listen", "127.0.0.1:5999"},
      {"--meta", "sqlite:/srv/wharf/meta.db"},
      {"--chunk-size", "1MiB"},
      {"--inflight", "7"},
      {"--policy", "round_robin"},
      {"--group", "g2"},
      {"--upload-expiry", "2h"},
      {"--gc-interval", "30s"},
      {"--gc-grace", "5m"},
      {"--gc-untagged-after", "7d"},
      {"--max-manifest", "1MiB"},
      {"--access-log", "off"},
      {"--htpasswd", "/etc/wharf/htpasswd"},
      {"--access", "/etc/wharf/access.yaml"},
      {"--token-key", "/etc/wharf/token.key"},
      {"--token-public-key", "k1=/etc/wharf/issuer.pem"},
      {"--token-issuer", "issuer"},
      {"--token-service", "service"},
      {"--token-ttl", "10m"},
      {"--auth-realm", "https://auth.example.com/token"},
      {"--read-only", ""},
      {"--max-login-failures", "3"},
      {"--public-url", "https://registry.example.com"},
      {"--trusted-proxy", "10.0.0.0/8"},
      {"--refuse-foreign-layers", ""},
      {"--writable-wait", "2s"},
      {"--upload-stale", "20m"},
      {"--member-timeout", "3s"},
      {"--read-hedge", "250ms"},
      {"--memory-budget", "1GiB"},
      {"--min-body-rate", "0"},
      {"--min-body-rate-window", "30s"},
      {"--lookup-cache-ttl", "0"},
      {"--lookup-cache-size", "8MiB"},
      {"--lookup-cache-tags", "on"},
      {"--tls-cert", "/etc/wharf/server.pem"},
      {"--tls-key", "/etc/wharf/server.key"},
      {"--tls-client-ca", "/etc/wharf/ca.pem"},
      {"--site-upstream", "https://central.example:5000"},
      {"--site-upstream-ca", "/etc/wharf/central-ca.pem"},
      {"--site-upstream-user", "site-a"},
      {"--site-upstream-password-file", "/etc/wharf/central.password"},
      {"--site-tag-ttl", "5s"},
      {"--site-write", "async"},
      {"--proxy", "hub=https://registry-1.docker.io"},
      {"--proxy-user", "hub=alice"},
      {"--proxy-password-file", "hub=/etc/wharf/hub.password"},
      {"--proxy-ca", "hub=/etc/wharf/hub-ca.pem"},
      {"--proxy-tag-ttl", "1m"},
      {"--proxy-serve-stale", ""},
      {"--replicate", "/etc/wharf/replication.yaml"},
      {"--site-cache-low", "10%"},
      {"--site-cache-high", "25%"},
  };
  return kSamples;
}

// Flags of `wharf gateway` that are not the gateway's own settings.
const std::set<std::string> kNotGatewaySettings = {"--help",         "--config", "--log-level",
                                                   "--check-config", "--master", "--cluster-key"};

std::vector<std::string> OptionNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options()) names.push_back(opt->get_name());
  return names;
}

// The GatewayOptions `wharf gateway ARGS` would run with.
GatewayOptions GatewayFrom(std::vector<std::string> args) {
  CLI::App app;
  GatewayCommandFlags f;
  AddGatewayCommandFlags(app, &f);
  args.push_back("--master=127.0.0.1:7700");
  EXPECT_EQ(ParseCommandLine(app, "gateway", args), std::nullopt);
  EXPECT_TRUE(FinishGatewayFlags(f.gateway, &f.o).ok());
  return f.o;
}

// The GatewayOptions the gateway of `wharf up ARGS` would run with.
GatewayOptions UpGatewayFrom(std::vector<std::string> args) {
  CLI::App app;
  UpFlags f;
  AddUpFlags(app, &f);
  EXPECT_EQ(ParseCommandLine(app, "up", args), std::nullopt);
  Status st = FinishUpFlags(&f);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return GatewayOptionsFor(f.o, "127.0.0.1:7700");
}

std::vector<std::string> ArgsFor(const std::string& flag) {
  const std::string& v = Samples().at(flag);
  std::vector<std::string> args = {v.empty() ? flag : flag + "=" + v};
  if (flag == "--policy") args.push_back("--group=g1");  // named needs a group; others don't
  if (flag != "--meta") args.push_back("--meta=sqlite:/srv/m.db");  // up's default differs
  // The other site flags need an upstream (and a password file a user).
  if (flag.rfind("--site-upstream-", 0) == 0 || flag == "--site-tag-ttl" ||
      flag == "--site-write" || flag.rfind("--site-cache-", 0) == 0) {
    args.push_back("--site-upstream=http://central:5000");
  }
  // The watermarks go together.
  if (flag == "--site-cache-low") args.push_back("--site-cache-high=50%");
  if (flag == "--site-cache-high") args.push_back("--site-cache-low=5%");
  if (flag == "--site-upstream-password-file") args.push_back("--site-upstream-user=u");
  // The other proxy flags need a --proxy (and a password file a user).
  if (flag.rfind("--proxy-", 0) == 0) args.push_back("--proxy=hub=http://127.0.0.1:5001");
  if (flag == "--proxy-password-file") args.push_back("--proxy-user=hub=u");
  return args;
}

TEST(DaemonFlagsTest, UpHasEveryGatewayFlagButMaster) {
  CLI::App gw, up;
  GatewayCommandFlags gf;
  UpFlags uf;
  AddGatewayCommandFlags(gw, &gf);
  AddUpFlags(up, &uf);
  std::vector<std::string> up_names = OptionNames(up);
  for (const std::string& name : OptionNames(gw)) {
    if (name == "--master") continue;
    EXPECT_NE(std::find(up_names.begin(), up_names.end(), name), up_names.end())
        << "wharf up lacks the gateway flag " << name;
  }
}

TEST(DaemonFlagsTest, EveryGatewayFlagHasASample) {
  CLI::App gw;
  GatewayCommandFlags gf;
  AddGatewayCommandFlags(gw, &gf);
  for (const std::string& name : OptionNames(gw)) {
    if (kNotGatewaySettings.contains(name)) continue;
    EXPECT_TRUE(Samples().contains(name)) << "add a sample value for " << name;
  }
}

// What `wharf up` makes of the gateway settings `gateway` describes: the same, but for the
// defaults that differ by design (its gateway is its store's only writer: tags are cached; its
// memory budget is 5 chunks, its groups sharing one disk).
std::string AsUp(std::string gateway) {
  const std::string off = "lookup_cache_tags=false\n";
  if (auto at = gateway.find(off); at != std::string::npos) {
    gateway.replace(at, off.size(), "lookup_cache_tags=true\n");
  }
  const std::string budget = "memory_budget=536870912\n";
  if (auto at = gateway.find(budget); at != std::string::npos) {
    auto cs = gateway.find("chunk_size=");
    uint64_t chunk = std::stoull(gateway.substr(cs + 11));
    uint64_t up = std::max<uint64_t>({5 * chunk, 2 * chunk + (2u << 20), uint64_t{16} << 20});
    gateway.replace(at, budget.size(), "memory_budget=" + std::to_string(up) + "\n");
  }
  return gateway;
}

TEST(DaemonFlagsTest, UpsMemoryBudgetIsFiveChunksUnlessGiven) {
  EXPECT_EQ(GatewayFrom({"--meta=sqlite:/srv/m.db"}).memory_budget, 512u << 20);
  EXPECT_EQ(UpGatewayFrom({}).memory_budget, 80u << 20);
  EXPECT_EQ(UpGatewayFrom({"--chunk-size=1MiB"}).memory_budget, 16u << 20);
  EXPECT_EQ(UpGatewayFrom({"--memory-budget=200MiB"}).memory_budget, 200u << 20);
  EXPECT_EQ(GatewayFrom({"--meta=sqlite:/srv/m.db", "--memory-budget=auto"}).memory_budget,
            80u << 20);
}

TEST(DaemonFlagsTest, UpCachesTagsByDefaultAndTakesTheFlag) {
  EXPECT_FALSE(GatewayFrom({"--meta=sqlite:/srv/m.db"}).lookup_cache.tags);
  EXPECT_TRUE(UpGatewayFrom({}).lookup_cache.tags);
  EXPECT_FALSE(UpGatewayFrom({"--lookup-cache-tags=off"}).lookup_cache.tags);
}

TEST(DaemonFlagsTest, EachGatewayFlagGivenToUpReachesItsGateway) {
  const std::string defaults = Describe(GatewayFrom({"--meta=sqlite:/srv/m.db"}));
  for (const auto& [flag, value] : Samples()) {
    std::vector<std::string> args = ArgsFor(flag);
    const std::string gateway = Describe(GatewayFrom(args));
    EXPECT_NE(gateway, defaults) << flag << " " << value << " changes nothing in wharf gateway";
    EXPECT_EQ(Describe(UpGatewayFrom(args)), AsUp(gateway)) << "wharf up " << flag << " " << value;
  }
}

TEST(DaemonFlagsTest, EveryGatewayKeyInUpsConfigFileReachesItsGateway) {
  char tmpl[] = "/tmp/wharf_daemon_flags_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/up.yaml";
  std::vector<std::string> flags;
  {
    std::ofstream yaml(path);
    for (const auto& [flag, value] : Samples()) {
      if (flag == "--policy") continue;  // round_robin and named --group together
      std::string key = flag.substr(2);
      std::replace(key.begin(), key.end(), '-', '_');
      yaml << key << ": " << (value.empty() ? "true" : "\"" + value + "\"") << "\n";
      flags.push_back(value.empty() ? flag : flag + "=" + value);
    }
  }
  const std::string from_flags = Describe(GatewayFrom(flags));
  EXPECT_EQ(Describe(UpGatewayFrom({"--config", path})), AsUp(from_flags));
  fs::remove_all(tmpl);
}

TEST(DaemonFlagsTest, SiteWriteIsSyncByDefaultAndAsyncNeedsAnUpstream) {
  EXPECT_FALSE(
      GatewayFrom({"--meta=sqlite:/srv/m.db", "--site-upstream=http://c:5000"}).site_write_async);
  EXPECT_FALSE(UpGatewayFrom({"--site-upstream=http://c:5000"}).site_write_async);
  EXPECT_TRUE(GatewayFrom({"--meta=sqlite:/srv/m.db", "--site-upstream=http://c:5000",
                           "--site-write=async"})
                  .site_write_async);
  EXPECT_TRUE(
      UpGatewayFrom({"--site-upstream=http://c:5000", "--site-write", "async"}).site_write_async);
  EXPECT_FALSE(
      GatewayFrom({"--meta=sqlite:/srv/m.db", "--site-upstream=http://c:5000", "--site-write=sync"})
          .site_write_async);
  // async without an upstream has nowhere to ship to: refused with the reason.
  {
    CLI::App app;
    GatewayCommandFlags f;
    AddGatewayCommandFlags(app, &f);
    ASSERT_EQ(
        ParseCommandLine(app, "gateway",
                         {"--master=127.0.0.1:7700", "--meta=sqlite:/m.db", "--site-write=async"}),
        std::nullopt);
    Status st = FinishGatewayFlags(f.gateway, &f.o);
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
    EXPECT_NE(st.message().find("--site-write async needs --site-upstream"), std::string::npos)
        << st.ToString();
  }
  {
    CLI::App app;
    UpFlags f;
    AddUpFlags(app, &f);
    ASSERT_EQ(ParseCommandLine(app, "up", {"--site-write=async"}), std::nullopt);
    EXPECT_EQ(FinishUpFlags(&f).code(), Code::kInvalidArgument);
  }
  // Anything but sync and async is a usage error of both commands.
  for (const char* role : {"gateway", "up"}) {
    for (const char* value : {"ASYNC", "later", ""}) {
      CLI::App app;
      GatewayCommandFlags gf;
      UpFlags uf;
      if (role == std::string("gateway")) {
        AddGatewayCommandFlags(app, &gf);
      } else {
        AddUpFlags(app, &uf);
      }
      EXPECT_EQ(
          ParseCommandLine(app, role,
                           {"--site-upstream=http://c:5000", std::string("--site-write=") + value}),
          2)
          << role << " --site-write=" << value;
    }
  }
}

// The status FinishGatewayFlags / FinishUpFlags give `role ARGS` (the parse itself passes).
Status FinishedStatus(const std::string& role, std::vector<std::string> args) {
  CLI::App app;
  GatewayCommandFlags gf;
  UpFlags uf;
  if (role == "gateway") {
    AddGatewayCommandFlags(app, &gf);
    args.push_back("--master=127.0.0.1:7700");
    args.push_back("--meta=sqlite:/m.db");
  } else {
    AddUpFlags(app, &uf);
  }
  EXPECT_EQ(ParseCommandLine(app, role, args), std::nullopt);
  return role == "gateway" ? FinishGatewayFlags(gf.gateway, &gf.o) : FinishUpFlags(&uf);
}

TEST(DaemonFlagsTest, ProxyFlagsMakeOneEntryPerNameAndBadOnesAreOneLine) {
  for (const GatewayOptions& o :
       {GatewayFrom({"--meta=sqlite:/srv/m.db", "--proxy=hub=http://127.0.0.1:1", "--proxy",
                     "hub=http://127.0.0.1:2", "--proxy=quay=https://quay.io",
                     "--proxy-user=quay=bob", "--proxy-serve-stale", "--proxy-tag-ttl=5s"}),
        UpGatewayFrom({"--proxy=hub=http://127.0.0.1:1", "--proxy", "hub=http://127.0.0.1:2",
                       "--proxy=quay=https://quay.io", "--proxy-user=quay=bob",
                       "--proxy-serve-stale", "--proxy-tag-ttl=5s"})}) {
    ASSERT_EQ(o.proxies.size(), 2u);
    EXPECT_EQ(o.proxies[0].name, "hub");
    EXPECT_EQ(o.proxies[0].urls,
              (std::vector<std::string>{"http://127.0.0.1:1", "http://127.0.0.1:2"}));
    EXPECT_EQ(o.proxies[1].user, "bob");
    EXPECT_TRUE(o.proxy_serve_stale);
    EXPECT_EQ(o.proxy_tag_ttl, std::chrono::seconds(5));
  }
  EXPECT_TRUE(GatewayFrom({"--meta=sqlite:/srv/m.db"}).proxies.empty());
  EXPECT_EQ(GatewayFrom({"--meta=sqlite:/srv/m.db"}).proxy_tag_ttl, std::chrono::seconds(30));
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--proxy=hub"}, "--proxy: want NAME=VALUE"},
      {{"--proxy=Hub=http://h:1"}, "not a repository name"},
      {{"--proxy=hub=ftp://h:1"}, "want NAME=http://HOST:PORT"},
      {{"--proxy=hub=http://h:1", "--proxy=hub/x=http://h:2"}, "clashes with 'hub'"},
      {{"--proxy=hub=http://h:1", "--proxy-user=quay=bob"}, "no --proxy quay=URL"},
      {{"--proxy=hub=http://h:1", "--proxy-password-file=hub=/pw"}, "needs --proxy-user"},
      {{"--proxy-ca=hub=/ca.pem"}, "--proxy-ca hub=/ca.pem: no --proxy hub=URL"},
      {{"--proxy-serve-stale"}, "--proxy-serve-stale needs --proxy"},
  };
  for (const char* role : {"gateway", "up"}) {
    for (const auto& [args, want] : bad) {
      Status st = FinishedStatus(role, args);
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << role << " " << args[0];
      EXPECT_NE(st.message().find(want), std::string::npos) << role << " " << st.ToString();
      EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.ToString();
    }
  }
}

// The site cache's watermarks: percentages 0 < x < 100, low under high, both or neither, and
// only in site mode; refused with one line naming the flag.
TEST(DaemonFlagsTest, SiteCacheWatermarks) {
  const std::string up = "--site-upstream=http://c:5000";
  GatewayOptions off = GatewayFrom({"--meta=sqlite:/srv/m.db", up});
  EXPECT_EQ(off.site_cache_low_percent, 0);
  EXPECT_EQ(off.site_cache_high_percent, 0);
  GatewayOptions on = GatewayFrom(
      {"--meta=sqlite:/srv/m.db", up, "--site-cache-low=10%", "--site-cache-high=20.5%"});
  EXPECT_EQ(on.site_cache_low_percent, 10);
  EXPECT_EQ(on.site_cache_high_percent, 20.5);
  EXPECT_EQ(UpGatewayFrom({up, "--site-cache-low", "5%", "--site-cache-high", "15%"})
                .site_cache_high_percent,
            15);
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--site-cache-low=10%", "--site-cache-high=20%"}, "need --site-upstream"},
      {{up, "--site-cache-low=10%"}, "go together"},
      {{up, "--site-cache-high=20%"}, "go together"},
      {{up, "--site-cache-low=20%", "--site-cache-high=20%"}, "must be under --site-cache-high"},
      {{up, "--site-cache-low=30%", "--site-cache-high=20%"}, "must be under --site-cache-high"},
      {{up, "--site-cache-low=0%", "--site-cache-high=20%"}, "--site-cache-low: want"},
      {{up, "--site-cache-low=10%", "--site-cache-high=100%"}, "--site-cache-high: want"},
      {{up, "--site-cache-low=10", "--site-cache-high=20%"}, "--site-cache-low: want"},
      {{up, "--site-cache-low=1GiB", "--site-cache-high=20%"}, "--site-cache-low: want"},
      {{up, "--site-cache-low=ten%", "--site-cache-high=20%"}, "--site-cache-low: want"},
  };
  for (const auto& [args, want] : bad) {
    CLI::App app;
    GatewayCommandFlags f;
    AddGatewayCommandFlags(app, &f);
    std::vector<std::string> full = args;
    full.push_back("--master=127.0.0.1:7700");
    full.push_back("--meta=sqlite:/m.db");
    ASSERT_EQ(ParseCommandLine(app, "gateway", full), std::nullopt);
    Status st = FinishGatewayFlags(f.gateway, &f.o);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << fmt::format("{}", fmt::join(args, " "));
    EXPECT_NE(st.message().find(want), std::string::npos) << st.ToString();
    EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.ToString();
    CLI::App up_app;
    UpFlags uf;
    AddUpFlags(up_app, &uf);
    ASSERT_EQ(ParseCommandLine(up_app, "up", args), std::nullopt);
    EXPECT_EQ(FinishUpFlags(&uf).code(), Code::kInvalidArgument);
  }
}

TEST(DaemonFlagsTest, OutOfRangeValuesAreRefused) {
  const std::vector<std::vector<std::string>> bad = {
      {"--inflight", "0"},        {"--inflight", "65"},          {"--chunk-size", "2TiB"},
      {"--chunk-size", "1.5MiB"}, {"--upload-expiry", "0"},      {"--writable-wait", "11m"},
      {"--policy", "fastest"},    {"--max-manifest", "0"},       {"--token-ttl", "banana"},
      {"--gc-grace", "-1s"},      {"--max-login-failures", "0"}, {"--listen", "nonsense"},
      {"--log-level", "loud"},
  };
  for (const auto& args : bad) {
    for (const char* role : {"gateway", "up"}) {
      CLI::App app;
      GatewayCommandFlags gf;
      UpFlags uf;
      if (role == std::string("gateway")) {
        AddGatewayCommandFlags(app, &gf);
      } else {
        AddUpFlags(app, &uf);
      }
      EXPECT_EQ(ParseCommandLine(app, role, {args[0] + "=" + args[1]}), 2)
          << role << " " << args[0] << "=" << args[1];
    }
  }
}

TEST(DaemonFlagsTest, ConfigReferenceListsEveryFlagOfEveryDaemon) {
  const std::string doc = ConfigReferenceMarkdown();
  CLI::App apps[4];
  MasterFlags mf;
  ChunkserverFlags cf;
  GatewayCommandFlags gf;
  UpFlags uf;
  AddMasterFlags(apps[0], &mf);
  AddChunkserverFlags(apps[1], &cf);
  AddGatewayCommandFlags(apps[2], &gf);
  AddUpFlags(apps[3], &uf);
  for (auto& app : apps) {
    for (const std::string& name : OptionNames(app)) {
      if (name == "--help") continue;
      EXPECT_NE(doc.find("| `" + name + "` |"), std::string::npos) << name;
    }
  }
  EXPECT_NE(doc.find("| `--inflight` | `inflight` | `4` | INT 1..64 |"), std::string::npos);
  EXPECT_NE(doc.find("SIZE 4KiB..1GiB"), std::string::npos);
}

}  // namespace
}  // namespace wharf::cli

namespace wharf::cli {
namespace {

// The validators take whatever an operator typed (or a YAML file holds).
TEST(FlagChecksTest, HostileValuesAreRefusedWithAReason) {
  auto refuses = [](const CLI::Validator& v, std::string s) {
    std::string copy = s;
    return !v(copy).empty();
  };
  const CLI::Validator size = SizeIn(4096, 1u << 30);
  const std::vector<std::string> bad_sizes = {
      "",  "-1",     "4KB",  "1.5MiB", "16mb", "99999999999999999999999", "1EiB",
      " ", "0x1000", "4K\n", "2GiB",   "4095", std::string("4K\0", 3)};
  for (const std::string& s : bad_sizes) {
    EXPECT_TRUE(refuses(size, s)) << "size " << s;
  }
  EXPECT_FALSE(refuses(size, "4KiB"));
  EXPECT_FALSE(refuses(size, "1GiB"));
  const CLI::Validator in = IntIn(1, 64);
  for (std::string s : {"", "+", "-", "0", "65", "1x", " 1", "1.0", "99999999999999999999999"}) {
    EXPECT_TRUE(refuses(in, s)) << "int " << s;
  }
  EXPECT_FALSE(refuses(in, "64"));
  const CLI::Validator d = DurationIn(std::chrono::milliseconds(10), std::chrono::hours(1));
  for (std::string s : {"", "ms", "-1s", "1ms", "2h", "1e400", "nan", "inf", "5 s"}) {
    EXPECT_TRUE(refuses(d, s)) << "duration " << s;
  }
  EXPECT_FALSE(refuses(d, "10ms"));
  EXPECT_FALSE(refuses(d, "1h"));
  const CLI::Validator above = NumberAbove(1.5);
  for (std::string s : {"", "1.5", "nan", "-inf", "2x"}) EXPECT_TRUE(refuses(above, s)) << s;
  EXPECT_FALSE(refuses(above, "1.6"));
  EXPECT_TRUE(refuses(OneOf({"a", "b"}), "A"));
  EXPECT_TRUE(refuses(ReserveValue(), "101%"));
  EXPECT_TRUE(refuses(ReserveValue(), "%"));
  EXPECT_TRUE(refuses(HostPort(), "host"));
  EXPECT_TRUE(refuses(HostPort(), "host:99999"));
  EXPECT_EQ(SizeText(16u << 20), "16MiB");
  EXPECT_EQ(SizeText(1000), "1000");
  EXPECT_EQ(DurationText(std::chrono::milliseconds(90'000)), "90s");
  EXPECT_EQ(DurationText(std::chrono::hours(24)), "24h");
}

}  // namespace
}  // namespace wharf::cli

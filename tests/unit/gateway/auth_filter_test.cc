// The gateway's auth filter without a server: which access each route needs, and what hostile
// Authorization headers get (a 401, never a 500 or a crash).
#include "gateway/auth_filter.h"

#include <gtest/gtest.h>

#include <fstream>

#include "auth/base64.h"
#include "auth/credentials.h"
#include "gateway/auth_token.h"
#include "unit/auth/test_files.h"
#include "unit/auth/test_keys.h"

namespace wharf {
namespace {

using auth::Action;
using auth::Scope;
using Kind = RequiredAccess::Kind;

constexpr char kHtpasswd[] =
    "alice:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK\n";  // password "secret"
constexpr char kPolicy[] = R"(
rules:
  - repositories: ["a/*"]
    users: [alice]
    actions: [pull, push]
  - repositories: ["public/**"]
    anonymous: true
    actions: [pull]
  - repositories: ["ci/*"]
    users: ["cert:CN=ci-bot"]
    actions: [pull, push]
)";

Scope Repo(std::string name, std::vector<std::string> actions) {
  return Scope{"repository", "", std::move(name), std::move(actions)};
}

TEST(RequiredAccessTest, RegistryRoutesNeedTheSpecsActions) {
  using http::verb;
  struct Case {
    verb method;
    std::string path;
    Kind kind;
    std::string repo;
    Action action;
  };
  const std::vector<Case> cases = {
      {verb::get, "/v2/", Kind::kIdentity, "", Action::kPull},
      {verb::get, "/v2", Kind::kIdentity, "", Action::kPull},
      {verb::get, "/v2/_catalog", Kind::kCatalog, "", Action::kPull},
      {verb::get, "/v2/a/b/tags/list", Kind::kRepository, "a/b", Action::kPull},
      {verb::get, "/v2/a/manifests/latest", Kind::kRepository, "a", Action::kPull},
      {verb::head, "/v2/a/manifests/latest", Kind::kRepository, "a", Action::kPull},
      {verb::put, "/v2/a/manifests/latest", Kind::kRepository, "a", Action::kPush},
      {verb::delete_, "/v2/a/manifests/sha256:" + std::string(64, 'a'), Kind::kRepository, "a",
       Action::kDelete},
      {verb::get, "/v2/a/blobs/sha256:" + std::string(64, 'a'), Kind::kRepository, "a",
       Action::kPull},
      {verb::delete_, "/v2/a/blobs/sha256:" + std::string(64, 'a'), Kind::kRepository, "a",
       Action::kDelete},
      {verb::post, "/v2/a/blobs/uploads/", Kind::kRepository, "a", Action::kPush},
      {verb::patch, "/v2/a/blobs/uploads/" + std::string(32, 'f'), Kind::kRepository, "a",
       Action::kPush},
      {verb::get, "/v2/a/blobs/uploads/" + std::string(32, 'f'), Kind::kRepository, "a",
       Action::kPush},
      {verb::delete_, "/v2/a/blobs/uploads/" + std::string(32, 'f'), Kind::kRepository, "a",
       Action::kPush},
      {verb::get, "/v2/a/referrers/sha256:" + std::string(64, 'a'), Kind::kRepository, "a",
       Action::kPull},
      // A name that holds an endpoint's word is still a name.
      {verb::get, "/v2/x/blobs/y/manifests/1", Kind::kRepository, "x/blobs/y", Action::kPull},
      // Methods the handlers refuse with 405 still need push, so nobody learns from a 405.
      {verb::post, "/v2/a/manifests/latest", Kind::kRepository, "a", Action::kPush},
  };
  for (const Case& c : cases) {
    RequiredAccess need = RequiredAccessFor("registry", c.method, c.path);
    EXPECT_EQ(need.kind, c.kind) << c.path;
    EXPECT_EQ(need.repository, c.repo) << c.path;
    if (c.kind == Kind::kRepository) {
      EXPECT_EQ(need.action, c.action) << c.path;
    }
  }
}

TEST(RequiredAccessTest, ChallengeScopesAreWhatClientsAskFor) {
  auto scopes = [](http::verb method, std::string_view path, std::string_view from = {}) {
    return ChallengeScopes(RequiredAccessFor("registry", method, path, from));
  };
  EXPECT_EQ(scopes(http::verb::get, "/v2/team/app/tags/list"),
            (std::vector<Scope>{Repo("team/app", {"pull"})}));
  EXPECT_EQ(scopes(http::verb::post, "/v2/team/app/blobs/uploads/"),
            (std::vector<Scope>{Repo("team/app", {"pull", "push"})}));
  EXPECT_EQ(scopes(http::verb::delete_, "/v2/team/app/manifests/v1"),
            (std::vector<Scope>{Repo("team/app", {"delete"})}));
  EXPECT_EQ(scopes(http::verb::post, "/v2/team/app/blobs/uploads/", "lib/base"),
            (std::vector<Scope>{Repo("team/app", {"pull", "push"}), Repo("lib/base", {"pull"})}));
  // A `from` outside the name grammar, or the target itself, adds nothing to the challenge.
  EXPECT_EQ(scopes(http::verb::post, "/v2/a/blobs/uploads/", "Bad\",scope=\"x").size(), 1u);
  EXPECT_EQ(scopes(http::verb::post, "/v2/a/blobs/uploads/", "a").size(), 1u);
  std::vector<Scope> catalog{Scope{"registry", "", "catalog", {"*"}}};
  EXPECT_EQ(scopes(http::verb::get, "/v2/_catalog"), catalog);
  EXPECT_EQ(ChallengeScopes(RequiredAccessFor("ui", http::verb::get, "/ui/")), catalog);
  EXPECT_TRUE(ChallengeScopes(RequiredAccessFor("files", http::verb::get, "/files")).empty());
}

TEST(RequiredAccessTest, FilesOpsAndUnknownPaths) {
  EXPECT_EQ(RequiredAccessFor("files", http::verb::post, "/files").action, Action::kFilesWrite);
  EXPECT_EQ(RequiredAccessFor("files", http::verb::get, "/files/" + std::string(32, 'a')).action,
            Action::kFilesRead);
  EXPECT_EQ(
      RequiredAccessFor("files", http::verb::delete_, "/files/" + std::string(32, 'a')).action,
      Action::kFilesDelete);
  EXPECT_EQ(RequiredAccessFor("files", http::verb::get, "/files").action, Action::kFilesWrite);
  EXPECT_EQ(RequiredAccessFor("healthz", http::verb::get, "/healthz").kind, Kind::kNone);
  EXPECT_EQ(RequiredAccessFor("metrics", http::verb::get, "/metrics").kind, Kind::kNone);
  EXPECT_EQ(RequiredAccessFor("token", http::verb::get, "/v2/token").kind, Kind::kNone);
  EXPECT_EQ(RequiredAccessFor("", http::verb::get, "/nothing").kind, Kind::kNone);
  // Paths that name no endpoint are answered 404 by the handler: nothing to protect.
  EXPECT_EQ(RequiredAccessFor("registry", http::verb::get, "/v2/a/nothing").kind, Kind::kNone);
}

TEST(RequiredAccessTest, AdminViewsNeedTheAdminAction) {
  RequiredAccess need = RequiredAccessFor("admin", http::verb::get, "/admin/gc");
  EXPECT_EQ(need.kind, Kind::kAdmin);
  EXPECT_EQ(need.action, Action::kAdmin);
  EXPECT_EQ(RequiredAccessFor("admin", http::verb::post, "/admin/anything").kind, Kind::kAdmin);
}

TEST(RequiredAccessTest, WritesAndRemoteAddresses) {
  EXPECT_FALSE(IsWrite(http::verb::get));
  EXPECT_FALSE(IsWrite(http::verb::head));
  EXPECT_TRUE(IsWrite(http::verb::put));
  EXPECT_TRUE(IsWrite(http::verb::patch));
  EXPECT_TRUE(IsWrite(http::verb::delete_));
  EXPECT_TRUE(IsWrite(http::verb::post));
  EXPECT_EQ(RemoteAddress("10.1.2.3:5000"), "10.1.2.3");
  EXPECT_EQ(RemoteAddress("[::1]:80"), "::1");
  EXPECT_EQ(RemoteAddress("::1:80"), "::1");
  EXPECT_EQ(RemoteAddress("noport"), "noport");
}

TEST(QueryValuesTest, EveryValueDecoded) {
  std::string_view q = "service=reg&scope=repository%3Aa%2Fb%3Apull&scope=repository:c:push+x&x";
  EXPECT_EQ(QueryValues(q, "scope"),
            (std::vector<std::string>{"repository:a/b:pull", "repository:c:push x"}));
  EXPECT_EQ(QueryValues(q, "service"), std::vector<std::string>{"reg"});
  EXPECT_EQ(QueryValues(q, "x"), std::vector<std::string>{""});
  EXPECT_TRUE(QueryValues(q, "account").empty());
  EXPECT_TRUE(QueryValues("", "scope").empty());
}

class DecideAccessTest : public ::testing::Test {
 protected:
  DecideAccessTest() {
    auth::ReplaceFile(dir_.File("htpasswd"), kHtpasswd);
    auth::ReplaceFile(dir_.File("access.yaml"), kPolicy);
    auth::TestKeyPem key = auth::MakeEcKey();
    auth::ReplaceFile(dir_.File("key.pem"), key.private_pem);
  }
  std::unique_ptr<GatewayAuth> Load(bool tokens, uint32_t max_failures = 100) {
    GatewayAuthOptions o;
    o.htpasswd = dir_.File("htpasswd");
    o.access = dir_.File("access.yaml");
    if (tokens) {
      o.token_key = dir_.File("key.pem");
      o.token_service = "registry.test";
    }
    o.max_login_failures = max_failures;
    auto g = GatewayAuth::Load(o);
    EXPECT_TRUE(g.has_value()) << g.error().ToString();
    return std::move(*g);
  }
  AuthAnswer Decide(const GatewayAuth& g, std::string_view authorization,
                    http::verb method = http::verb::get,
                    std::string_view path = "/v2/a/x/manifests/latest") {
    return DecideAccess(g.authenticator(), RequiredAccessFor("registry", method, path),
                        authorization, "10.0.0.1", "http://reg.example:5000");
  }
  auth::TempDir dir_;
};

TEST_F(DecideAccessTest, BaseEndpointWantsAnIdentity) {
  auto g = Load(false);
  AuthAnswer a = Decide(*g, "", http::verb::get, "/v2/");
  EXPECT_FALSE(a.proceed);
  EXPECT_EQ(a.status, 401u);
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(a.headers[0].second, "Basic realm=\"wharf\"");
  AuthAnswer ok =
      Decide(*g, auth::FormatBasicAuthorization("alice", "secret"), http::verb::get, "/v2/");
  EXPECT_TRUE(ok.proceed);
  EXPECT_EQ(ok.decision.caller.principal.name, "alice");
}

TEST_F(DecideAccessTest, BearerChallengeNamesThisGatewaysTokenRealmAndTheScope) {
  auto g = Load(true);
  AuthAnswer a = Decide(*g, "", http::verb::put, "/v2/team/app/manifests/v1");
  EXPECT_EQ(a.status, 401u);
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].second,
            "Bearer realm=\"http://reg.example:5000/v2/token\",service=\"registry.test\","
            "scope=\"repository:team/app:pull,push\"");
  // Over TLS (or behind a TLS proxy) the realm is https: clients fetch the token there.
  AuthAnswer tls =
      DecideAccess(g->authenticator(), RequiredAccessFor("registry", http::verb::get, "/v2/"), "",
                   "10.0.0.1", "https://reg.example");
  EXPECT_EQ(tls.headers[0].second,
            "Bearer realm=\"https://reg.example/v2/token\",service=\"registry.test\"");
  // No base (a Host fit for no URL): the realm is relative.
  AuthAnswer odd =
      DecideAccess(g->authenticator(), RequiredAccessFor("registry", http::verb::get, "/v2/"), "",
                   "10.0.0.1", "");
  EXPECT_EQ(odd.headers[0].second, "Bearer realm=\"/v2/token\",service=\"registry.test\"");
}

// A verified TLS client certificate is an identity the policy names "cert:<subject>".
TEST_F(DecideAccessTest, ClientCertificateSubjectIsAnIdentity) {
  auto g = Load(false);
  auto need = RequiredAccessFor("registry", http::verb::put, "/v2/ci/app/manifests/v1");
  AuthAnswer a = DecideAccess(g->authenticator(), need, "", "10.0.0.1", "reg", "CN=ci-bot");
  EXPECT_TRUE(a.proceed);
  AuthAnswer other = DecideAccess(g->authenticator(), need, "", "10.0.0.1", "reg", "CN=intruder");
  EXPECT_FALSE(other.proceed);
  AuthAnswer none = DecideAccess(g->authenticator(), need, "", "10.0.0.1", "reg");
  EXPECT_EQ(none.status, 401u);
}

TEST_F(DecideAccessTest, PolicyDecidesDeniedAndAnonymous) {
  auto g = Load(false);
  std::string alice = auth::FormatBasicAuthorization("alice", "secret");
  EXPECT_TRUE(Decide(*g, alice, http::verb::put, "/v2/a/x/manifests/v1").proceed);
  AuthAnswer denied = Decide(*g, alice, http::verb::put, "/v2/b/x/manifests/v1");
  EXPECT_EQ(denied.status, 403u);
  EXPECT_EQ(denied.error, OciError::kDenied);
  EXPECT_TRUE(Decide(*g, "", http::verb::get, "/v2/public/x/manifests/v1").proceed);
  AuthAnswer anon = Decide(*g, "", http::verb::get, "/v2/a/x/manifests/v1");
  EXPECT_EQ(anon.status, 401u);
  EXPECT_EQ(anon.error, OciError::kUnauthorized);
  AuthAnswer wrong = Decide(*g, auth::FormatBasicAuthorization("alice", "nope"));
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_EQ(wrong.decision.failure, "bad_password");
}

// The status page: an anonymous caller sees it only where the policy lets anonymous callers
// pull something (the page then lists only that); otherwise the usual 401 challenge.
TEST_F(DecideAccessTest, StatusPageWantsACallerWhoMayPullSomewhere) {
  RequiredAccess need = RequiredAccessFor("ui", http::verb::get, "/ui/");
  EXPECT_EQ(need.kind, Kind::kStatusPage);
  auto g = Load(false);  // kPolicy: anonymous may pull public/**
  EXPECT_TRUE(DecideAccess(g->authenticator(), need, "", "10.0.0.1", "reg").proceed);

  auth::ReplaceFile(dir_.File("access.yaml"), R"(
rules:
  - repositories: ["a/*"]
    users: [alice]
    actions: [pull]
  - repositories: ["**"]
    anonymous: true
    actions: [push]
  - anonymous: true
    actions: [files:read]
)");
  auto closed = Load(false);
  AuthAnswer anon = DecideAccess(closed->authenticator(), need, "", "10.0.0.1", "reg");
  EXPECT_FALSE(anon.proceed);
  EXPECT_EQ(anon.status, 401u);
  ASSERT_EQ(anon.headers.size(), 1u);
  EXPECT_EQ(anon.headers[0].second, "Basic realm=\"wharf\"");
  AuthAnswer alice =
      DecideAccess(closed->authenticator(), need, auth::FormatBasicAuthorization("alice", "secret"),
                   "10.0.0.1", "reg");
  EXPECT_TRUE(alice.proceed);
  EXPECT_EQ(alice.decision.caller.principal.name, "alice");
  AuthAnswer wrong =
      DecideAccess(closed->authenticator(), need, auth::FormatBasicAuthorization("alice", "nope"),
                   "10.0.0.1", "reg");
  EXPECT_EQ(wrong.status, 401u);
}

TEST_F(DecideAccessTest, HostileAuthorizationHeadersAreA401) {
  auto g = Load(true);
  auto b64 = [](std::string_view s) { return auth::Base64UrlEncode(s); };
  std::string header = b64(R"({"alg":"ES256","typ":"JWT"})");
  std::vector<std::string> hostile = {
      "Basic " + std::string(64 * 1024, 'A'),
      "Bearer " + std::string(64 * 1024, 'a'),
      std::string(64 * 1024, 'x'),
      "Basic !!!not-base64!!!",
      "Basic " + auth::Base64UrlEncode("no-colon"),
      "Basic =",
      "Basic",
      "Bearer",
      "Bearer a.b",
      "Bearer " + header + "." + b64("{}"),
      "Bearer a.b.c.d.e.f.g.h.i",
      "Bearer " + header + "." + b64("{not json") + "." + b64("sig"),
      "Bearer " + b64("{not json") + "." + b64("{}") + "." + b64("sig"),
      "Bearer " + b64(R"({"alg":"none"})") + "." + b64(R"({"sub":"alice"})") + ".",
      "Bearer " + header + "." + b64(R"({"sub":"alice","exp":"soon","access":7})") + "." +
          b64("sig"),
      "Bearer " + b64("[1,2,3]") + "." + b64("null") + "." + b64(std::string(64, '\0')),
      "Negotiate abc",
      std::string("Basic \0\0\0", 9),
  };
  for (const std::string& h : hostile) {
    AuthAnswer a = Decide(*g, h);
    EXPECT_FALSE(a.proceed) << h.substr(0, 80);
    EXPECT_EQ(a.status, 401u) << h.substr(0, 80);
    EXPECT_EQ(a.error, OciError::kUnauthorized);
    EXPECT_FALSE(a.decision.failure.empty()) << h.substr(0, 80);
  }
}

TEST_F(DecideAccessTest, TooManyFailuresFromOneAddressAreThrottled) {
  auto g = Load(false, 3);
  std::string wrong = auth::FormatBasicAuthorization("alice", "wrong");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Decide(*g, wrong).status, 401u);
  AuthAnswer a = Decide(*g, auth::FormatBasicAuthorization("alice", "secret"));
  EXPECT_EQ(a.status, 429u);
  EXPECT_EQ(a.error, OciError::kTooManyRequests);
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].first, "Retry-After");
  EXPECT_GE(std::stoi(a.headers[0].second), 1);
  // Another address is not held back.
  AuthAnswer other = DecideAccess(
      g->authenticator(), RequiredAccessFor("registry", http::verb::get, "/v2/a/x/tags/list"),
      auth::FormatBasicAuthorization("alice", "secret"), "10.0.0.2", "h");
  EXPECT_TRUE(other.proceed);
}

TEST_F(DecideAccessTest, BadFilesStopTheStartWithOneLine) {
  auth::ReplaceFile(dir_.File("weak"), "bob:$apr1$abcdefgh$0123456789012345678901\n");
  GatewayAuthOptions o;
  o.htpasswd = dir_.File("weak");
  auto g = GatewayAuth::Load(o);
  ASSERT_FALSE(g.has_value());
  EXPECT_NE(g.error().message().find("--htpasswd"), std::string::npos) << g.error().ToString();
  EXPECT_NE(g.error().message().find("bob"), std::string::npos) << g.error().ToString();
  EXPECT_EQ(g.error().message().find('\n'), std::string::npos);

  o = GatewayAuthOptions{};
  o.access = dir_.File("missing.yaml");
  EXPECT_FALSE(GatewayAuth::Load(o).has_value());

  o = GatewayAuthOptions{};
  auth::ReplaceFile(dir_.File("bad.yaml"), "rules: [{repositories: ['a'], actions: [pul]}]\n");
  o.access = dir_.File("bad.yaml");
  auto p = GatewayAuth::Load(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message().find("--access"), std::string::npos) << p.error().ToString();

  o = GatewayAuthOptions{};
  o.token_public_keys = {dir_.File("key.pem")};
  EXPECT_FALSE(GatewayAuth::Load(o).has_value());  // no --token-issuer/--token-service
  o.token_issuer = "auth.example";
  o.token_service = "reg";
  EXPECT_FALSE(GatewayAuth::Load(o).has_value());  // no --auth-realm
  o.realm = "https://auth.example/token";
  EXPECT_TRUE(GatewayAuth::Load(o).has_value());
  o.token_public_keys = {dir_.File("htpasswd")};
  auto k = GatewayAuth::Load(o);
  ASSERT_FALSE(k.has_value());
  EXPECT_NE(k.error().message().find("--token-public-key"), std::string::npos)
      << k.error().ToString();
}

}  // namespace
}  // namespace wharf

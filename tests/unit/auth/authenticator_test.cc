#include "auth/authenticator.h"

#include <gtest/gtest.h>

#include <string>

#include "auth/credentials.h"
#include "test_files.h"
#include "test_keys.h"

namespace wharf::auth {
namespace {

using std::chrono::seconds;

constexpr char kHtpasswd[] =
    "alice:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK\n";  // password "secret"
constexpr char kPolicy[] = R"(
rules:
  - repositories: ["team/*"]
    users: [alice, "cert:CN=ci-bot"]
    actions: [pull, push]
  - repositories: ["public/**"]
    anonymous: true
    actions: [pull]
)";

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest() {
    ReplaceFile(dir_.File("htpasswd"), kHtpasswd);
    ReplaceFile(dir_.File("access.yaml"), kPolicy);
    htpasswd_ = std::make_shared<HtpasswdFile>(dir_.File("htpasswd"), &Htpasswd::Parse);
    policy_ = std::make_shared<AccessPolicyFile>(dir_.File("access.yaml"), &AccessPolicy::Parse);
    EXPECT_TRUE(htpasswd_->Load().ok());
    EXPECT_TRUE(policy_->Load().ok());
    TestKeyPem key = MakeEcKey();
    auto clock = [] { return std::chrono::system_clock::time_point(seconds(1764626700)); };
    issuer_ = std::move(*TokenIssuer::Create({"wharf", seconds(300), clock},
                                             std::move(*LoadJwsKeyPem(key.private_pem))));
    std::vector<JwsKey> keys;
    keys.push_back(std::move(*LoadJwsKeyPem(key.public_pem)));
    tokens_ = std::shared_ptr<TokenVerifier>(std::move(*TokenVerifier::Create(
        {"wharf", "registry.test", seconds(60), 16, clock}, std::move(keys))));
  }
  Authenticator Make(bool with_policy = true, std::string token_realm = "",
                     uint32_t max_failures = 100) {
    ThrottleOptions t;
    t.max_failures = max_failures;
    t.clock = [this] { return steady_now_; };
    throttle_ = std::make_shared<LoginThrottle>(t);
    AuthenticatorParts p;
    p.htpasswd = htpasswd_;
    p.tokens = tokens_;
    if (with_policy) p.policy = policy_;
    p.throttle = throttle_;
    p.token_realm = std::move(token_realm);
    p.service = "registry.test";
    return Authenticator(std::move(p));
  }
  static AuthRequest Req(std::string_view authorization, std::string_view repo, Action action) {
    AuthRequest r;
    r.authorization = authorization;
    r.remote = "10.0.0.9";
    r.repository = repo;
    r.action = action;
    return r;
  }

  TempDir dir_;
  std::shared_ptr<HtpasswdFile> htpasswd_;
  std::shared_ptr<AccessPolicyFile> policy_;
  std::shared_ptr<LoginThrottle> throttle_;
  std::shared_ptr<TokenVerifier> tokens_;
  std::unique_ptr<TokenIssuer> issuer_;
  std::chrono::steady_clock::time_point steady_now_{seconds(100)};
};

TEST_F(AuthenticatorTest, BasicUsersGetWhatThePolicyGrants) {
  Authenticator auth = Make();
  std::string alice = FormatBasicAuthorization("alice", "secret");
  Decision ok = auth.Authorize(Req(alice, "team/app", Action::kPush));
  EXPECT_EQ(ok.verdict, Verdict::kAllow);
  EXPECT_EQ(ok.caller.principal.name, "alice");
  EXPECT_EQ(ok.failure, "");
  EXPECT_EQ(auth.Authorize(Req(alice, "other/app", Action::kPull)).verdict, Verdict::kDenied);
  EXPECT_EQ(auth.Authorize(Req(alice, "team/app", Action::kDelete)).verdict, Verdict::kDenied);

  Decision wrong =
      auth.Authorize(Req(FormatBasicAuthorization("alice", "nope"), "team/app", Action::kPull));
  EXPECT_EQ(wrong.verdict, Verdict::kUnauthorized);
  EXPECT_EQ(wrong.failure, "bad_password");
  EXPECT_EQ(wrong.challenge, R"(Basic realm="wharf")");
  Decision ghost =
      auth.Authorize(Req(FormatBasicAuthorization("ghost", "x"), "public/a", Action::kPull));
  EXPECT_EQ(ghost.failure, "unknown_user");
  EXPECT_EQ(auth.Authorize(Req("Basic !!!", "public/a", Action::kPull)).failure, "malformed");
  EXPECT_EQ(auth.Authorize(Req("Digest x", "public/a", Action::kPull)).failure,
            "unsupported_scheme");
}

TEST_F(AuthenticatorTest, AnonymousAndCertificateCallers) {
  Authenticator auth = Make(true, "https://host/v2/token");
  EXPECT_EQ(auth.Authorize(Req("", "public/a/b", Action::kPull)).verdict, Verdict::kAllow);
  AuthRequest push = Req("", "public/a", Action::kPush);
  push.scopes = *ParseScopes({"repository:public/a:push"});
  Decision d = auth.Authorize(push);
  EXPECT_EQ(d.verdict, Verdict::kUnauthorized);  // anonymous: a challenge, not a 403
  EXPECT_EQ(d.failure, "");
  EXPECT_EQ(d.challenge, R"(Bearer realm="https://host/v2/token",service="registry.test",)"
                         R"(scope="repository:public/a:push")");
  AuthRequest cert = Req("", "team/x", Action::kPush);
  cert.cert_subject = "CN=ci-bot";
  Decision c = auth.Authorize(cert);
  EXPECT_EQ(c.verdict, Verdict::kAllow);
  EXPECT_EQ(c.caller.principal.name, "cert:CN=ci-bot");
}

TEST_F(AuthenticatorTest, EmptyBasicCredentialsAreAnonymous) {
  // podman and skopeo send "Basic Og==" (":") when they have no credentials.
  Authenticator auth = Make();
  for (std::string_view h : {"Basic Og==", "basic  Og==  "}) {
    Decision d = auth.Authorize(Req(h, "public/a", Action::kPull));
    EXPECT_EQ(d.verdict, Verdict::kAllow) << h;
    EXPECT_TRUE(d.caller.principal.anonymous());
    EXPECT_EQ(d.failure, "");
    EXPECT_EQ(auth.Authorize(Req(h, "team/a", Action::kPull)).verdict, Verdict::kUnauthorized);
  }
  // A user with an empty password is a login that fails, not anonymous.
  Decision d =
      auth.Authorize(Req(FormatBasicAuthorization("alice", ""), "public/a", Action::kPull));
  EXPECT_EQ(d.verdict, Verdict::kUnauthorized);
  EXPECT_EQ(d.failure, "bad_password");
}

TEST_F(AuthenticatorTest, BearerCallersGetWhatTheirTokenGrants) {
  Authenticator auth = Make(true, "https://host/v2/token");
  auto issued = issuer_->Issue("bob", "registry.test", {{"repository", "a/x", {"pull", "push"}}});
  std::string bearer = "Bearer " + issued->token;
  Decision ok = auth.Authorize(Req(bearer, "a/x", Action::kPush));
  EXPECT_EQ(ok.verdict, Verdict::kAllow);
  EXPECT_EQ(ok.caller.principal.name, "bob");
  ASSERT_NE(ok.caller.token, nullptr);
  // A token for a/x pushing to b/x: 403, whatever the policy says about bob.
  EXPECT_EQ(auth.Authorize(Req(bearer, "b/x", Action::kPush)).verdict, Verdict::kDenied);
  EXPECT_EQ(auth.Authorize(Req(bearer, "a/x", Action::kDelete)).verdict, Verdict::kDenied);
  Decision bad = auth.Authorize(Req(bearer + "x", "a/x", Action::kPull));
  EXPECT_EQ(bad.verdict, Verdict::kUnauthorized);
  EXPECT_EQ(bad.failure, "bad_token");
  EXPECT_NE(bad.challenge.find(R"(,error="invalid_token")"), std::string::npos);
  for (std::string hostile :
       std::vector<std::string>{"Bearer a.b", "Bearer a.b.c.d.e.f.g.h.i",
                                "Bearer " + std::string(70000, 'a'), "Bearer !!"}) {
    EXPECT_EQ(auth.Authorize(Req(hostile, "a/x", Action::kPull)).verdict, Verdict::kUnauthorized);
  }
  // A token with characters outside token68 is named malformed (the check runs after the
  // verifier refused it), a well-formed stranger a bad token; neither is ever a cache hit.
  EXPECT_EQ(auth.Authorize(Req("Bearer !!", "a/x", Action::kPull)).failure, "malformed");
  EXPECT_EQ(auth.Authorize(Req(bearer + "!", "a/x", Action::kPull)).failure, "malformed");
  EXPECT_EQ(auth.Authorize(Req("Bearer a.b", "a/x", Action::kPull)).failure, "bad_token");
  EXPECT_EQ(auth.Authorize(Req(bearer, "a/x", Action::kPull)).verdict, Verdict::kAllow);
}

TEST_F(AuthenticatorTest, FailuresAreThrottledPerAddress) {
  Authenticator auth = Make(true, "", 3);
  std::string wrong = FormatBasicAuthorization("alice", "nope");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(auth.Authorize(Req(wrong, "team/a", Action::kPull)).verdict, Verdict::kUnauthorized);
  }
  // Even the right password waits now: the throttle answers before the check.
  Decision t =
      auth.Authorize(Req(FormatBasicAuthorization("alice", "secret"), "team/a", Action::kPull));
  EXPECT_EQ(t.verdict, Verdict::kThrottled);
  EXPECT_EQ(t.retry_after, seconds(60));
  EXPECT_EQ(t.failure, "throttled");
  std::string right = FormatBasicAuthorization("alice", "secret");
  AuthRequest other = Req(right, "team/a", Action::kPull);  // the request holds views
  other.remote = "10.0.0.10";
  EXPECT_EQ(auth.Authorize(other).verdict, Verdict::kAllow);
  EXPECT_EQ(auth.Authorize(Req("", "public/a", Action::kPull)).verdict, Verdict::kAllow);
  steady_now_ += seconds(60);
  EXPECT_EQ(
      auth.Authorize(Req(FormatBasicAuthorization("alice", "secret"), "team/a", Action::kPull))
          .verdict,
      Verdict::kAllow);
}

TEST_F(AuthenticatorTest, WithoutAPolicyAuthenticatedCallersMayDoEverything) {
  Authenticator auth = Make(/*with_policy=*/false);
  EXPECT_FALSE(auth.open());
  EXPECT_EQ(
      auth.Authorize(Req(FormatBasicAuthorization("alice", "secret"), "any/repo", Action::kDelete))
          .verdict,
      Verdict::kAllow);
  EXPECT_EQ(auth.Authorize(Req("", "any/repo", Action::kPull)).verdict, Verdict::kUnauthorized);
  Authenticator open{AuthenticatorParts{}};
  EXPECT_TRUE(open.open());
  EXPECT_EQ(open.Authorize(Req("", "any/repo", Action::kDelete)).verdict, Verdict::kAllow);
}

TEST_F(AuthenticatorTest, PolicyReloadTakesEffect) {
  Authenticator auth = Make();
  std::string alice = FormatBasicAuthorization("alice", "secret");
  EXPECT_EQ(auth.Authorize(Req(alice, "team/a", Action::kDelete)).verdict, Verdict::kDenied);
  ReplaceFile(dir_.File("access.yaml"),
              "rules:\n  - repositories: ['**']\n    users: [alice]\n    actions: [delete]\n");
  ASSERT_TRUE(policy_->ReloadIfChanged());
  EXPECT_EQ(auth.Authorize(Req(alice, "team/a", Action::kDelete)).verdict, Verdict::kAllow);
}

}  // namespace
}  // namespace wharf::auth

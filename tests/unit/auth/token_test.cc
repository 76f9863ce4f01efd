#include "auth/token.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "auth/base64.h"
#include "test_keys.h"

namespace wharf::auth {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;

constexpr int64_t kNow = 1764626700;  // 2025-12-01T22:05:00Z

class TokenTest : public ::testing::Test {
 protected:
  TokenTest() {
    TestKeyPem ec = MakeEcKey();
    ec_priv_pem_ = ec.private_pem;
    ec_pub_pem_ = ec.public_pem;
    TestKeyPem rsa = MakeRsaKey();
    rsa_priv_pem_ = rsa.private_pem;
    rsa_pub_pem_ = rsa.public_pem;
  }

  WallClock Clock() {
    return [this] { return std::chrono::system_clock::time_point(seconds(now_)); };
  }
  std::unique_ptr<TokenIssuer> Issuer(const std::string& pem, std::string kid = "",
                                      std::string issuer = "wharf") {
    auto key = LoadJwsKeyPem(pem, std::move(kid));
    EXPECT_TRUE(key) << key.error().ToString();
    auto r = TokenIssuer::Create({issuer, seconds(300), Clock()}, std::move(*key));
    EXPECT_TRUE(r) << r.error().ToString();
    return std::move(*r);
  }
  std::unique_ptr<TokenVerifier> Verifier(std::vector<std::string> pems,
                                          std::vector<std::string> kids = {}, size_t cache = 16) {
    std::vector<JwsKey> keys;
    for (size_t i = 0; i < pems.size(); ++i) {
      auto k = LoadJwsKeyPem(pems[i], i < kids.size() ? kids[i] : "");
      EXPECT_TRUE(k) << k.error().ToString();
      keys.push_back(std::move(*k));
    }
    VerifierOptions opts{"wharf", "registry.test", seconds(60), cache, Clock()};
    auto r = TokenVerifier::Create(std::move(opts), std::move(keys));
    EXPECT_TRUE(r) << r.error().ToString();
    return std::move(*r);
  }
  // A token signed by the test itself, as an external issuer would make it.
  std::string Forge(const json& header, const json& claims, const std::string& pem) {
    std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
    return input + "." + Base64UrlEncode(*JwsSign(*LoadJwsKeyPem(pem), input));
  }
  json Claims() {
    return {{"iss", "wharf"},
            {"sub", "alice"},
            {"aud", "registry.test"},
            {"exp", kNow + 60},
            {"nbf", kNow},
            {"iat", kNow},
            {"jti", "j1"},
            {"access", json::array()}};
  }

  int64_t now_ = kNow;
  std::string ec_priv_pem_, ec_pub_pem_, rsa_priv_pem_, rsa_pub_pem_;
  const std::vector<AccessEntry> access_ = {{"repository", "team/app", {"pull", "push"}},
                                            {"repository", "team/lib", {"pull"}}};
};

TEST_F(TokenTest, IssuedTokensVerifyWithBothAlgorithms) {
  for (auto [priv, pub] : {std::pair{ec_priv_pem_, ec_pub_pem_}, {rsa_priv_pem_, rsa_pub_pem_}}) {
    auto issuer = Issuer(priv);
    auto verifier = Verifier({pub});
    auto issued = issuer->Issue("alice", "registry.test", access_);
    ASSERT_TRUE(issued) << issued.error().ToString();
    EXPECT_EQ(issued->expires_in, 300);
    EXPECT_EQ(issued->issued_at, kNow);
    auto claims = verifier->Verify(issued->token);
    ASSERT_TRUE(claims) << claims.error().ToString();
    EXPECT_EQ((*claims)->issuer, "wharf");
    EXPECT_EQ((*claims)->subject, "alice");
    EXPECT_EQ((*claims)->audience, std::vector<std::string>{"registry.test"});
    EXPECT_EQ((*claims)->expires_at, kNow + 300);
    EXPECT_EQ((*claims)->not_before, kNow);
    EXPECT_EQ((*claims)->issued_at, kNow);
    EXPECT_EQ((*claims)->id.size(), 32u);
    EXPECT_EQ((*claims)->access, access_);
    EXPECT_TRUE(Grants((*claims)->access, "repository", "team/app", "push"));
    EXPECT_FALSE(Grants((*claims)->access, "repository", "team/lib", "push"));
    EXPECT_FALSE(Grants((*claims)->access, "repository", "team/other", "pull"));

    json header =
        json::parse(*Base64UrlDecode(issued->token.substr(0, issued->token.find('.')), 4096));
    EXPECT_EQ(header["typ"], "JWT");
    EXPECT_EQ(header["alg"], priv == ec_priv_pem_ ? "ES256" : "RS256");
    EXPECT_EQ(header["kid"], issuer->key().kid);
  }
}

TEST_F(TokenTest, ResponseJsonHasTheTokenEndpointFields) {
  auto issued = Issuer(ec_priv_pem_)->Issue("alice", "registry.test", access_);
  ASSERT_TRUE(issued);
  json j = json::parse(issued->ResponseJson());
  EXPECT_EQ(j["token"], issued->token);
  EXPECT_EQ(j["access_token"], issued->token);
  EXPECT_EQ(j["expires_in"], 300);
  EXPECT_EQ(j["issued_at"], "2025-12-01T22:05:00Z");
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00Z");
  // A subject that is not UTF-8 (any htpasswd user) does not throw.
  EXPECT_TRUE(Issuer(ec_priv_pem_)->Issue("\xff\xfe", "registry.test", {}));
}

TEST_F(TokenTest, ChecksIssuerAudienceAndTimeWithSkew) {
  auto verifier = Verifier({ec_pub_pem_});
  auto token = [&](const std::string& iss, const std::string& aud) {
    return Issuer(ec_priv_pem_, "", iss)->Issue("alice", aud, access_)->token;
  };
  EXPECT_FALSE(verifier->Verify(token("other", "registry.test")));
  EXPECT_FALSE(verifier->Verify(token("wharf", "other.service")));
  std::string good = token("wharf", "registry.test");
  now_ = kNow + 300 + 59;  // expired, but within the skew
  EXPECT_TRUE(verifier->Verify(good));
  now_ = kNow + 300 + 60;
  auto expired = verifier->Verify(good);
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().message().find("expired"), std::string::npos);
  now_ = kNow - 60;  // not yet valid, but within the skew
  EXPECT_TRUE(verifier->Verify(good));
  now_ = kNow - 61;
  EXPECT_FALSE(verifier->Verify(good));
  now_ = kNow;
  json c = Claims();
  c["aud"] = {"a", "registry.test"};
  EXPECT_TRUE(verifier->Verify(Forge({{"alg", "ES256"}}, c, ec_priv_pem_)));
  c["aud"] = json::array();
  EXPECT_FALSE(verifier->Verify(Forge({{"alg", "ES256"}}, c, ec_priv_pem_)));
  c = Claims();
  c.erase("exp");
  EXPECT_FALSE(verifier->Verify(Forge({{"alg", "ES256"}}, c, ec_priv_pem_)));
  c = Claims();
  c["iat"] = kNow + 3600;
  EXPECT_FALSE(verifier->Verify(Forge({{"alg", "ES256"}}, c, ec_priv_pem_)));
  c = Claims();
  c["exp"] = double(kNow) + 30.5;  // NumericDate may be fractional
  EXPECT_TRUE(verifier->Verify(Forge({{"alg", "ES256"}}, c, ec_priv_pem_)));
}

TEST_F(TokenTest, RefusesAlgNoneAndUnconfiguredAlgorithms) {
  auto verifier = Verifier({ec_pub_pem_, rsa_pub_pem_}, {"ec", "rsa"});
  std::string payload = Base64UrlEncode(Claims().dump());
  for (std::string alg : {"none", "None", "HS256", "ES384"}) {
    json h = {{"alg", alg}, {"kid", "ec"}};
    std::string unsigned_token = Base64UrlEncode(h.dump()) + "." + payload + ".";
    EXPECT_FALSE(verifier->Verify(unsigned_token)) << alg;
    EXPECT_FALSE(verifier->Verify(unsigned_token + "AAAA")) << alg;
  }
  // RS256 named in the header of a token for the EC key (and the reverse): refused before any
  // signature check, whatever the signature.
  EXPECT_EQ(verifier->Verify(Forge({{"alg", "RS256"}, {"kid", "ec"}}, Claims(), rsa_priv_pem_))
                .error()
                .code(),
            Code::kUnsupported);
  EXPECT_FALSE(verifier->Verify(Forge({{"alg", "ES256"}, {"kid", "rsa"}}, Claims(), ec_priv_pem_)));
  EXPECT_EQ(verifier->signature_checks(), 0u);
  EXPECT_TRUE(verifier->Verify(Forge({{"alg", "ES256"}, {"kid", "ec"}}, Claims(), ec_priv_pem_)));
  EXPECT_TRUE(verifier->Verify(Forge({{"alg", "RS256"}, {"kid", "rsa"}}, Claims(), rsa_priv_pem_)));
}

TEST_F(TokenTest, SelectsKeysByKid) {
  TestKeyPem other = MakeEcKey();
  auto verifier = Verifier({ec_pub_pem_, other.public_pem});
  EXPECT_TRUE(verifier->Verify(Issuer(ec_priv_pem_)->Issue("a", "registry.test", {})->token));
  EXPECT_TRUE(verifier->Verify(Issuer(other.private_pem)->Issue("a", "registry.test", {})->token));
  // Signed by a key nobody configured: unknown kid.
  auto stranger =
      verifier->Verify(Issuer(MakeEcKey().private_pem)->Issue("a", "registry.test", {})->token);
  ASSERT_FALSE(stranger);
  EXPECT_EQ(stranger.error().code(), Code::kNotFound);
  // Signed by another key under a configured kid: the signature fails.
  auto forged_kid = LoadJwsKeyPem(ec_pub_pem_)->kid;
  auto impostor = Issuer(MakeEcKey().private_pem, forged_kid)->Issue("a", "registry.test", {});
  EXPECT_FALSE(verifier->Verify(impostor->token));
  // Without a kid: refused when several keys could be meant, accepted with one key.
  std::string no_kid = Forge({{"alg", "ES256"}}, Claims(), ec_priv_pem_);
  EXPECT_FALSE(verifier->Verify(no_kid));
  EXPECT_TRUE(Verifier({ec_pub_pem_})->Verify(no_kid));
}

TEST_F(TokenTest, TamperedTokensAreRefusedEvenAfterCaching) {
  auto verifier = Verifier({ec_pub_pem_});
  std::string good = Issuer(ec_priv_pem_)->Issue("alice", "registry.test", access_)->token;
  ASSERT_TRUE(verifier->Verify(good));
  size_t d1 = good.find('.'), d2 = good.rfind('.');
  json c = Claims();
  c["sub"] = "mallory";
  c["access"] = {{{"type", "repository"}, {"name", "**"}, {"actions", {"*"}}}};
  std::string swapped = good.substr(0, d1 + 1) + Base64UrlEncode(c.dump()) + good.substr(d2);
  EXPECT_FALSE(verifier->Verify(swapped));  // same signature as a cached token: still refused
  std::string bad_sig = good;
  bad_sig[d2 + 5] = bad_sig[d2 + 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verifier->Verify(bad_sig));
  EXPECT_TRUE(verifier->Verify(good));
}

TEST_F(TokenTest, HostileTokensAreErrors) {
  auto verifier = Verifier({ec_pub_pem_});
  std::string good = Issuer(ec_priv_pem_)->Issue("alice", "registry.test", access_)->token;
  std::string h = Base64UrlEncode(R"({"alg":"ES256"})");
  std::string p = Base64UrlEncode(Claims().dump());
  std::vector<std::string> bad = {
      "",
      ".",
      "..",
      "a.b",
      good.substr(0, good.rfind('.')),
      good + ".x",
      good + "." + good + "." + good,  // 9 segments
      "a.b.c.d.e.f.g.h.i",
      "!!!." + p + ".AAAA",
      h + ".!!!.AAAA",
      h + "." + p + ".!!!",
      h + "." + p + ".A",
      Base64UrlEncode("not json") + "." + p + ".AAAA",
      Base64UrlEncode("[1,2]") + "." + p + ".AAAA",
      Base64UrlEncode(R"({"alg":5})") + "." + p + ".AAAA",
      Base64UrlEncode(R"({"alg":"ES256","kid":7})") + "." + p + ".AAAA",
      Base64UrlEncode(R"({"alg":"ES256","typ":"JWE"})") + "." + p + ".AAAA",
      Base64UrlEncode(R"({"alg":"ES256","crit":["exp"]})") + "." + p + ".AAAA",
      Base64UrlEncode(R"({"alg":"ES256","x":")" + std::string(3000, 'a') + "\"}") + "." + p +
          ".AAAA",
      std::string(kMaxTokenBytes + 1, 'a'),
      std::string(20000, '.'),
      h + "." + std::string(20000, 'A') + ".AAAA",
  };
  for (const auto& t : bad) EXPECT_FALSE(verifier->Verify(t)) << t.substr(0, 100);
  // A validly signed token whose claims are not what the spec says.
  for (const std::string& claims :
       {std::string("not json"), std::string("[]"), std::string(R"({"exp":"soon"})"),
        std::string(R"({"iss":"wharf","aud":"registry.test","exp":1e300})"),
        std::string(R"({"iss":"wharf","aud":"registry.test","exp":-5})"),
        std::string(R"({"iss":5,"aud":"registry.test","exp":1764626760})"),
        std::string(R"({"iss":"wharf","aud":[5],"exp":1764626760})"),
        std::string(R"({"iss":"wharf","aud":"registry.test","exp":1764626760,"access":{}})"),
        std::string(R"({"iss":"wharf","aud":"registry.test","exp":1764626760,"access":[5]})"),
        std::string(R"({"iss":"wharf","aud":"registry.test","exp":1764626760,)"
                    R"("access":[{"type":"repository","name":"a","actions":"pull"}]})"),
        std::string(R"({"iss":"wharf","aud":"registry.test","exp":1764626760,)"
                    R"("access":[{"type":"repository","name":"a","actions":[1]}]})"),
        "[" + std::string(5000, '[') + std::string(5000, ']') + "]"}) {
    std::string input = h + "." + Base64UrlEncode(claims);
    std::string t = input + "." + Base64UrlEncode(*JwsSign(*LoadJwsKeyPem(ec_priv_pem_), input));
    EXPECT_FALSE(verifier->Verify(t)) << claims.substr(0, 100);
  }
}

TEST_F(TokenTest, ParsesAccessClaimShapes) {
  auto c = ParseClaims(R"({"exp":10,"access":[{"type":"repository","name":"a/b","actions":["pull"]},
                          {"type":"registry","name":"catalog","actions":["*"]},
                          {"type":"repository","name":"c"},{"type":"repository","name":"d","actions":null}]})");
  ASSERT_TRUE(c) << c.error().ToString();
  ASSERT_EQ(c->access.size(), 4u);
  EXPECT_EQ(c->access[0], (AccessEntry{"repository", "a/b", {"pull"}}));
  EXPECT_TRUE(Grants(c->access, "registry", "catalog", "anything"));
  EXPECT_TRUE(c->access[2].actions.empty());
  EXPECT_TRUE(ParseClaims(R"({"exp":10,"access":null})"));
}

TEST_F(TokenTest, CacheSavesTheSignatureCheckUntilExpiry) {
  auto verifier = Verifier({ec_pub_pem_}, {}, 2);
  auto issuer = Issuer(ec_priv_pem_);
  std::string t1 = issuer->Issue("alice", "registry.test", access_)->token;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(verifier->Verify(t1));
  EXPECT_EQ(verifier->signature_checks(), 1u);
  std::string t2 = issuer->Issue("bob", "registry.test", {})->token;
  std::string t3 = issuer->Issue("carol", "registry.test", {})->token;
  ASSERT_TRUE(verifier->Verify(t2));
  ASSERT_TRUE(verifier->Verify(t3));  // evicts t1, the least recently used
  EXPECT_EQ(verifier->cache().size(), 2u);
  EXPECT_EQ(verifier->signature_checks(), 3u);
  ASSERT_TRUE(verifier->Verify(t1));
  EXPECT_EQ(verifier->signature_checks(), 4u);
  // A cached token still expires.
  now_ = kNow + 300 + 60;
  EXPECT_FALSE(verifier->Verify(t1));
  EXPECT_EQ(verifier->cache().size(), 1u);  // the expired entry is gone
}

// A token expired by its own `exp` costs no signature check even when it is not cached, and
// its unverified claims are never believed for anything but refusing it.
TEST_F(TokenTest, AnExpiredUncachedTokenCostsNoSignatureCheck) {
  auto verifier = Verifier({ec_pub_pem_});
  std::string t = Issuer(ec_priv_pem_)->Issue("alice", "registry.test", access_)->token;
  now_ = kNow + 300 + 60;  // past exp and the skew; never verified before
  for (int i = 0; i < 3; ++i) {
    auto r = verifier->Verify(t);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("expired"), std::string::npos) << r.error().message();
  }
  EXPECT_EQ(verifier->signature_checks(), 0u);
  EXPECT_EQ(verifier->cache().size(), 0u);
  // A forged token that claims a far `exp` is still checked, and refused for its signature.
  json c = Claims();
  c["exp"] = now_ + 3600;
  std::string forged = Forge({{"alg", "ES256"}}, c, MakeEcKey().private_pem);
  auto f = verifier->Verify(forged);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("signature"), std::string::npos) << f.error().message();
  EXPECT_EQ(verifier->signature_checks(), 1u);
  // Within the skew the token is verified (once) and accepted as before.
  now_ = kNow + 300 + 59;
  EXPECT_TRUE(verifier->Verify(t));
  EXPECT_TRUE(verifier->Verify(t));
  EXPECT_EQ(verifier->signature_checks(), 2u);
}

TEST_F(TokenTest, ConcurrentVerificationSharesTheCache) {
  auto verifier = Verifier({ec_pub_pem_}, {}, 4);
  auto issuer = Issuer(ec_priv_pem_);
  std::vector<std::string> tokens;
  for (int i = 0; i < 6; ++i)
    tokens.push_back(issuer->Issue("u" + std::to_string(i), "registry.test", {})->token);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string& token = tokens[(i + t) % tokens.size()];
        auto r = verifier->Verify(token);
        if (!r || (*r)->subject != "u" + std::to_string((i + t) % tokens.size())) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(verifier->cache().size(), 4u);
}

TEST_F(TokenTest, CreateRefusesBadConfiguration) {
  auto key = [&](const std::string& pem, std::string kid = "") {
    return std::move(*LoadJwsKeyPem(pem, std::move(kid)));
  };
  EXPECT_FALSE(TokenIssuer::Create({"wharf", seconds(300), Clock()}, key(ec_pub_pem_)));
  EXPECT_FALSE(TokenIssuer::Create({"", seconds(300), Clock()}, key(ec_priv_pem_)));
  EXPECT_FALSE(TokenIssuer::Create({"wharf", seconds(0), Clock()}, key(ec_priv_pem_)));
  EXPECT_FALSE(TokenVerifier::Create({"wharf", "svc", seconds(60), 16, Clock()}, {}));
  std::vector<JwsKey> keys;
  keys.push_back(key(ec_pub_pem_));
  EXPECT_FALSE(TokenVerifier::Create({"", "svc", seconds(60), 16, Clock()}, std::move(keys)));
  keys.clear();
  keys.push_back(key(ec_pub_pem_, "same"));
  keys.push_back(key(rsa_pub_pem_, "same"));
  EXPECT_FALSE(TokenVerifier::Create({"wharf", "svc", seconds(60), 16, Clock()}, std::move(keys)));
}

}  // namespace
}  // namespace wharf::auth

#include "auth/jws.h"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <string>

#include "test_files.h"
#include "test_keys.h"

namespace wharf::auth {
namespace {

TEST(JwsTest, Es256SignsRawSignaturesThatVerify) {
  TestKeyPem pem = MakeEcKey();
  auto priv = LoadJwsKeyPem(pem.private_pem);
  auto pub = LoadJwsKeyPem(pem.public_pem);
  ASSERT_TRUE(priv) << priv.error().ToString();
  ASSERT_TRUE(pub) << pub.error().ToString();
  EXPECT_EQ(priv->alg, JwsAlg::kES256);
  EXPECT_TRUE(priv->has_private);
  EXPECT_FALSE(pub->has_private);
  EXPECT_EQ(priv->kid, pub->kid);
  for (int i = 0; i < 20; ++i) {  // r or s with a leading zero byte comes up now and then
    std::string input = "header.payload" + std::to_string(i);
    auto sig = JwsSign(*priv, input);
    ASSERT_TRUE(sig);
    EXPECT_EQ(sig->size(), 64u);
    EXPECT_TRUE(JwsVerify(*pub, input, *sig));
    EXPECT_FALSE(JwsVerify(*pub, input + "x", *sig));
    std::string flipped = *sig;
    flipped[i % 64] ^= 1;
    EXPECT_FALSE(JwsVerify(*pub, input, flipped));
    EXPECT_FALSE(JwsVerify(*pub, input, sig->substr(0, 63)));
  }
  EXPECT_FALSE(JwsSign(*pub, "x"));
}

TEST(JwsTest, Rs256SignsAndVerifies) {
  TestKeyPem pem = MakeRsaKey();
  auto priv = LoadJwsKeyPem(pem.private_pem);
  auto cert = LoadJwsKeyPem(pem.cert_pem, "configured-kid");
  ASSERT_TRUE(priv) << priv.error().ToString();
  ASSERT_TRUE(cert) << cert.error().ToString();
  EXPECT_EQ(priv->alg, JwsAlg::kRS256);
  EXPECT_EQ(cert->kid, "configured-kid");
  auto sig = JwsSign(*priv, "input");
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->size(), 256u);
  EXPECT_TRUE(JwsVerify(*cert, "input", *sig));
  EXPECT_FALSE(JwsVerify(*cert, "inpuT", *sig));
  // An RS256 signature checked with an ES256 key (and the reverse) fails cleanly.
  auto ec = LoadJwsKeyPem(MakeEcKey().private_pem);
  EXPECT_FALSE(JwsVerify(*ec, "input", *sig));
  EXPECT_FALSE(JwsVerify(*cert, "input", *JwsSign(*ec, "input")));
}

TEST(JwsTest, LibtrustKidShape) {
  auto a = LoadJwsKeyPem(MakeEcKey().public_pem);
  auto b = LoadJwsKeyPem(MakeEcKey().public_pem);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->kid, b->kid);
  ASSERT_EQ(a->kid.size(), 12u * 4 + 11);
  for (size_t i = 0; i < a->kid.size(); ++i) {
    char c = a->kid[i];
    if (i % 5 == 4) {
      EXPECT_EQ(c, ':');
    } else {
      EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) << a->kid;
    }
  }
  // The certificate and the public key of one key pair have one kid.
  TestKeyPem pem = MakeEcKey();
  EXPECT_EQ(LoadJwsKeyPem(pem.cert_pem)->kid, LoadJwsKeyPem(pem.public_pem)->kid);
}

TEST(JwsTest, RefusesOtherKeysAndGarbage) {
  EXPECT_EQ(LoadJwsKeyPem(MakeEcKey("P-384").public_pem).error().code(), Code::kUnsupported);
  EXPECT_EQ(LoadJwsKeyPem(MakeRsaKey(1024).public_pem).error().code(), Code::kUnsupported);
  EXPECT_FALSE(LoadJwsKeyPem(""));
  EXPECT_FALSE(LoadJwsKeyPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
  EXPECT_FALSE(LoadJwsKeyPem(std::string(100000, '\xff')));
  // An encrypted key is refused (never a passphrase prompt), and no OpenSSL error is left
  // queued for an unrelated later caller.
  EXPECT_FALSE(LoadJwsKeyPem(MakeEcKey().encrypted_pem));
  EXPECT_EQ(ERR_peek_error(), 0u);
  TempDir dir;
  auto missing = LoadJwsKeyFile(dir.File("none.pem"));
  ASSERT_FALSE(missing);
  ReplaceFile(dir.File("key.pem"), MakeEcKey().private_pem);
  auto loaded = LoadJwsKeyFile(dir.File("key.pem"), "k1");
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  EXPECT_EQ(loaded->kid, "k1");
  ReplaceFile(dir.File("junk.pem"), "junk");
  auto junk = LoadJwsKeyFile(dir.File("junk.pem"));
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message().find("junk.pem"), std::string::npos);
}

TEST(JwsTest, ParseAlgAcceptsOnlyTheTwo) {
  EXPECT_EQ(*ParseAlg("ES256"), JwsAlg::kES256);
  EXPECT_EQ(*ParseAlg("RS256"), JwsAlg::kRS256);
  for (const char* a : {"none", "None", "HS256", "ES384", "PS256", "es256", ""}) {
    EXPECT_FALSE(ParseAlg(a)) << a;
  }
  EXPECT_EQ(AlgName(JwsAlg::kRS256), "RS256");
}

TEST(JwsTest, EcdsaDerRawConversion) {
  std::string raw(64, '\0');
  raw[31] = 1;
  raw[32] = '\x80';  // s with its top bit set: DER needs a leading zero
  raw[63] = 2;
  auto der = EcdsaRawToDer(raw);
  ASSERT_TRUE(der);
  auto back = EcdsaDerToRaw(*der);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, raw);
  EXPECT_FALSE(EcdsaRawToDer(std::string(63, 'a')));
  EXPECT_FALSE(EcdsaRawToDer(std::string(65, 'a')));
  EXPECT_FALSE(EcdsaDerToRaw("garbage"));
  EXPECT_FALSE(EcdsaDerToRaw(""));
  // A DER value with a 33-byte r (over P-256's size) is refused, not truncated.
  std::string big = "\x30\x26\x02\x21\x01" + std::string(32, '\x11') + "\x02\x01\x01";
  EXPECT_FALSE(EcdsaDerToRaw(big));
}

}  // namespace
}  // namespace wharf::auth

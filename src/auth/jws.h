// JWS signing keys and the two algorithms wharf uses: ES256 (ECDSA P-256 + SHA-256) and RS256
// (RSASSA-PKCS1-v1_5 + SHA-256), through OpenSSL 3. JWS carries an ES256 signature as the raw
// 64 bytes r||s (RFC 7518 section 3.4), OpenSSL as DER: the conversion is here.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf::auth {

enum class JwsAlg { kES256, kRS256 };
std::string_view AlgName(JwsAlg alg);
// "ES256" / "RS256"; kUnsupported for anything else, "none" included.
Result<JwsAlg> ParseAlg(std::string_view name);

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// A public key (verification) or a key pair (signing), its algorithm (by key type: P-256 ->
// ES256, RSA of 2048 bits or more -> RS256; other curves and sizes are refused) and its kid.
struct JwsKey {
  PkeyPtr pkey;
  JwsAlg alg = JwsAlg::kES256;
  std::string kid;
  bool has_private = false;
};

// Reads a PEM file: a public key, a certificate (its public key) or a private key. kid is
// `kid` when given, else the libtrust key id (LibtrustKid) that Docker's token servers put in
// their tokens. Errors name the file.
Result<JwsKey> LoadJwsKeyFile(const std::string& path, std::string kid = "");
Result<JwsKey> LoadJwsKeyPem(std::string_view pem, std::string kid = "");

// libtrust's key id: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, in 12
// groups of 4 joined by ':' ("ABCD:EFGH:...").
std::string LibtrustKid(EVP_PKEY* pkey);

// A JWS signature (raw r||s for ES256) over `input`. kInvalidArgument without a private key.
Result<std::string> JwsSign(const JwsKey& key, std::string_view input);
// True when `signature` (raw r||s for ES256) is `key`'s valid signature of `input`.
bool JwsVerify(const JwsKey& key, std::string_view input, std::string_view signature);

// DER ECDSA-Sig-Value <-> raw r||s of 2*32 bytes. Exposed for tests.
Result<std::string> EcdsaDerToRaw(std::string_view der);
Result<std::string> EcdsaRawToDer(std::string_view raw);

}  // namespace wharf::auth

#include "auth/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "auth/reloading_file.h"

namespace wharf::auth {
namespace {

constexpr size_t kEcCoordBytes = 32;

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// An encrypted key is refused rather than prompting for a passphrase on a terminal (OpenSSL's
// default when no callback is given).
int NoPassphrase(char*, int, int, void*) { return 0; }

// Tries each PEM form a key file may hold; returns the key and whether it is private.
PkeyPtr ReadPemForms(std::string_view pem, bool* has_private) {
  auto bio = [&] { return BioPtr(BIO_new_mem_buf(pem.data(), int(pem.size()))); };
  if (EVP_PKEY* k = PEM_read_bio_PrivateKey(bio().get(), nullptr, &NoPassphrase, nullptr)) {
    *has_private = true;
    return PkeyPtr(k);
  }
  *has_private = false;
  if (EVP_PKEY* k = PEM_read_bio_PUBKEY(bio().get(), nullptr, &NoPassphrase, nullptr)) {
    return PkeyPtr(k);
  }
  if (X509* cert = PEM_read_bio_X509(bio().get(), nullptr, &NoPassphrase, nullptr)) {
    EVP_PKEY* k = X509_get_pubkey(cert);
    X509_free(cert);
    if (k) return PkeyPtr(k);
  }
  return nullptr;
}

// OpenSSL queues an error for every form that did not parse; a later, unrelated caller of
// ERR_get_error (TLS) must not see them.
PkeyPtr ReadPem(std::string_view pem, bool* has_private) {
  PkeyPtr key = ReadPemForms(pem, has_private);
  ERR_clear_error();
  return key;
}

Result<JwsAlg> AlgOfKey(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char curve[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve,
                                       &len) != 1 ||
        std::string_view(curve) != "prime256v1") {
      return Err(Unsupported("EC key not on P-256 (ES256 needs prime256v1)"));
    }
    return JwsAlg::kES256;
  }
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    if (EVP_PKEY_get_bits(pkey) < 2048) return Err(Unsupported("RSA key under 2048 bits"));
    return JwsAlg::kRS256;
  }
  return Err(Unsupported("key is neither EC P-256 nor RSA"));
}

std::string Base32(const unsigned char* data, size_t n) {
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += kAlphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (5 - bits)) & 31];
  return out;
}

}  // namespace

std::string_view AlgName(JwsAlg alg) { return alg == JwsAlg::kES256 ? "ES256" : "RS256"; }

Result<JwsAlg> ParseAlg(std::string_view name) {
  if (name == "ES256") return JwsAlg::kES256;
  if (name == "RS256") return JwsAlg::kRS256;
  return Err(Unsupported("JWS algorithm not accepted: " + std::string(name.substr(0, 32))));
}

std::string LibtrustKid(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0) return "";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, size_t(len), digest);
  OPENSSL_free(der);
  std::string b32 = Base32(digest, 30);  // 240 bits: 48 characters
  std::string out;
  for (size_t i = 0; i < b32.size(); i += 4) {
    if (i) out += ':';
    out += b32.substr(i, 4);
  }
  return out;
}

Result<JwsKey> LoadJwsKeyPem(std::string_view pem, std::string kid) {
  JwsKey key;
  key.pkey = ReadPem(pem, &key.has_private);
  if (!key.pkey) return Err(InvalidArgument("no PEM public key, certificate or private key"));
  WHARF_ASSIGN_OR_RETURN(key.alg, AlgOfKey(key.pkey.get()));
  key.kid = kid.empty() ? LibtrustKid(key.pkey.get()) : std::move(kid);
  return key;
}

Result<JwsKey> LoadJwsKeyFile(const std::string& path, std::string kid) {
  WHARF_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile(path, 1 << 20));
  auto key = LoadJwsKeyPem(pem, std::move(kid));
  if (!key) return Err(Status(key.error().code(), path + ": " + key.error().message()));
  return key;
}

Result<std::string> EcdsaDerToRaw(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(d2i_ECDSA_SIG(nullptr, &p, long(der.size())));
  if (!sig) return Err(InvalidArgument("malformed DER ECDSA signature"));
  std::string raw(2 * kEcCoordBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, kEcCoordBytes) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + kEcCoordBytes, kEcCoordBytes) < 0) {
    return Err(InvalidArgument("ECDSA signature values over 32 bytes"));
  }
  return raw;
}

Result<std::string> EcdsaRawToDer(std::string_view raw) {
  if (raw.size() != 2 * kEcCoordBytes) return Err(InvalidArgument("ES256 signature not 64 bytes"));
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(in, kEcCoordBytes, nullptr);
  BIGNUM* s = BN_bin2bn(in + kEcCoordBytes, kEcCoordBytes, nullptr);
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return Err(Internal("ECDSA_SIG allocation failed"));
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return Err(Internal("i2d_ECDSA_SIG failed"));
  std::string out(reinterpret_cast<char*>(der), size_t(len));
  OPENSSL_free(der);
  return out;
}

Result<std::string> JwsSign(const JwsKey& key, std::string_view input) {
  if (!key.has_private) return Err(InvalidArgument("signing needs a private key"));
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) {
    return Err(Internal("EVP_DigestSign setup failed"));
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     input.size()) != 1) {
    return Err(Internal("EVP_DigestSign failed"));
  }
  sig.resize(len);
  return key.alg == JwsAlg::kES256 ? EcdsaDerToRaw(sig) : Result<std::string>(std::move(sig));
}

bool JwsVerify(const JwsKey& key, std::string_view input, std::string_view signature) {
  std::string der;
  if (key.alg == JwsAlg::kES256) {
    auto d = EcdsaRawToDer(signature);
    if (!d) return false;
    der = std::move(*d);
    signature = der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) != 1) {
    return false;
  }
  bool ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                             input.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace wharf::auth

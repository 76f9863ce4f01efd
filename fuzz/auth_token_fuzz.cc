// Bearer tokens (auth/token.h) over any text, checked against a key made at start: nothing the
// fuzzer writes can carry that key's signature, so every input must be refused, cleanly. The
// claims parser also runs on the raw input, and what it accepts has its required fields.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdint>
#include <memory>
#include <string>

#include "auth/token.h"
#include "fuzz_check.h"

namespace {

wharf::auth::TokenVerifier& Verifier() {
  static std::unique_ptr<wharf::auth::TokenVerifier> verifier = [] {
    EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char* pem = nullptr;
    long n = BIO_get_mem_data(bio, &pem);
    auto key = wharf::auth::LoadJwsKeyPem(std::string(pem, size_t(n)), "k1");
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    FUZZ_CHECK(key.has_value());
    std::vector<wharf::auth::JwsKey> keys;
    keys.push_back(std::move(*key));
    auto v = wharf::auth::TokenVerifier::Create({"wharf", "svc"}, std::move(keys));
    FUZZ_CHECK(v.has_value());
    return std::move(*v);
  }();
  return *verifier;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = wharf::fuzz::AsText(data, size);
  auto verified = Verifier().Verify(text);
  FUZZ_CHECK(!verified.has_value());
  if (auto claims = wharf::auth::ParseClaims(text)) {
    FUZZ_CHECK(claims->expires_at >= 0 && claims->not_before >= 0);
  }
  return 0;
}

// Signing keys made in-process for the token tests, as PEM text.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <string>

namespace wharf::auth {

inline std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, size_t(n));
  BIO_free(bio);
  return out;
}

struct TestKeyPem {
  std::string private_pem;
  std::string public_pem;
  std::string cert_pem;       // a self-signed certificate holding the public key
  std::string encrypted_pem;  // the private key encrypted with the passphrase "pw"
};

inline TestKeyPem MakeTestKey(EVP_PKEY* pkey) {
  TestKeyPem out;
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  out.private_pem = BioText(priv);
  BIO* enc = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(enc, pkey, EVP_aes_256_cbc(),
                           reinterpret_cast<const unsigned char*>("pw"), 2, nullptr, nullptr);
  out.encrypted_pem = BioText(enc);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, pkey);
  out.public_pem = BioText(pub);
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, pkey);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("token-issuer"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, pkey, EVP_sha256());
  BIO* c = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(c, cert);
  out.cert_pem = BioText(c);
  X509_free(cert);
  EVP_PKEY_free(pkey);
  return out;
}

inline TestKeyPem MakeEcKey(const char* curve = "P-256") {
  return MakeTestKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
}
inline TestKeyPem MakeRsaKey(size_t bits = 2048) {
  return MakeTestKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
}

}  // namespace wharf::auth

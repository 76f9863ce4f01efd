#include "http/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace wharf {
namespace {

// OpenSSL's reason for the last failure (and the queue emptied, so that it cannot be taken for
// a later failure's).
std::string OpenSslReason(const boost::system::error_code& ec) {
  unsigned long e = ERR_peek_last_error();
  std::string why =
      e != 0 ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?" : ec.message();
  ERR_clear_error();
  return why;
}

// A password callback that gives none: an encrypted key fails instead of prompting.
int NoPassword(char*, int, int, void*) { return 0; }

Result<std::shared_ptr<asio::ssl::context>> Build(const TlsFiles& f) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(native, &NoPassword);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(f.cert, ec);
  if (ec) return Err(InvalidArgument("--tls-cert " + f.cert + ": " + OpenSslReason(ec)));
  ctx->use_private_key_file(f.key, asio::ssl::context::pem, ec);
  if (ec) {
    return Err(InvalidArgument("--tls-key " + f.key + ": " + OpenSslReason(ec) +
                               " (an unencrypted PEM key is needed)"));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return Err(InvalidArgument("--tls-key " + f.key + " does not match --tls-cert " + f.cert));
  }
  if (!f.client_ca.empty()) {
    ctx->load_verify_file(f.client_ca, ec);
    if (ec) {
      return Err(InvalidArgument("--tls-client-ca " + f.client_ca + ": " + OpenSslReason(ec)));
    }
    // Tell clients which CAs we take, so that they pick the right certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(f.client_ca.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    ERR_clear_error();
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  } else {
    ctx->set_verify_mode(asio::ssl::verify_none);
  }
  return ctx;
}

}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::Load(TlsFiles files) {
  if (files.cert.empty() != files.key.empty()) {
    return Err(InvalidArgument("--tls-cert and --tls-key go together"));
  }
  if (files.cert.empty()) return Err(InvalidArgument("--tls-cert and --tls-key are needed"));
  std::shared_ptr<TlsContext> t(new TlsContext(std::move(files)));
  WHARF_ASSIGN_OR_RETURN(t->ctx_, Build(t->files_));
  return t;
}

Status TlsContext::Reload() {
  auto ctx = Build(files_);
  if (!ctx) return ctx.error();
  std::lock_guard lock(mutex_);
  ctx_ = std::move(*ctx);
  return Status::Ok();
}

std::shared_ptr<asio::ssl::context> TlsContext::current() const {
  std::lock_guard lock(mutex_);
  return ctx_;
}

std::string VerifiedPeerSubject(SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return "";
  std::string out;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
      char* data = nullptr;
      long n = BIO_get_mem_data(bio, &data);
      if (n > 0) out.assign(data, static_cast<size_t>(n));
    }
    BIO_free(bio);
  }
  X509_free(cert);
  return out;
}

}  // namespace wharf

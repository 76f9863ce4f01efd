// TLS for the Server (http/server.h): a server context built from PEM files, TLS 1.2 and 1.3
// only, optionally asking for and verifying client certificates.
//
//   auto tls = TlsContext::Load({.cert = "server.pem", .key = "server.key"});  // one-line errors
//   ServerOptions so; so.tls = *tls;
//   ... on SIGHUP: tls->Reload();  // new connections get the new certificate
//
// Reload builds a whole new context and swaps it in; connections already open keep the one
// they started with (each holds its own reference), so nothing is dropped. A reload that fails
// (a half-written file) keeps the old context and says why.
//
// Threading: every method is thread-safe.
#pragma once

#include <boost/asio/ssl.hpp>
#include <memory>
#include <mutex>
#include <string>

#include "common/asio.h"
#include "common/status.h"

namespace wharf {

struct TlsFiles {
  std::string cert;       // PEM: the server certificate, then any intermediates (a chain)
  std::string key;        // PEM: its private key (not encrypted)
  std::string client_ca;  // PEM: CAs whose client certificates are accepted; "" = none asked
};

class TlsContext {
 public:
  // kInvalidArgument naming the file and OpenSSL's reason when a file cannot be read or used,
  // or the key does not match the certificate.
  static Result<std::shared_ptr<TlsContext>> Load(TlsFiles files);
  // Reads the files again. On error the current context stays.
  Status Reload();
  // The context new connections use.
  std::shared_ptr<asio::ssl::context> current() const;
  bool verifies_clients() const { return !files_.client_ca.empty(); }
  const TlsFiles& files() const { return files_; }

 private:
  explicit TlsContext(TlsFiles files) : files_(std::move(files)) {}
  const TlsFiles files_;
  mutable std::mutex mutex_;
  std::shared_ptr<asio::ssl::context> ctx_;
};

// The subject of the peer's verified certificate in RFC 2253 form ("CN=alice,O=team"), or ""
// when the peer sent none or it did not verify.
std::string VerifiedPeerSubject(SSL* ssl);

}  // namespace wharf

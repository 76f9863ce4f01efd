// Content digests ("sha256:<64 hex>", "sha512:<128 hex>") and the streaming hasher.
//
// Grammar (OCI image spec, descriptor.md):
//   digest    ::= algorithm ":" encoded
//   algorithm ::= component (separator component)*   component ::= [a-z0-9]+
//   separator ::= [+._-]                             encoded   ::= [a-zA-Z0-9=_-]+
// wharf accepts the registered algorithms sha256 and sha512, encoded in lowercase hex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf {

enum class DigestAlgorithm { kSha256, kSha512 };

class Digest {
 public:
  Digest() = default;
  // kInvalidArgument for anything outside the grammar; kUnsupported for a well-formed
  // digest of an algorithm wharf does not implement.
  static Result<Digest> Parse(std::string_view s);

  DigestAlgorithm algorithm() const { return algorithm_; }
  std::string_view algorithm_name() const;
  const std::string& hex() const { return hex_; }
  std::string ToString() const;  // "sha256:<hex>"
  bool empty() const { return hex_.empty(); }

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest& a, const Digest& b) {
    return a.ToString() <=> b.ToString();
  }

 private:
  Digest(DigestAlgorithm a, std::string hex) : algorithm_(a), hex_(std::move(hex)) {}
  friend class Hasher;
  DigestAlgorithm algorithm_ = DigestAlgorithm::kSha256;
  std::string hex_;
};

// Streaming SHA-256/SHA-512 over OpenSSL EVP (uses the CPU's SHA extensions).
// Not thread-safe; Finish() may be called once.
class Hasher {
 public:
  explicit Hasher(DigestAlgorithm a = DigestAlgorithm::kSha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  Digest Finish();

  // Serializable midstate, so a chunked upload can resume hashing after a restart
  // without re-reading its bytes. Opaque bytes; only for the same algorithm and build.
  // RestoreState: kInvalidArgument for a state of the wrong size or one SaveState() could not
  // have written (it comes back from the metadata store, which may be damaged).
  std::string SaveState() const;
  static Result<Hasher> RestoreState(DigestAlgorithm a, std::string_view state);

 private:
  DigestAlgorithm algorithm_;
  void* ctx_;  // EVP_MD_CTX*
};

Digest DigestOf(std::string_view data, DigestAlgorithm a = DigestAlgorithm::kSha256);

std::string ToHex(const void* data, size_t n);

}  // namespace wharf

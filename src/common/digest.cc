// The hasher uses OpenSSL's SHA256_CTX/SHA512_CTX rather than an opaque EVP_MD_CTX because
// an upload's hash midstate must be saved to the metadata store and resumed on any gateway.
// In OpenSSL 3 the EVP sha256 provider calls these very functions (same SHA-NI/AVX code),
// so this costs no speed. They are deprecated for new code, hence the suppression below.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "common/digest.h"

#include <openssl/sha.h>

#include <cstring>

namespace wharf {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsAlgComponentChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlgSeparator(char c) { return c == '+' || c == '.' || c == '_' || c == '-'; }
bool IsEncodedChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '=' ||
         c == '_' || c == '-';
}

}  // namespace

Result<Digest> Digest::Parse(std::string_view s) {
  if (s.size() > 256) return Err(InvalidArgument("digest too long"));
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) {
    return Err(InvalidArgument("digest must be <algorithm>:<encoded>"));
  }
  std::string_view alg = s.substr(0, colon), enc = s.substr(colon + 1);
  bool prev_sep = true;  // no leading separator
  for (char c : alg) {
    if (IsAlgComponentChar(c)) {
      prev_sep = false;
    } else if (IsAlgSeparator(c) && !prev_sep) {
      prev_sep = true;
    } else {
      return Err(InvalidArgument("invalid digest algorithm"));
    }
  }
  if (prev_sep) return Err(InvalidArgument("invalid digest algorithm"));
  for (char c : enc) {
    if (!IsEncodedChar(c)) return Err(InvalidArgument("invalid digest encoding"));
  }
  if (alg == "sha256") {
    if (enc.size() != 64 || !IsLowerHex(enc)) {
      return Err(InvalidArgument("sha256 digest must be 64 lowercase hex digits"));
    }
    return Digest(DigestAlgorithm::kSha256, std::string(enc));
  }
  if (alg == "sha512") {
    if (enc.size() != 128 || !IsLowerHex(enc)) {
      return Err(InvalidArgument("sha512 digest must be 128 lowercase hex digits"));
    }
    return Digest(DigestAlgorithm::kSha512, std::string(enc));
  }
  return Err(Unsupported("unsupported digest algorithm " + std::string(alg)));
}

std::string_view Digest::algorithm_name() const {
  return algorithm_ == DigestAlgorithm::kSha256 ? "sha256" : "sha512";
}

std::string Digest::ToString() const {
  std::string s(algorithm_name());
  s += ':';
  s += hex_;
  return s;
}

std::string ToHex(const void* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

Hasher::Hasher(DigestAlgorithm a) : algorithm_(a) {
  if (a == DigestAlgorithm::kSha256) {
    auto* c = new SHA256_CTX;
    SHA256_Init(c);
    ctx_ = c;
  } else {
    auto* c = new SHA512_CTX;
    SHA512_Init(c);
    ctx_ = c;
  }
}

Hasher::~Hasher() {
  if (!ctx_) return;
  if (algorithm_ == DigestAlgorithm::kSha256) {
    delete static_cast<SHA256_CTX*>(ctx_);
  } else {
    delete static_cast<SHA512_CTX*>(ctx_);
  }
}

Hasher::Hasher(Hasher&& o) noexcept : algorithm_(o.algorithm_), ctx_(o.ctx_) { o.ctx_ = nullptr; }
Hasher& Hasher::operator=(Hasher&& o) noexcept {
  if (this != &o) {
    this->~Hasher();
    algorithm_ = o.algorithm_;
    ctx_ = o.ctx_;
    o.ctx_ = nullptr;
  }
  return *this;
}

void Hasher::Update(const void* data, size_t n) {
  if (algorithm_ == DigestAlgorithm::kSha256) {
    SHA256_Update(static_cast<SHA256_CTX*>(ctx_), data, n);
  } else {
    SHA512_Update(static_cast<SHA512_CTX*>(ctx_), data, n);
  }
}

Digest Hasher::Finish() {
  unsigned char md[SHA512_DIGEST_LENGTH];
  if (algorithm_ == DigestAlgorithm::kSha256) {
    SHA256_Final(md, static_cast<SHA256_CTX*>(ctx_));
    return Digest(algorithm_, ToHex(md, SHA256_DIGEST_LENGTH));
  }
  SHA512_Final(md, static_cast<SHA512_CTX*>(ctx_));
  return Digest(algorithm_, ToHex(md, SHA512_DIGEST_LENGTH));
}

std::string Hasher::SaveState() const {
  size_t n = algorithm_ == DigestAlgorithm::kSha256 ? sizeof(SHA256_CTX) : sizeof(SHA512_CTX);
  return std::string(static_cast<const char*>(ctx_), n);
}

namespace {

// A stored state is used only if it is one SaveState() could have written: SHA*_Update indexes
// its block buffer with `num` (a damaged one writes out of bounds) and SHA*_Final writes
// `md_len` bytes. `num` must also be the byte count (the low bits of Nl, in bits) mod the block.
bool ConsistentState(const SHA256_CTX& c) {
  return c.md_len == SHA256_DIGEST_LENGTH && c.num < SHA256_CBLOCK &&
         ((c.Nl >> 3) % SHA256_CBLOCK) == c.num;
}
bool ConsistentState(const SHA512_CTX& c) {
  return c.md_len == SHA512_DIGEST_LENGTH && c.num < SHA512_CBLOCK &&
         ((c.Nl >> 3) % SHA512_CBLOCK) == c.num;
}

template <typename Ctx>
Status RestoreInto(void* ctx, std::string_view state) {
  Ctx c;
  if (state.size() != sizeof c) return InvalidArgument("hash state has the wrong size");
  std::memcpy(&c, state.data(), sizeof c);
  if (!ConsistentState(c)) return InvalidArgument("hash state is inconsistent");
  std::memcpy(ctx, &c, sizeof c);
  return Status::Ok();
}

}  // namespace

Result<Hasher> Hasher::RestoreState(DigestAlgorithm a, std::string_view state) {
  Hasher h(a);
  Status st = a == DigestAlgorithm::kSha256 ? RestoreInto<SHA256_CTX>(h.ctx_, state)
                                            : RestoreInto<SHA512_CTX>(h.ctx_, state);
  if (!st.ok()) return Err(std::move(st));
  return h;
}

Digest DigestOf(std::string_view data, DigestAlgorithm a) {
  Hasher h(a);
  h.Update(data);
  return h.Finish();
}

}  // namespace wharf

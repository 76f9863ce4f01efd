#include "auth/htpasswd.h"

#include <crypt.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

namespace wharf::auth {
namespace {

// A valid bcrypt hash (of a random password) whose cost is replaced by the file's first cost.
constexpr std::string_view kDummyHash =
    "$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK";

bool IsBcryptChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '/';
}

bool ValidUser(std::string_view user) {
  if (user.empty() || user.size() > kMaxUserBytes) return false;
  for (unsigned char c : user) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// A printable form of a user for error messages (the user may hold anything).
std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f) ? std::string(1, char(c)) : fmt::format("\\x{:02x}", c);
  }
  return s.size() > 64 ? out + "..." : out;
}

Status LineError(size_t line, std::string_view user, std::string_view why) {
  if (user.empty()) return InvalidArgument(fmt::format("line {}: {}", line, why));
  return InvalidArgument(fmt::format("line {} user {}: {}", line, Printable(user), why));
}

}  // namespace

std::string NonBcryptScheme(std::string_view h) {
  if (h.size() == 60 && h.substr(0, 2) == "$2" && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') &&
      h[3] == '$' && h[6] == '$') {
    bool digits = h[4] >= '0' && h[4] <= '9' && h[5] >= '0' && h[5] <= '9';
    int cost = digits ? (h[4] - '0') * 10 + (h[5] - '0') : 0;
    if (cost < 4 || cost > 31) return "bcrypt with a cost outside 04..31";
    for (char c : h.substr(7)) {
      if (!IsBcryptChar(c)) return "malformed bcrypt";
    }
    return "";
  }
  if (h.starts_with("$2")) return "malformed bcrypt";
  if (h.starts_with("$apr1$")) return "apr1-md5 (htpasswd -m)";
  if (h.starts_with("$1$")) return "md5-crypt";
  if (h.starts_with("{SHA}")) return "sha1 (htpasswd -s)";
  if (h.starts_with("$5$") || h.starts_with("$6$")) return "sha-crypt";
  if (h.starts_with("$")) return "an unknown crypt scheme";
  if (h.empty()) return "an empty hash";
  return "des-crypt or plain text";
}

Result<Htpasswd> Htpasswd::Parse(std::string_view content) {
  Htpasswd out;
  size_t line_no = 0;
  while (!content.empty()) {
    ++line_no;
    size_t nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content.remove_prefix(nl == std::string_view::npos ? content.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxHtpasswdLineBytes) {
      return Err(
          LineError(line_no, "", fmt::format("longer than {} bytes", kMaxHtpasswdLineBytes)));
    }
    if (line.find_first_not_of(" \t") == std::string_view::npos || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Err(LineError(line_no, "", "no ':' between user and hash"));
    }
    std::string_view user = line.substr(0, colon);
    std::string_view hash = line.substr(colon + 1);
    if (user.empty()) return Err(LineError(line_no, "", "empty user name"));
    if (!ValidUser(user)) {
      return Err(LineError(line_no, user, "user name over 255 bytes or with control characters"));
    }
    if (std::string scheme = NonBcryptScheme(hash); !scheme.empty()) {
      return Err(LineError(line_no, user,
                           "hash is " + scheme + "; only bcrypt is accepted (htpasswd -B)"));
    }
    if (!out.hashes_.emplace(std::string(user), std::string(hash)).second) {
      return Err(LineError(line_no, user, "duplicate user"));
    }
    if (out.dummy_hash_.empty()) {
      out.dummy_hash_ = std::string(kDummyHash);
      out.dummy_hash_.replace(4, 2, hash.substr(4, 2));
    }
  }
  if (out.dummy_hash_.empty()) out.dummy_hash_ = std::string(kDummyHash);
  out.verified_ = std::make_shared<VerifiedCache>();
  if (RAND_bytes(out.verified_->key.data(), int(out.verified_->key.size())) != 1) {
    out.verified_.reset();  // no key, no cache: every check is a bcrypt
  }
  return out;
}

bool BcryptMatches(std::string_view password, const std::string& hash) {
  if (password.size() > kMaxPasswordBytes || password.find('\0') != std::string_view::npos) {
    return false;
  }
  if (!NonBcryptScheme(hash).empty()) return false;
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  std::string pw(password);
  const char* out = crypt_r(pw.c_str(), hash.c_str(), data.get());
  OPENSSL_cleanse(pw.data(), pw.size());
  // libxcrypt returns a string starting with '*' on failure (never a valid hash).
  if (out == nullptr || std::strlen(out) != hash.size()) return false;
  return CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
}

std::array<unsigned char, 32> Htpasswd::Mac(std::string_view password) const {
  std::array<unsigned char, 32> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), verified_->key.data(), int(verified_->key.size()),
       reinterpret_cast<const unsigned char*>(password.data()), password.size(), mac.data(), &len);
  return mac;
}

bool Htpasswd::Verify(std::string_view user, std::string_view password) const {
  auto it = hashes_.find(std::string(user));
  if (it == hashes_.end()) {
    (void)BcryptMatches(password, dummy_hash_);
    return false;
  }
  if (!verified_ || password.size() > kMaxPasswordBytes) return BcryptMatches(password, it->second);
  const std::array<unsigned char, 32> mac = Mac(password);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(verified_->mutex);
    auto v = verified_->by_user.find(it->first);
    if (v != verified_->by_user.end() && now < v->second.until &&
        CRYPTO_memcmp(v->second.mac.data(), mac.data(), mac.size()) == 0) {
      return true;
    }
  }
  ++verified_->bcrypt_checks;
  if (!BcryptMatches(password, it->second)) return false;
  std::lock_guard lock(verified_->mutex);
  verified_->by_user[it->first] = Verified{mac, now + kVerifiedTtl};
  return true;
}

}  // namespace wharf::auth

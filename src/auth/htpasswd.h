// Users and bcrypt password hashes in the format `htpasswd -B` writes:
//
//   # comments and blank lines are skipped
//   alice:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK
//   <user>:$2<a|b|y>$<cost 04..31>$<22 salt + 31 hash characters of ./A-Za-z0-9>
//
// Only bcrypt is accepted: MD5 ($apr1$), SHA-1 ({SHA}), SHA-crypt ($5$, $6$), DES crypt and
// plain text are refused when the file is loaded, with the line number and the user, so a
// weak file stops the gateway at start instead of silently admitting weak hashes.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/reloading_file.h"
#include "common/status.h"

namespace wharf::auth {

constexpr size_t kMaxUserBytes = 255;
constexpr size_t kMaxPasswordBytes = 1024;
constexpr size_t kMaxHtpasswdLineBytes = 1024;

// Immutable once parsed (but for the remembered matches); Verify is thread-safe.
class Htpasswd {
 public:
  // kInvalidArgument with "line N user U: why" (or "line N: why" when no user can be named).
  static Result<Htpasswd> Parse(std::string_view content);

  // True only when `user` exists and `password` hashes to its stored hash. An unknown user
  // costs a bcrypt too (same cost as the file's first entry), so timing does not tell which
  // users exist. Passwords with a NUL byte or over kMaxPasswordBytes never match (crypt() would
  // see a prefix of them).
  // A match is remembered for kVerifiedTtl as an HMAC of the password under a key made when
  // the file was parsed (one entry per user, never the password itself), so a client that sends
  // Basic credentials on every request of a pull costs one bcrypt per user and ttl, not one per
  // request. Changing the file makes a new Htpasswd: nothing remembered outlives a password
  // change. Failures are never remembered (each costs a bcrypt).
  bool Verify(std::string_view user, std::string_view password) const;
  static constexpr std::chrono::seconds kVerifiedTtl{300};
  // How many bcrypt computations Verify made for known users (tests: the remembered matches).
  uint64_t bcrypt_checks() const { return verified_ ? verified_->bcrypt_checks.load() : 0; }
  bool HasUser(std::string_view user) const { return hashes_.contains(std::string(user)); }
  size_t size() const { return hashes_.size(); }

 private:
  struct Verified {
    std::array<unsigned char, 32> mac;
    std::chrono::steady_clock::time_point until;
  };
  struct VerifiedCache {
    std::array<unsigned char, 32> key;
    std::atomic<uint64_t> bcrypt_checks{0};
    std::mutex mutex;
    std::unordered_map<std::string, Verified> by_user;
  };
  std::array<unsigned char, 32> Mac(std::string_view password) const;

  std::unordered_map<std::string, std::string> hashes_;
  std::string dummy_hash_;
  std::shared_ptr<VerifiedCache> verified_;  // shared by copies of one parse
};

// The htpasswd file behind --htpasswd, re-read on change (see ReloadingFile).
using HtpasswdFile = ReloadingFile<Htpasswd>;

// bcrypt(password, salt and cost of `hash`) through libcrypt's crypt_r, compared in constant
// time with `hash`. False for any malformed hash. Exposed for tests.
bool BcryptMatches(std::string_view password, const std::string& hash);
// The hash's scheme when it is not bcrypt ("apr1-md5", "sha1", "sha-crypt", "des-crypt or
// plain text", ...), or "" when it is a well-formed bcrypt hash.
std::string NonBcryptScheme(std::string_view hash);

}  // namespace wharf::auth

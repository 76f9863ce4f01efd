// Verified tokens, so that a client repeating its token (every request of a pull) costs a hash
// lookup instead of an ECDSA/RSA verification. Keyed by the token's signature; an entry also
// holds the signed part itself (header and payload, compared byte for byte), so a cached
// signature pasted onto another header or payload is a miss (and then fails verification),
// never a hit. (The signed part is kept rather than a digest of it: a hit then costs one memcmp
// of a few hundred bytes, where hashing it took OpenSSL 3's algorithm fetch and locks on every
// request.)
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wharf::auth {

struct TokenClaims;

// Thread-safe. Bounded: at most `capacity` entries, the least recently used evicted first;
// an entry is dropped once its token expires.
class TokenCache {
 public:
  using Clock = std::chrono::system_clock;
  explicit TokenCache(size_t capacity) : capacity_(capacity) {}

  // The claims of a token verified before, if it has not expired by `now`.
  std::shared_ptr<const TokenClaims> Get(std::string_view signature, std::string_view signed_part,
                                         Clock::time_point now);
  void Put(std::string_view signature, std::string_view signed_part,
           std::shared_ptr<const TokenClaims> claims, Clock::time_point expires);
  size_t size() const;

 private:
  struct Entry {
    std::string signature;
    std::string signed_part;
    std::shared_ptr<const TokenClaims> claims;
    Clock::time_point expires;
  };
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into lru_
};

}  // namespace wharf::auth

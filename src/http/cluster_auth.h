// The closed cluster: every internal request (heartbeats, map, placement, status, member
// removal, chunk put/get/head/delete, inventory) carries proof that its sender holds the
// cluster's shared secret, the key file given with --cluster-key to every daemon and tool.
//
// The proof, three request headers:
//
//   X-Wharf-Date:      <unix time in milliseconds, 1..15 digits>
//   X-Wharf-Nonce:     <32 lowercase hex: 16 random bytes, never reused>
//   X-Wharf-Signature: <64 lowercase hex> = HMAC-SHA256(secret,
//                        "wharf-cluster-v2\n" METHOD "\n" AUTHORITY "\n" TARGET "\n" DATE "\n"
//                        NONCE "\n" CHECKSUM)
//
// AUTHORITY is the Host header as sent (the HOST:PORT the sender addressed: a member's address
// from the map, a master's from --master); TARGET is the request target as sent (path and
// query, still percent-encoded); CHECKSUM is the X-Wharf-Checksum header ("xxh3:<16 hex>",
// common/checksum.h) or "" when absent. The receiver accepts only an AUTHORITY that names
// itself (ClusterAuthVerifier::NamesReceiver, ReceiverNames): so a request captured on its way
// to one member cannot be replayed to another within the window (each member has its own
// nonce cache). A request
// with a body must carry X-Wharf-Checksum, and its body is checked against it (by the chunk PUT
// handler itself, or by the Exchange for every other route): so the signature covers the body
// without the sender hashing it twice. A verifier accepts a date within ±max_skew of its own
// clock and each nonce once (replays within the window are refused).
//
// Signing happens in one place: the HttpClient (http/client.h) signs every request it sends
// when ClientOptions::cluster_key is set. Verifying is the ClusterAuthFilter in front of the
// master's and the chunkserver's routes (not /healthz and /metrics).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "common/log.h"
#include "common/log_throttle.h"
#include "common/metrics.h"
#include "common/status.h"
#include "http/router.h"
#include "http/server.h"

namespace wharf {

inline constexpr std::string_view kDateHeader = "X-Wharf-Date";
inline constexpr std::string_view kNonceHeader = "X-Wharf-Nonce";
inline constexpr std::string_view kSignatureHeader = "X-Wharf-Signature";
inline constexpr std::string_view kChecksumHeader = "X-Wharf-Checksum";

// Fewest secret bytes a key file must hold.
inline constexpr size_t kMinClusterKeyBytes = 32;

// The cluster's shared secret. Immutable once loaded; shared by every client and filter of a
// process.
class ClusterKey {
 public:
  // Reads a key file: its content, trailing whitespace removed, is the secret. Refused
  // (kInvalidArgument, one line naming the file) when it cannot be read, is not a regular
  // file, is readable or writable by group or others, or holds fewer than kMinClusterKeyBytes.
  static Result<std::shared_ptr<const ClusterKey>> Load(const std::string& path);
  // Creates `path` (mode 0600) with a new random secret (64 hex characters) unless it exists;
  // then loads it. kIOError when it cannot be written.
  static Result<std::shared_ptr<const ClusterKey>> LoadOrCreate(const std::string& path);
  // A key from bytes (tests). Refuses fewer than kMinClusterKeyBytes like Load.
  static Result<std::shared_ptr<const ClusterKey>> FromSecret(std::string secret);

  // HMAC-SHA256 of `message` under the secret, as 64 lowercase hex characters.
  std::string Mac(std::string_view message) const;

 private:
  explicit ClusterKey(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

// The string the signature covers (see the format above).
std::string SignedString(std::string_view method, std::string_view authority,
                         std::string_view target, std::string_view date, std::string_view nonce,
                         std::string_view checksum);

// The three proof headers for a request to `authority` (the Host header it is sent with), with
// a fresh nonce, dated `now_ms` (unix ms).
HeaderList SignRequest(const ClusterKey& key, std::string_view method, std::string_view authority,
                       std::string_view target, std::string_view checksum, int64_t now_ms);

// The names of a daemon listening on `bound` (its bound address, "ip:port" or "[v6]:port") and
// known by `advertised` (its --listen as given, --advertise values): each of them that names
// one host and port (not a wildcard or port 0), and for a loopback or wildcard bound address
// "localhost:PORT", "127.0.0.1:PORT" and "[::1]:PORT" (local tools and daemons).
std::vector<std::string> ReceiverNames(const std::string& bound,
                                       const std::vector<std::string>& advertised);

// Unix time in milliseconds from the system clock.
int64_t UnixMillisNow();

// Checks proofs: date window, signature, nonce not seen before. Thread-safe (one mutex around
// the nonce cache).
class ClusterAuthVerifier {
 public:
  // Why a request was refused; the `reason` label of wharf_<component>_auth_failures_total.
  enum class Failure {
    kNone,
    kMissing,    // a proof header is absent
    kMalformed,  // a proof header is not in its format, or a body comes without a checksum
    kSkew,       // the date is outside ±max_skew of our clock
    kSignature,  // the signature does not match
    kReplay,     // the nonce was seen within the window
    kReceiver,   // signed for another receiver: the Host does not name this daemon
  };
  static std::string_view FailureName(Failure f);

  struct Options {
    std::chrono::milliseconds max_skew{std::chrono::seconds(60)};
    // Nonces remembered. When full, the oldest is dropped and no request dated at or before it
    // is accepted any more, so a dropped nonce can never be replayed (the window shrinks under
    // a flood rather than opening).
    size_t max_nonces = 1u << 16;
    std::function<int64_t()> now_ms = &UnixMillisNow;  // injected by tests
    // The HOST:PORT names this daemon is reached by (ReceiverNames): a signed request must
    // name one of them.
    std::vector<std::string> names;
  };
  ClusterAuthVerifier(std::shared_ptr<const ClusterKey> key, Options options);

  struct Request {
    std::string_view method, target;
    std::string_view authority;               // the Host header, "" when absent
    std::string_view date, nonce, signature;  // "" when the header is absent
    std::string_view checksum;                // X-Wharf-Checksum, "" when absent
    bool has_body = false;
  };
  // kNone when the proof holds (the nonce is then remembered: the same request again is a
  // replay).
  Failure Verify(const Request& r);

  // Whether `authority` (a Host header) names this receiver: one of options.names, compared
  // without regard to case.
  bool NamesReceiver(std::string_view authority) const;

  size_t nonces_for_test() const;

 private:
  bool Remember(int64_t date, uint64_t hi, uint64_t lo);  // false: seen (or under the floor)

  const std::shared_ptr<const ClusterKey> key_;
  const Options options_;
  mutable std::mutex mutex_;
  std::set<std::tuple<int64_t, uint64_t, uint64_t>> by_date_;  // (date, nonce) oldest first
  struct PairHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const {
      return std::hash<uint64_t>()(p.first ^ (p.second * 0x9e3779b97f4a7c15ull));
    }
  };
  std::unordered_set<std::pair<uint64_t, uint64_t>, PairHash> seen_;
  int64_t floor_ = INT64_MIN;  // requests dated at or before it are refused
};

// The filter in front of a daemon's routes: a request whose route is not exempt and whose
// proof fails is answered 401 {"error": {"code": "Unauthorized", ...}} before any handler runs
// (so it changes nothing), counted in wharf_<component>_auth_failures_total{reason,...labels},
// and logged (throttled). A request with a body whose route is not in body_checked_by_handler
// gets its body checked against X-Wharf-Checksum as it is read (Exchange::ExpectBodyChecksum).
class ClusterAuthFilter : public Filter {
 public:
  struct Options {
    std::string component;
    Labels metric_labels;
    std::set<std::string, std::less<>> exempt_routes = {"healthz", "metrics"};
    // Routes whose handler verifies the body against X-Wharf-Checksum itself (the chunk PUT).
    std::set<std::string, std::less<>> body_checked_by_handler;
    ClusterAuthVerifier::Options verifier;  // its `names`: what the daemon advertises
  };
  ClusterAuthFilter(std::shared_ptr<const ClusterKey> key, Options options);
  awaitable<Result> OnRequest(Exchange& ex) override;

 private:
  CounterMetric& FailureCounter(ClusterAuthVerifier::Failure f);
  const Options options_;
  ClusterAuthVerifier verifier_;
  Logger log_;
  LogThrottle log_throttle_;
};

}  // namespace wharf

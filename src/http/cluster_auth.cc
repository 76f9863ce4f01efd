#include "http/cluster_auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <nlohmann/json.hpp>

#include "common/checksum.h"
#include "common/fs.h"

namespace wharf {
namespace {

constexpr size_t kMaxKeyFileBytes = 4096;
constexpr size_t kNonceHexBytes = 32;
constexpr size_t kSignatureHexBytes = 64;
constexpr size_t kMaxDateDigits = 15;

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 15];
  }
  return out;
}

int LowerHexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool IsLowerHex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (LowerHexDigit(c) < 0) return false;
  }
  return true;
}

// A header value fit for a log line: at most 255 printable ASCII characters.
std::string LogSafe(std::string_view v) {
  std::string out(v.substr(0, 255));
  for (char& c : out) {
    if (c < 0x21 || c > 0x7e) c = '?';
  }
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

uint64_t HexU64(std::string_view s) {  // 16 checked lowercase hex characters
  uint64_t v = 0;
  for (char c : s) v = v << 4 | static_cast<uint64_t>(LowerHexDigit(c));
  return v;
}

bool ParseDate(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > kMaxDateDigits) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

std::string TrimRight(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

}  // namespace

Result<std::shared_ptr<const ClusterKey>> ClusterKey::FromSecret(std::string secret) {
  if (secret.size() < kMinClusterKeyBytes) {
    return Err(InvalidArgument("cluster key too short: " + std::to_string(secret.size()) +
                               " bytes, at least " + std::to_string(kMinClusterKeyBytes) +
                               " needed (make one with: openssl rand -hex 32)"));
  }
  return std::shared_ptr<const ClusterKey>(new ClusterKey(std::move(secret)));
}

Result<std::shared_ptr<const ClusterKey>> ClusterKey::Load(const std::string& path) {
  const std::string what = "cluster key " + path + ": ";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Err(InvalidArgument(what + "cannot open: " + std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Err(InvalidArgument(what + "cannot stat: " + std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Err(InvalidArgument(what + "not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return Err(
        InvalidArgument(what + "mode " + mode + " lets group or others at it: chmod 600 it"));
  }
  std::string data;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Err(InvalidArgument(what + "cannot read: " + std::strerror(err)));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxKeyFileBytes) {
      ::close(fd);
      return Err(InvalidArgument(what + "larger than " + std::to_string(kMaxKeyFileBytes) +
                                 " bytes: not a key file"));
    }
  }
  ::close(fd);
  auto key = FromSecret(TrimRight(std::move(data)));
  if (!key) return Err(InvalidArgument(what + key.error().message()));
  return key;
}

Result<std::shared_ptr<const ClusterKey>> ClusterKey::LoadOrCreate(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    const std::string secret = RandomHex(32) + "\n";
    size_t off = 0;
    while (off < secret.size()) {
      ssize_t n = ::write(fd, secret.data() + off, secret.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = errno;
        ::close(fd);
        ::unlink(path.c_str());
        return Err(ErrnoError("write cluster key " + path, err));
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      ::unlink(path.c_str());
      return Err(ErrnoError("write cluster key " + path, errno));
    }
  } else if (errno != EEXIST) {
    return Err(ErrnoError("create cluster key " + path, errno));
  }
  return Load(path);
}

std::string ClusterKey::Mac(std::string_view message) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  return Hex(out, len);
}

std::string SignedString(std::string_view method, std::string_view authority,
                         std::string_view target, std::string_view date, std::string_view nonce,
                         std::string_view checksum) {
  std::string s = "wharf-cluster-v2\n";
  s.reserve(s.size() + method.size() + authority.size() + target.size() + date.size() +
            nonce.size() + checksum.size() + 5);
  s += method;
  s += '\n';
  s += authority;
  s += '\n';
  s += target;
  s += '\n';
  s += date;
  s += '\n';
  s += nonce;
  s += '\n';
  s += checksum;
  return s;
}

HeaderList SignRequest(const ClusterKey& key, std::string_view method, std::string_view authority,
                       std::string_view target, std::string_view checksum, int64_t now_ms) {
  const std::string date = std::to_string(now_ms);
  const std::string nonce = RandomHex(16);
  std::string sig = key.Mac(SignedString(method, authority, target, date, nonce, checksum));
  return {{std::string(kDateHeader), date},
          {std::string(kNonceHeader), nonce},
          {std::string(kSignatureHeader), std::move(sig)}};
}

namespace {

// "host:port" split at the last ':'; false without one, or with an empty host or port.
bool SplitAuthority(std::string_view a, std::string_view* host, std::string_view* port) {
  const size_t colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == a.size()) return false;
  *host = a.substr(0, colon);
  *port = a.substr(colon + 1);
  return true;
}

bool Wildcard(std::string_view host) { return host == "0.0.0.0" || host == "[::]" || host == "*"; }

}  // namespace

std::vector<std::string> ReceiverNames(const std::string& bound,
                                       const std::vector<std::string>& advertised) {
  std::vector<std::string> out;
  auto add = [&](std::string name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  };
  std::string_view host, port;
  if (SplitAuthority(bound, &host, &port) && port != "0") {
    if (!Wildcard(host)) add(bound);
    if (Wildcard(host) || host.starts_with("127.") || host == "[::1]") {
      for (const char* local : {"localhost", "127.0.0.1", "[::1]"}) {
        add(std::string(local) + ":" + std::string(port));
      }
    }
  }
  for (const std::string& a : advertised) {
    if (!SplitAuthority(a, &host, &port) || Wildcard(host) || port == "0") continue;
    add(a);
  }
  return out;
}

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view ClusterAuthVerifier::FailureName(Failure f) {
  switch (f) {
    case Failure::kNone:
      return "none";
    case Failure::kMissing:
      return "missing";
    case Failure::kMalformed:
      return "malformed";
    case Failure::kSkew:
      return "clock_skew";
    case Failure::kSignature:
      return "signature";
    case Failure::kReplay:
      return "replay";
    case Failure::kReceiver:
      return "receiver";
  }
  return "unknown";
}

ClusterAuthVerifier::ClusterAuthVerifier(std::shared_ptr<const ClusterKey> key, Options options)
    : key_(std::move(key)), options_(std::move(options)) {}

ClusterAuthVerifier::Failure ClusterAuthVerifier::Verify(const Request& r) {
  if (r.date.empty() || r.nonce.empty() || r.signature.empty()) return Failure::kMissing;
  int64_t date = 0;
  if (!ParseDate(r.date, &date) || !IsLowerHex(r.nonce, kNonceHexBytes) ||
      !IsLowerHex(r.signature, kSignatureHexBytes)) {
    return Failure::kMalformed;
  }
  if (!r.checksum.empty() && !ParseChecksum(r.checksum)) return Failure::kMalformed;
  if (r.has_body && r.checksum.empty()) return Failure::kMalformed;
  const int64_t now = options_.now_ms();
  const int64_t skew = options_.max_skew.count();
  if (date < now - skew || date > now + skew) return Failure::kSkew;
  const std::string want =
      key_->Mac(SignedString(r.method, r.authority, r.target, r.date, r.nonce, r.checksum));
  if (CRYPTO_memcmp(want.data(), r.signature.data(), want.size()) != 0) {
    return Failure::kSignature;
  }
  // Genuine, but maybe for another member: a request captured on its way to one member and
  // replayed to another (whose nonce cache never saw it) names the first in its Host.
  if (!NamesReceiver(r.authority)) return Failure::kReceiver;
  // Only a request with a good signature may take a place in the nonce cache.
  if (!Remember(date, HexU64(r.nonce.substr(0, 16)), HexU64(r.nonce.substr(16)))) {
    return Failure::kReplay;
  }
  return Failure::kNone;
}

bool ClusterAuthVerifier::NamesReceiver(std::string_view authority) const {
  if (authority.empty()) return false;
  for (const std::string& name : options_.names) {
    if (IEquals(authority, name)) return true;
  }
  return false;
}

bool ClusterAuthVerifier::Remember(int64_t date, uint64_t hi, uint64_t lo) {
  std::lock_guard lock(mutex_);
  // Entries that fell out of the window can no longer be replayed (the date check refuses
  // them): forget them.
  const int64_t oldest_valid = options_.now_ms() - options_.max_skew.count();
  while (!by_date_.empty() && std::get<0>(*by_date_.begin()) < oldest_valid) {
    auto it = by_date_.begin();
    seen_.erase({std::get<1>(*it), std::get<2>(*it)});
    by_date_.erase(it);
  }
  if (date <= floor_) return false;
  if (!seen_.insert({hi, lo}).second) return false;
  by_date_.emplace(date, hi, lo);
  while (by_date_.size() > std::max<size_t>(options_.max_nonces, 1)) {
    auto it = by_date_.begin();
    floor_ = std::max(floor_, std::get<0>(*it));
    seen_.erase({std::get<1>(*it), std::get<2>(*it)});
    by_date_.erase(it);
  }
  return date > floor_;
}

size_t ClusterAuthVerifier::nonces_for_test() const {
  std::lock_guard lock(mutex_);
  return by_date_.size();
}

ClusterAuthFilter::ClusterAuthFilter(std::shared_ptr<const ClusterKey> key, Options options)
    : options_(std::move(options)),
      verifier_(std::move(key), options_.verifier),
      log_(GetLogger(options_.component)) {}

CounterMetric& ClusterAuthFilter::FailureCounter(ClusterAuthVerifier::Failure f) {
  Labels labels{{"reason", std::string(ClusterAuthVerifier::FailureName(f))}};
  labels.insert(labels.end(), options_.metric_labels.begin(), options_.metric_labels.end());
  return Metrics().Counter("wharf_" + options_.component + "_auth_failures_total",
                           "Internal requests refused for a missing or bad cluster-key proof.",
                           labels);
}

awaitable<Filter::Result> ClusterAuthFilter::OnRequest(Exchange& ex) {
  if (options_.exempt_routes.contains(ex.context().route)) co_return Result::kContinue;
  const bool has_body = ex.chunked() || ex.content_length().value_or(0) > 0;
  ClusterAuthVerifier::Request r{.method = ex.method_string(),
                                 .target = ex.target(),
                                 .authority = ex.header(http::field::host),
                                 .date = ex.header(kDateHeader),
                                 .nonce = ex.header(kNonceHeader),
                                 .signature = ex.header(kSignatureHeader),
                                 .checksum = ex.header(kChecksumHeader),
                                 .has_body = has_body};
  const ClusterAuthVerifier::Failure f = verifier_.Verify(r);
  if (f == ClusterAuthVerifier::Failure::kNone) {
    if (has_body && !options_.body_checked_by_handler.contains(ex.context().route)) {
      ex.ExpectBodyChecksum(*ParseChecksum(r.checksum));  // Verify checked its format
    }
    co_return Result::kContinue;
  }
  FailureCounter(f).Inc();
  if (auto held = log_throttle_.Admit()) {
    log_->warn(
        "internal request refused: no valid cluster-key proof reason={} remote={} host={} "
        "method={} path={}{}",
        ClusterAuthVerifier::FailureName(f), ex.remote(), LogSafe(ex.header(http::field::host)),
        std::string(ex.method_string()), std::string(ex.path()), Held(*held));
    if (f == ClusterAuthVerifier::Failure::kReceiver) {
      log_->warn(
          "a signed request named host={}, not one of this daemon's names: a request replayed "
          "from another member, or a name to give with --advertise",
          LogSafe(ex.header(http::field::host)));
    }
  }
  nlohmann::json body = {
      {"error",
       {{"code", "Unauthenticated"},
        {"message", "internal request without a valid cluster-key proof (" +
                        std::string(ClusterAuthVerifier::FailureName(f)) + ")"}}}};
  ex.CloseAfter();  // the body, if any, is not read
  (void)co_await ex.Respond(http::status::unauthorized, body.dump());
  co_return Result::kStop;
}

}  // namespace wharf

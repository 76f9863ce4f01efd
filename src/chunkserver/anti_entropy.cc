#include "chunkserver/anti_entropy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/fs.h"

namespace wharf {

using nlohmann::json;

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

size_t RangeOfId(std::string_view id) {
  if (id.size() < 2) return 0;
  int hi = HexValue(id[0]), lo = HexValue(id[1]);
  if (hi < 0 || lo < 0) return 0;
  return static_cast<size_t>(hi * 16 + lo);
}

std::string RangePrefix(size_t range) { return fmt::format("{:02x}", range % kDigestRanges); }

json RangeDigests::ToJson() const {
  json digests_j = json::array();
  json counts_j = json::array();
  for (size_t i = 0; i < kDigestRanges; ++i) {
    digests_j.push_back(fmt::format("{:016x}", digests[i]));
    counts_j.push_back(counts[i]);
  }
  return {{"ranges", kDigestRanges}, {"digests", std::move(digests_j)}, {"counts", counts_j}};
}

Result<RangeDigests> RangeDigests::Parse(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const Status bad = InvalidArgument("range digests: malformed");
  if (j.is_discarded() || !j.is_object()) return Err(bad);
  auto ranges = j.find("ranges");
  auto digests = j.find("digests");
  auto counts = j.find("counts");
  if (ranges == j.end() || digests == j.end() || counts == j.end()) return Err(bad);
  if (!ranges->is_number_unsigned() || ranges->get<uint64_t>() != kDigestRanges) {
    return Err(InvalidArgument(fmt::format("range digests: want {} ranges", kDigestRanges)));
  }
  if (!digests->is_array() || digests->size() != kDigestRanges || !counts->is_array() ||
      counts->size() != kDigestRanges) {
    return Err(bad);
  }
  RangeDigests out;
  for (size_t i = 0; i < kDigestRanges; ++i) {
    const json& d = (*digests)[i];
    const json& c = (*counts)[i];
    if (!d.is_string() || !c.is_number_unsigned()) return Err(bad);
    const std::string& s = d.get_ref<const std::string&>();
    if (s.size() != 16) return Err(bad);
    uint64_t v = 0;
    for (char ch : s) {
      int h = HexValue(ch);
      if (h < 0) return Err(bad);
      v = v << 4 | static_cast<uint64_t>(h);
    }
    out.digests[i] = v;
    out.counts[i] = c.get<uint64_t>();
  }
  return out;
}

RangeDigester::RangeDigester() : state_(XXH3_createState()) {}
RangeDigester::~RangeDigester() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void RangeDigester::Flush() {
  if (current_ >= 0) {
    out_.digests[current_] = XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_));
  }
}

void RangeDigester::Add(std::string_view id) {
  if (!ValidChunkId(id)) return;
  const int range = static_cast<int>(RangeOfId(id));
  auto* st = static_cast<XXH3_state_t*>(state_);
  if (range != current_) {
    Flush();
    current_ = range;
    XXH3_64bits_reset(st);
  }
  XXH3_64bits_update(st, id.data(), id.size());
  XXH3_64bits_update(st, "\n", 1);
  out_.counts[range]++;
}

RangeDigests RangeDigester::Finish() {
  Flush();
  current_ = -1;
  // Empty ranges digest as XXH3 of nothing, so that "empty" compares equal everywhere.
  const uint64_t empty = XXH3_64bits(nullptr, 0);
  for (size_t i = 0; i < kDigestRanges; ++i) {
    if (out_.counts[i] == 0) out_.digests[i] = empty;
  }
  RangeDigests out = out_;
  out_ = RangeDigests{};
  return out;
}

void Tombstones::ExpireLocked(TimePoint now) {
  while (!order_.empty() && (order_.front().first + ttl_ <= now || order_.size() > max_)) {
    auto it = by_id_.find(order_.front().second);
    if (it != by_id_.end() && it->second == order_.front().first) by_id_.erase(it);
    order_.pop_front();
  }
}

void Tombstones::AddLocked(const std::string& id, TimePoint at) {
  by_id_[id] = at;
  order_.emplace_back(at, id);
}

Tombstones::~Tombstones() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

constexpr std::string_view kTombstoneHeader = "wharf-tombstones 1\n";

int64_t UnixMs(Tombstones::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

std::string Tombstones::Record(std::string_view id, int64_t unix_ms) {
  std::string body = fmt::format("D {} {}", id, unix_ms);
  return fmt::format("{} {:016x}\n", body, XXH3_64bits(body.data(), body.size()));
}

std::optional<std::pair<std::string, int64_t>> Tombstones::ParseRecord(std::string_view line) {
  // "D " + 32 + " " + 1..19 digits + " " + 16 hex
  if (line.size() < 2 + 32 + 1 + 1 + 1 + 16 || line.size() > 2 + 32 + 1 + 19 + 1 + 16) {
    return std::nullopt;
  }
  if (line.substr(0, 2) != "D " || line[34] != ' ') return std::nullopt;
  const std::string_view id = line.substr(2, 32);
  if (!ValidChunkId(id)) return std::nullopt;
  const size_t last = line.size() - 17;
  if (line[last] != ' ') return std::nullopt;
  const std::string_view digits = line.substr(35, last - 35);
  if (digits.empty() || digits.size() > 18) return std::nullopt;  // fits an int64
  int64_t ms = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    ms = ms * 10 + (c - '0');
  }
  uint64_t sum = 0;
  for (char c : line.substr(last + 1)) {
    const int h = HexValue(c);
    if (h < 0) return std::nullopt;
    sum = sum << 4 | static_cast<uint64_t>(h);
  }
  const std::string_view body = line.substr(0, last);
  if (XXH3_64bits(body.data(), body.size()) != sum) return std::nullopt;
  return std::make_pair(std::string(id), ms);
}

Result<Tombstones::LoadReport> Tombstones::Open(const std::string& path, TimePoint now) {
  LoadReport report;
  auto text = ReadFile(path);
  if (!text && text.error().code() != Code::kNotFound) return Err(text.error());
  std::vector<std::pair<int64_t, std::string>> found;
  if (text) {
    std::string_view rest = *text;
    if (rest.substr(0, kTombstoneHeader.size()) == kTombstoneHeader) {
      rest.remove_prefix(kTombstoneHeader.size());
    }  // else: not its header; the records still speak for themselves (each is checksummed)
    const int64_t now_ms = UnixMs(now);
    const int64_t ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ttl_).count();
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      if (nl == std::string_view::npos) {  // a torn tail: the crash came mid-append
        ++report.skipped;
        break;
      }
      auto rec = ParseRecord(rest.substr(0, nl));
      rest.remove_prefix(nl + 1);
      if (!rec) {
        ++report.skipped;
        continue;
      }
      // A time from the future (a clock set back) counts as now: it expires a ttl from here.
      const int64_t at = std::min(rec->second, now_ms);
      if (at + ttl_ms <= now_ms) {
        ++report.expired;
        continue;
      }
      found.emplace_back(at, std::move(rec->first));
    }
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  {
    std::lock_guard lock(mu_);
    for (auto& [ms, id] : found) {
      AddLocked(id, TimePoint(std::chrono::milliseconds(ms)));
    }
    ExpireLocked(now);
    report.loaded = by_id_.size();
  }
  std::scoped_lock locks(sync_mu_, file_mu_);
  path_ = path;
  WHARF_RETURN_IF_ERROR(CompactLocked(now));
  return report;
}

Status Tombstones::CompactLocked(TimePoint now) {
  std::string out(kTombstoneHeader);
  size_t n = 0;
  {
    std::lock_guard lock(mu_);
    ExpireLocked(now);
    for (const auto& [at, id] : order_) {
      auto it = by_id_.find(id);
      if (it == by_id_.end() || it->second != at) continue;  // a stale entry of the queue
      out += Record(id, UnixMs(at));
      ++n;
    }
  }
  WHARF_RETURN_IF_ERROR(WriteFileAtomic(path_, out));
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path_, errno);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  records_ = n;
  ++epoch_;
  return Status::Ok();
}

Status Tombstones::Add(const std::string& id, TimePoint now) {
  {
    std::lock_guard lock(mu_);
    AddLocked(id, now);
    ExpireLocked(now);
  }
  uint64_t mine = 0, epoch = 0;
  {
    std::lock_guard file(file_mu_);
    if (fd_ < 0) return Status::Ok();  // in memory only (not opened)
    WHARF_RETURN_IF_ERROR(WriteAll(fd_, Record(id, UnixMs(now)), path_));
    mine = ++appended_;
    epoch = epoch_;
    ++records_;
  }
  // One fdatasync covers every record appended before it: Adds that appended meanwhile find
  // theirs synced when they get sync_mu_ (a group commit). Appends go on during the sync; the
  // fd stays open through it (only a compaction replaces it, under sync_mu_).
  std::lock_guard sync(sync_mu_);
  int fd;
  uint64_t upto;
  {
    std::lock_guard file(file_mu_);
    if (epoch_ != epoch || synced_ >= mine) return Status::Ok();  // compacted, or synced
    fd = fd_;
    upto = appended_;
  }
  if (::fdatasync(fd) != 0) return ErrnoError("fdatasync " + path_, errno);
  synced_ = upto;
  size_t live;
  {
    std::lock_guard lock(mu_);
    live = by_id_.size();
  }
  std::lock_guard file(file_mu_);
  if (records_ > 2 * live + 1024) WHARF_RETURN_IF_ERROR(CompactLocked(now));
  return Status::Ok();
}

size_t Tombstones::records_on_disk() {
  std::lock_guard file(file_mu_);
  return fd_ < 0 ? 0 : records_;
}

bool Tombstones::Contains(const std::string& id, TimePoint now) {
  std::lock_guard lock(mu_);
  ExpireLocked(now);
  return by_id_.count(id) != 0;
}

size_t Tombstones::size() {
  std::lock_guard lock(mu_);
  return by_id_.size();
}

}  // namespace wharf

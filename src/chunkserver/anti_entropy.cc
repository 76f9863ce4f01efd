#include "chunkserver/anti_entropy.h"

#include <fmt/format.h>
#include <xxhash.h>

#include "common/checksum.h"
#include "common/chunk_id.h"

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

void Tombstones::Add(const std::string& id, TimePoint now) {
  std::lock_guard lock(mu_);
  by_id_[id] = now;
  order_.emplace_back(now, id);
  ExpireLocked(now);
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

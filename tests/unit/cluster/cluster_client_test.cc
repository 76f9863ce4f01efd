// ClusterClient (the ChunkCluster over HTTP) against small in-process fake masters and
// chunkservers on port 0.
#include "cluster/cluster_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>

#include "common/async.h"
#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/log.h"
#include "common/metrics.h"
#include "http/range.h"
#include "http/server.h"

namespace wharf {
namespace {

// Speaks the chunk API of chunkserver.h from memory, and remembers every X-Request-Id.
class FakeChunkserver {
 public:
  explicit FakeChunkserver(asio::any_io_executor ex, ServerOptions options = {})
      : server_(
            std::make_unique<Server>(ex, options, [this](Exchange& ex) { return Handle(ex); })) {
    EXPECT_TRUE(server_->Listen("127.0.0.1:0").ok());
    server_->Start();
  }
  ~FakeChunkserver() { server_->Stop(); }
  std::string addr() const { return server_->local_address(); }

  std::map<std::string, std::string> chunks;
  std::vector<std::string> request_ids;
  bool corrupt = false;
  size_t corrupt_at = 0;  // the byte a corrupt copy has flipped
  // Set: a whole-chunk GET sends its head and this many bytes, then stops (a hung member)
  // until `stalling` is cleared.
  std::optional<size_t> stall_after;
  bool stalling = true;

 private:
  awaitable<void> Handle(Exchange& ex) {
    if (auto rid = ex.header("X-Request-Id"); !rid.empty()) request_ids.emplace_back(rid);
    constexpr std::string_view kPrefix = "/v1/chunks/";
    if (ex.path() == "/v1/chunks") {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& [id, data] : chunks) {
        list.push_back({{"id", id},
                        {"size", data.size()},
                        {"checksum", FormatChecksum(ChecksumOf(data))},
                        {"mtime", 1234}});
      }
      nlohmann::json body = {{"chunks", list}, {"next", nullptr}};
      (void)co_await ex.Respond(http::status::ok, body.dump());
      co_return;
    }
    if (!ex.path().starts_with(kPrefix)) {
      (void)co_await ex.Respond(http::status::not_found, "{}");
      co_return;
    }
    const std::string id(ex.path().substr(kPrefix.size()));
    if (ex.method() == http::verb::put) {
      auto body = co_await ex.ReadAll(1u << 20);
      if (!body || ParseChecksum(ex.header("X-Wharf-Checksum")) != ChecksumOf(*body)) {
        (void)co_await ex.Respond(http::status::bad_request, "{}");
        co_return;
      }
      chunks[id] = std::move(*body);
      (void)co_await ex.Respond(http::status::created, "{}");
      co_return;
    }
    auto it = chunks.find(id);
    if (it == chunks.end()) {
      (void)co_await ex.Respond(http::status::not_found, "{}");
      co_return;
    }
    if (ex.method() == http::verb::delete_) {
      chunks.erase(it);
      (void)co_await ex.Respond(http::status::no_content, "");
      co_return;
    }
    std::string data = it->second;
    if (corrupt) data[corrupt_at < data.size() ? corrupt_at : 0] ^= 1;
    ex.AddHeader("X-Wharf-Checksum", FormatChecksum(ChecksumOf(it->second)));
    if (auto h = ex.header(http::field::range); !h.empty()) {
      auto range = ParseRangeHeader(h, data.size());
      if (range && *range) {
        (void)co_await ex.Respond(http::status::partial_content,
                                  data.substr((*range)->first, (*range)->length()),
                                  "application/octet-stream");
        co_return;
      }
    }
    if (stall_after) {
      if (!(co_await ex.BeginResponse(http::status::ok, data.size())).ok()) co_return;
      if (!(co_await ex.WriteBody(data.data(), *stall_after)).ok()) co_return;
      while (stalling) co_await SleepFor(std::chrono::milliseconds(20));
      ex.CloseAfter();
      co_return;
    }
    (void)co_await ex.Respond(http::status::ok, data, "application/octet-stream");
  }

  std::unique_ptr<Server> server_;
};

// Serves `map` at /v1/map and remembers every X-Request-Id.
class FakeMaster {
 public:
  explicit FakeMaster(asio::any_io_executor ex)
      : server_(std::make_unique<Server>(ex, ServerOptions{},
                                         [this](Exchange& ex) { return Handle(ex); })) {
    EXPECT_TRUE(server_->Listen("127.0.0.1:0").ok());
    server_->Start();
  }
  ~FakeMaster() { server_->Stop(); }
  std::string addr() const { return server_->local_address(); }

  ClusterMap map;
  std::vector<std::string> request_ids;

 private:
  awaitable<void> Handle(Exchange& ex) {
    if (auto rid = ex.header("X-Request-Id"); !rid.empty()) request_ids.emplace_back(rid);
    (void)co_await ex.Respond(http::status::ok, map.ToJson(true).dump());
  }
  std::unique_ptr<Server> server_;
};

MemberInfo Member(std::string id, std::string addr, MemberState state = MemberState::kActive) {
  MemberInfo m;
  m.id = std::move(id);
  m.addr = std::move(addr);
  m.state = state;
  m.capacity = m.free = 1ull << 40;
  return m;
}

GroupInfo Group(std::string id, std::vector<MemberInfo> members) {
  GroupInfo g;
  g.id = std::move(id);
  g.writable = true;
  g.members = std::move(members);
  return g;
}

// An address nothing listens on: a port bound once, then closed.
std::string DeadAddress(asio::io_context& io) {
  Server s(io.get_executor(), ServerOptions{}, [](Exchange&) -> awaitable<void> { co_return; });
  EXPECT_TRUE(s.Listen("127.0.0.1:0").ok());
  return s.local_address();
}

class ClusterClientTest : public ::testing::Test {
 protected:
  ClusterClientTest()
      : master_(io_.get_executor()), cs1_(io_.get_executor()), cs2_(io_.get_executor()) {}

  std::unique_ptr<ClusterClient> Client() {
    ClusterClientOptions o;
    o.masters = {DeadAddress(io_), master_.addr()};  // the first master is dead: skipped
    return std::make_unique<ClusterClient>(io_.get_executor(), o);
  }

  template <typename F>
  void Run(F f) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          co_await f();
          done = true;
          io_.stop();
        },
        asio::detached);
    io_.run();
    io_.restart();
    ASSERT_TRUE(done);
  }

  asio::io_context io_;
  FakeMaster master_;
  FakeChunkserver cs1_, cs2_;
};

TEST_F(ClusterClientTest, WritesReadsListsAndDeletesAcrossTheGroupWithRequestIds) {
  master_.map.version = 1;
  master_.map.groups = {Group("g1", {Member("m1", cs1_.addr()), Member("m2", cs2_.addr())})};
  auto client = Client();
  const std::string data(10000, 'q');
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh("rid-map")).ok());
    EXPECT_TRUE(client->writable());
    auto g = client->ChooseGroup(data.size(), {});
    EXPECT_TRUE(g.has_value());
    if (!g) co_return;
    EXPECT_TRUE((co_await client->PutChunkToGroup(*g, ref, data, "rid-put")).ok());
    auto whole = co_await client->GetChunk(ref, 0, data.size(), "rid-get");
    EXPECT_TRUE(whole.has_value() && *whole == data);
    auto part = co_await client->GetChunk(ref, 100, 50);
    EXPECT_TRUE(part.has_value() && *part == data.substr(100, 50));
    auto bad = co_await client->GetChunk(ref, 9990, 11);
    EXPECT_EQ(bad.error().code(), Code::kRangeInvalid);
    auto page = co_await client->ListMemberChunks(g->members[0], "", 100, "rid-list");
    EXPECT_TRUE(page.has_value());
    if (page) {
      EXPECT_EQ(page->chunks.size(), 1u);
      EXPECT_EQ(page->chunks[0].id, ref.id);
      EXPECT_EQ(page->chunks[0].size, data.size());
      EXPECT_EQ(page->chunks[0].checksum, ref.checksum);
      EXPECT_TRUE(page->next.empty());
    }
    EXPECT_TRUE((co_await client->DeleteChunk(ref, "rid-del")).ok());
    auto again = co_await client->DeleteMemberChunk(g->members[1], ref.id, "rid-del1");
    EXPECT_TRUE(again.has_value() && !*again);  // already gone
  });
  EXPECT_TRUE(cs1_.chunks.empty());
  EXPECT_TRUE(cs2_.chunks.empty());
  EXPECT_EQ(master_.request_ids, std::vector<std::string>{"rid-map"});
  // Both members saw the put and the delete; one of them served the read.
  for (auto* cs : {&cs1_, &cs2_}) {
    EXPECT_NE(std::find(cs->request_ids.begin(), cs->request_ids.end(), "rid-put"),
              cs->request_ids.end());
    EXPECT_NE(std::find(cs->request_ids.begin(), cs->request_ids.end(), "rid-del"),
              cs->request_ids.end());
  }
  size_t gets = 0;
  for (auto* cs : {&cs1_, &cs2_}) {
    gets += std::count(cs->request_ids.begin(), cs->request_ids.end(), "rid-get");
  }
  EXPECT_EQ(gets, 1u);
  EXPECT_EQ(std::count(cs1_.request_ids.begin(), cs1_.request_ids.end(), "rid-list"), 1);
  EXPECT_EQ(std::count(cs2_.request_ids.begin(), cs2_.request_ids.end(), "rid-del1"), 1);
}

TEST_F(ClusterClientTest, ReadFailsOverFromADeadMember) {
  const std::string data(3000, 'd');
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs2_.chunks[ref.id] = data;
  // The dead member is active (read first); the live one readonly (read after it).
  master_.map.groups = {Group("g1", {Member("dead", DeadAddress(io_)),
                                     Member("live", cs2_.addr(), MemberState::kReadonly)})};
  auto client = Client();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    for (int i = 0; i < 2; ++i) {
      auto got = co_await client->GetChunk(ref, 0, data.size());
      EXPECT_TRUE(got.has_value() && *got == data) << (got ? "" : got.error().ToString());
    }
    // A write needs every member: it fails, and so does a group delete.
    GroupInfo g = client->map()->groups[0];
    EXPECT_EQ((co_await client->PutChunkToGroup(g, ref, data)).code(), Code::kUnavailable);
    EXPECT_EQ((co_await client->DeleteChunk(ref)).code(), Code::kUnavailable);
  });
}

TEST_F(ClusterClientTest, CorruptCopyIsSkippedAndAllCorruptIsCorruption) {
  const std::string data(5000, 'c');
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs1_.chunks[ref.id] = data;
  cs2_.chunks[ref.id] = data;
  cs1_.corrupt = true;
  master_.map.groups = {
      Group("g1", {Member("m1", cs1_.addr()), Member("m2", cs2_.addr(), MemberState::kReadonly)})};
  auto client = Client();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    auto got = co_await client->GetChunk(ref, 0, data.size());
    EXPECT_TRUE(got.has_value() && *got == data);
    cs2_.corrupt = true;
    auto bad = co_await client->GetChunk(ref, 0, data.size());
    EXPECT_FALSE(bad.has_value());
    if (!bad) {
      EXPECT_EQ(bad.error().code(), Code::kCorruption);
    }
  });
}

TEST_F(ClusterClientTest, ChosenGroupStaysValidAfterTheMapIsReplaced) {
  master_.map.version = 1;
  master_.map.groups = {Group("g1", {Member("m1", cs1_.addr())})};
  auto client = Client();
  const std::string data(100, 'v');
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    auto g = client->ChooseGroup(data.size(), {});
    EXPECT_TRUE(g.has_value());
    if (!g) co_return;
    // The map changes under the writer: g1 now has another member, and a g2 appears.
    master_.map.version = 2;
    master_.map.groups = {Group("g1", {Member("m2", cs2_.addr())}),
                          Group("g2", {Member("m3", cs2_.addr())})};
    EXPECT_TRUE((co_await client->Refresh()).ok());
    EXPECT_EQ(client->map()->version, 2u);
    EXPECT_EQ(g->members.size(), 1u);
    if (g->members.size() != 1) co_return;
    EXPECT_EQ(g->members[0].id, "m1");
    EXPECT_EQ(g->members[0].addr, cs1_.addr());
    EXPECT_TRUE((co_await client->PutChunkToGroup(*g, ref, data)).ok());
    auto excluded = client->ChooseGroup(data.size(), {"g1", "g2"});
    EXPECT_EQ(excluded.error().code(), Code::kUnavailable);
  });
  EXPECT_EQ(cs1_.chunks.count(ref.id), 1u);
  EXPECT_EQ(cs2_.chunks.count(ref.id), 0u);
}

TEST_F(ClusterClientTest, NoMasterReachableIsUnavailable) {
  ClusterClientOptions o;
  o.masters = {DeadAddress(io_)};
  ClusterClient client(io_.get_executor(), o);
  Run([&]() -> awaitable<void> {
    EXPECT_EQ((co_await client.Refresh()).code(), Code::kUnavailable);
    EXPECT_FALSE(client.map().has_value());
    EXPECT_FALSE(client.writable());
    EXPECT_EQ(client.ChooseGroup(1, {}).error().code(), Code::kUnavailable);
  });
}

}  // namespace
}  // namespace wharf

namespace wharf {
namespace {

// Reads a chunk with StreamChunk, collecting what the sink got.
struct Streamed {
  Status status;
  std::string bytes;
};

awaitable<Streamed> StreamAll(ClusterClient& client, ChunkRef ref, uint64_t offset, uint64_t len) {
  auto out = std::make_shared<Streamed>();
  ChunkSink sink = [out](std::string_view piece) -> awaitable<Status> {
    out->bytes.append(piece);
    co_return Status::Ok();
  };
  out->status = co_await client.StreamChunk(ref, offset, len, sink);
  co_return *out;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131) ^ (i >> 11));
  return s;
}

TEST_F(ClusterClientTest, StreamedReadsAreExactForEveryRange) {
  const std::string data = Pattern(3 * kVerifiedTailBytes + 12345);  // streamed + held tail
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs1_.chunks[ref.id] = data;
  cs2_.chunks[ref.id] = data;
  master_.map.groups = {Group("g1", {Member("m1", cs1_.addr()), Member("m2", cs2_.addr())})};
  auto client = Client();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    const std::vector<std::pair<uint64_t, uint64_t>> ranges = {
        {0, data.size()},         {1, 10}, {kVerifiedTailBytes - 3, 7}, {data.size() - 5, 5},
        {100, data.size() - 200}, {0, 0}};
    for (auto [off, len] : ranges) {
      Streamed got = co_await StreamAll(*client, ref, off, len);
      EXPECT_TRUE(got.status.ok()) << got.status.ToString();
      EXPECT_TRUE(got.bytes == data.substr(off, len)) << "range " << off << "+" << len;
    }
    Streamed bad = co_await StreamAll(*client, ref, data.size() - 1, 2);
    EXPECT_EQ(bad.status.code(), Code::kRangeInvalid);
  });
}

TEST_F(ClusterClientTest, StreamedReadRetriesOnceWhenThePooledConnectionWasClosed) {
  // The only member holding the chunk closes idle connections quickly: the second read finds
  // its pooled connection stale and must go again on a fresh one, not fail.
  ServerOptions quick;
  quick.idle_timeout = std::chrono::milliseconds(50);
  FakeChunkserver cs(io_.get_executor(), quick);
  const std::string data = Pattern(5000);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs.chunks[ref.id] = data;
  master_.map.groups = {Group("g1", {Member("m1", cs.addr())})};
  auto client = Client();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    for (int i = 0; i < 3; ++i) {
      Streamed got = co_await StreamAll(*client, ref, 0, data.size());
      EXPECT_TRUE(got.status.ok()) << "read " << i << ": " << got.status.ToString();
      EXPECT_TRUE(got.bytes == data);
      co_await SleepFor(std::chrono::milliseconds(300));
    }
  });
}

TEST_F(ClusterClientTest, StreamedReadOfASmallChunkFailsOverFromACorruptCopy) {
  // A chunk of at most kVerifiedTailBytes is held back whole: a bad copy is never handed on.
  const std::string data = Pattern(kVerifiedTailBytes);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs1_.chunks[ref.id] = data;
  cs2_.chunks[ref.id] = data;
  cs1_.corrupt = true;
  cs1_.corrupt_at = 1000;
  master_.map.groups = {
      Group("g1", {Member("m1", cs1_.addr()), Member("m2", cs2_.addr(), MemberState::kReadonly)})};
  auto& mismatches = Metrics().Counter("wharf_gateway_read_checksum_mismatch_total", "");
  const uint64_t before = mismatches.Value();
  auto client = Client();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    Streamed got = co_await StreamAll(*client, ref, 0, data.size());
    EXPECT_TRUE(got.status.ok()) << got.status.ToString();
    EXPECT_TRUE(got.bytes == data);
    cs2_.corrupt = true;
    Streamed bad = co_await StreamAll(*client, ref, 0, data.size());
    EXPECT_EQ(bad.status.code(), Code::kCorruption);
    EXPECT_TRUE(bad.bytes.empty());
  });
  EXPECT_EQ(mismatches.Value(), before + 3);
}

TEST_F(ClusterClientTest, StreamedReadOfALargeCorruptCopyEndsWithCorruptionNeverWithItsTail) {
  // The flipped byte is in the streamed part: it was handed on before the copy could be
  // checked, so the read cannot fail over and must end in an error (the caller cuts the
  // response); the held-back tail is never handed on, so the bytes are always short.
  const std::string data = Pattern(4 * kVerifiedTailBytes);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs1_.chunks[ref.id] = data;
  cs2_.chunks[ref.id] = data;
  cs1_.corrupt = true;
  cs1_.corrupt_at = 10;
  master_.map.groups = {
      Group("g1", {Member("m1", cs1_.addr()), Member("m2", cs2_.addr(), MemberState::kReadonly)})};
  auto& aborted = Metrics().Counter("wharf_gateway_read_aborted_total", "");
  const uint64_t before = aborted.Value();
  auto client = Client();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    Streamed bad = co_await StreamAll(*client, ref, 0, data.size());
    EXPECT_EQ(bad.status.code(), Code::kCorruption);
    EXPECT_EQ(bad.bytes.size(), data.size() - kVerifiedTailBytes);
    // A range that ends before the flipped byte's piece is read from the same copy, the
    // whole copy is still checked.
    Streamed part = co_await StreamAll(*client, ref, 0, 5);
    EXPECT_EQ(part.status.code(), Code::kCorruption);
    // The flipped byte in the tail instead: caught before the tail is handed on, and the
    // read fails over... too late, the head was handed on: still an error, never the tail.
    cs1_.corrupt_at = data.size() - 1;
    Streamed tail = co_await StreamAll(*client, ref, 0, data.size());
    EXPECT_EQ(tail.status.code(), Code::kCorruption);
    EXPECT_TRUE(tail.bytes == data.substr(0, data.size() - kVerifiedTailBytes));
    // A range inside the tail alone: nothing was handed on, so it fails over to the good copy.
    Streamed in_tail = co_await StreamAll(*client, ref, data.size() - 100, 100);
    EXPECT_TRUE(in_tail.status.ok()) << in_tail.status.ToString();
    EXPECT_TRUE(in_tail.bytes == data.substr(data.size() - 100));
  });
  EXPECT_EQ(aborted.Value(), before + 3);
}

}  // namespace
}  // namespace wharf

namespace wharf {
namespace {

// A member that is hung (SIGSTOP): the kernel completes connections to its port, takes what
// fits in the socket buffers, and nothing ever answers.
class HungMember {
 public:
  explicit HungMember(asio::io_context& io) : acceptor_(io) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
  }
  std::string addr() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

 private:
  tcp::acceptor acceptor_;  // never accepts
};

class DeadlineTest : public ClusterClientTest {
 protected:
  static constexpr std::chrono::milliseconds kTimeout{600};
  std::unique_ptr<ClusterClient> DeadlineClient() {
    ClusterClientOptions o;
    o.masters = {master_.addr()};
    o.member_timeout = kTimeout;  // hedge after 150 ms
    return std::make_unique<ClusterClient>(io_.get_executor(), o);
  }
  // Lets the attempts a hedge left behind end (their deadline) before the client goes.
  static awaitable<void> Drain() { co_await SleepFor(kTimeout + std::chrono::milliseconds(200)); }
  HungMember hung_{io_};
};

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

TEST_F(DeadlineTest, AReadFromAHungMemberIsHedgedToTheOtherAndTheHungOneIsReadLastAfter) {
  const std::string data = Pattern(200000);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs2_.chunks[ref.id] = data;
  // The hung member is active and first in every read order (the other is readonly).
  master_.map.groups = {Group(
      "g1", {Member("hung", hung_.addr()), Member("live", cs2_.addr(), MemberState::kReadonly)})};
  auto& hedges = Metrics().Counter("wharf_gateway_read_hedges_total", "");
  const uint64_t hedges_before = hedges.Value();
  auto& hedge_won =
      Metrics().Counter("wharf_gateway_hedged_reads_total", "", {{"outcome", "hedge_won"}});
  auto& first_won =
      Metrics().Counter("wharf_gateway_hedged_reads_total", "", {{"outcome", "first_won"}});
  const uint64_t won_before = hedge_won.Value(), first_before = first_won.Value();
  auto client = DeadlineClient();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    auto t = Clock::now();
    auto got = co_await client->GetChunk(ref, 0, data.size());
    EXPECT_TRUE(got.has_value() && *got == data) << (got ? "" : got.error().ToString());
    // The hedge (a quarter of the timeout) answered, long before the hung member's deadline.
    EXPECT_LT(SecondsSince(t), 0.5);
    EXPECT_EQ(hedges.Value(), hedges_before + 1);
    EXPECT_EQ(hedge_won.Value(), won_before + 1);  // the hedge delivered, not the hung member
    EXPECT_EQ(first_won.Value(), first_before);
    // Now a suspect: read last, so neither a whole read nor a streamed one waits for it.
    t = Clock::now();
    auto again = co_await client->GetChunk(ref, 10, 100);
    EXPECT_TRUE(again.has_value() && *again == data.substr(10, 100));
    Streamed streamed = co_await StreamAll(*client, ref, 0, data.size());
    EXPECT_TRUE(streamed.status.ok()) << streamed.status.ToString();
    EXPECT_TRUE(streamed.bytes == data);
    EXPECT_LT(SecondsSince(t), 0.12);
    EXPECT_EQ(hedges.Value(), hedges_before + 1);
    co_await Drain();
  });
}

TEST_F(DeadlineTest, AStreamedReadOpeningAHungMemberIsHedged) {
  const std::string data = Pattern(3 * kVerifiedTailBytes + 7);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs2_.chunks[ref.id] = data;
  master_.map.groups = {Group(
      "g1", {Member("hung", hung_.addr()), Member("live", cs2_.addr(), MemberState::kReadonly)})};
  auto client = DeadlineClient();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    const auto t = Clock::now();
    Streamed got = co_await StreamAll(*client, ref, 5, data.size() - 5);
    EXPECT_TRUE(got.status.ok()) << got.status.ToString();
    EXPECT_TRUE(got.bytes == data.substr(5));
    EXPECT_LT(SecondsSince(t), 0.5);
    co_await Drain();
  });
}

TEST_F(DeadlineTest, AStreamedReadWhoseMemberStopsMidCopyIsResumedFromAnotherMember) {
  // The first member sends its head and 1.5 MiB, then hangs: bytes were handed on, so the read
  // cannot start over; the other member's copy is read, checked to match up to there, and
  // the rest comes from it. The reader sees every byte once, in order.
  const std::string data = Pattern(4 * kVerifiedTailBytes + 99);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs1_.chunks[ref.id] = data;
  cs2_.chunks[ref.id] = data;
  cs1_.stall_after = kVerifiedTailBytes + kVerifiedTailBytes / 2;
  master_.map.groups = {
      Group("g1", {Member("m1", cs1_.addr()), Member("m2", cs2_.addr(), MemberState::kReadonly)})};
  auto& resumed = Metrics().Counter("wharf_gateway_read_resumed_total", "");
  auto& aborted = Metrics().Counter("wharf_gateway_read_aborted_total", "");
  const uint64_t resumed_before = resumed.Value(), aborted_before = aborted.Value();
  auto client = DeadlineClient();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    const auto t = Clock::now();
    Streamed got = co_await StreamAll(*client, ref, 3, data.size() - 3);
    EXPECT_TRUE(got.status.ok()) << got.status.ToString();
    EXPECT_TRUE(got.bytes == data.substr(3));
    // The progress deadline, not a minute.
    EXPECT_LT(SecondsSince(t), 3 * std::chrono::duration<double>(kTimeout).count());
    EXPECT_EQ(resumed.Value(), resumed_before + 1);
    EXPECT_EQ(aborted.Value(), aborted_before);
    cs1_.stalling = false;
    co_await Drain();
  });
}

TEST_F(DeadlineTest, AResumedReadWhoseOtherCopyDiffersIsCorruptionNeverMixedBytes) {
  const std::string data = Pattern(4 * kVerifiedTailBytes);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  cs1_.chunks[ref.id] = data;
  cs2_.chunks[ref.id] = data;
  cs1_.stall_after = 2 * kVerifiedTailBytes;
  cs2_.corrupt = true;  // differs at byte 10, which the first copy already handed on
  cs2_.corrupt_at = 10;
  master_.map.groups = {
      Group("g1", {Member("m1", cs1_.addr()), Member("m2", cs2_.addr(), MemberState::kReadonly)})};
  auto client = DeadlineClient();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    Streamed got = co_await StreamAll(*client, ref, 0, data.size());
    EXPECT_EQ(got.status.code(), Code::kCorruption) << got.status.ToString();
    EXPECT_TRUE(data.starts_with(got.bytes));
    EXPECT_LT(got.bytes.size(), data.size());
    cs1_.stalling = false;
    co_await Drain();
  });
}

TEST_F(DeadlineTest, AWriteToAGroupWithAHungMemberFailsWithinTheDeadlineAndTheGroupIsAvoided) {
  // A chunk larger than the socket buffers: the body itself stalls, not only the answer.
  const std::string data = Pattern(8u << 20);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  master_.map.groups = {Group("g1", {Member("hung", hung_.addr()), Member("m1", cs1_.addr())}),
                        Group("g2", {Member("m2", cs2_.addr())})};
  // Equal free space and load: the smallest id, g1, is chosen first.
  auto client = DeadlineClient();
  Run([&]() -> awaitable<void> {
    EXPECT_TRUE((co_await client->Refresh()).ok());
    auto g = client->ChooseGroup(data.size(), {});
    EXPECT_TRUE(g.has_value() && g->id == "g1");
    if (!g) co_return;
    const auto t = Clock::now();
    Status st = co_await client->PutChunkToGroup(*g, ref, data);
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
    EXPECT_LT(SecondsSince(t), 3 * std::chrono::duration<double>(kTimeout).count());
    // The next chunk goes elsewhere even before the master notices.
    auto next = client->ChooseGroup(data.size(), {});
    EXPECT_TRUE(next.has_value() && next->id == "g2");
    // A small chunk (it fits in the socket buffers) waits for an answer that never comes.
    const std::string small(1000, 's');
    const ChunkRef small_ref{"g1", NewChunkId(), small.size(), ChecksumOf(small)};
    const auto t2 = Clock::now();
    Status st2 = co_await client->PutChunkToGroup(*g, small_ref, small);
    EXPECT_EQ(st2.code(), Code::kUnavailable);
    EXPECT_LT(SecondsSince(t2), 3 * std::chrono::duration<double>(kTimeout).count());
    // With every group avoided, a suspect's group is still better than none.
    auto only = client->ChooseGroup(data.size(), {"g2"});
    EXPECT_TRUE(only.has_value() && only->id == "g1");
  });
}

}  // namespace
}  // namespace wharf

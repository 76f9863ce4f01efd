// Short-circuit local reads (cluster/local_read.h): StreamLocalCopies over real LocalChunkStores
// in a temp dir, and a ClusterClient that has local members falling back to HTTP.
#include "cluster/local_read.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "chunkserver/local_chunk_store.h"
#include "cluster/cluster_client.h"
#include "common/async.h"
#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/metrics.h"
#include "http/server.h"
#include "support/fault_env.h"

namespace wharf {
namespace {

namespace fs = std::filesystem;

// Members backed by stores of this test; each may be switched off (a stopped member).
class TestMembers final : public LocalMembers {
 public:
  void Add(const std::string& id, ChunkStore* store) { members_[id] = {store, true}; }
  void SetServing(const std::string& id, bool on) { members_[id].serving = on; }
  bool Serves(std::string_view id) const override {
    auto it = members_.find(id);
    return it != members_.end() && it->second.serving;
  }
  Result<OpenChunk> Open(std::string_view id, const std::string& chunk_id) override {
    opens++;
    auto it = members_.find(id);
    if (it == members_.end() || !it->second.serving) return Err(Unavailable("not serving"));
    return it->second.store->Open(chunk_id);
  }
  std::atomic<int> opens{0};

 private:
  struct M {
    ChunkStore* store = nullptr;
    bool serving = false;
  };
  std::map<std::string, M, std::less<>> members_;
};

uint64_t Count(const std::string& outcome) {
  return Metrics().Counter("wharf_gateway_local_reads_total", "", {{"outcome", outcome}}).Value();
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

MemberInfo Member(std::string id, std::string addr = "127.0.0.1:1") {
  MemberInfo m;
  m.id = std::move(id);
  m.addr = std::move(addr);
  m.state = MemberState::kActive;
  m.capacity = m.free = 1ull << 40;
  return m;
}

// What a sink was handed: the bytes, and how many calls of each kind.
struct Collected {
  std::string bytes;
  int byte_calls = 0;
  int file_calls = 0;
};

ChunkSink BytesSink(Collected* c) {
  return [c](std::string_view piece) -> awaitable<Status> {
    c->bytes.append(piece);
    c->byte_calls++;
    co_return Status::Ok();
  };
}

// Takes files as ServeBlob's sink does; "sends" them by reading the range back.
ChunkSink FileSink(Collected* c) {
  ChunkSink::Bytes bytes = [c](std::string_view piece) -> awaitable<Status> {
    c->bytes.append(piece);
    c->byte_calls++;
    co_return Status::Ok();
  };
  ChunkSink::File file = [c](int fd, uint64_t off, uint64_t n) -> awaitable<Status> {
    std::string got(n, '\0');
    ssize_t r = ::pread(fd, got.data(), n, static_cast<off_t>(off));
    if (r != static_cast<ssize_t>(n)) co_return IOError("short pread");
    c->bytes += got;
    c->file_calls++;
    co_return Status::Ok();
  };
  return ChunkSink(std::move(bytes), std::move(file));
}

class LocalReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("wharf-local-read-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    for (const char* id : {"a", "b"}) {
      LocalChunkStore::Options o;
      o.dirs = {(root_ / id).string()};
      o.reserve = Reserve{false, 0, 0};
      auto store = LocalChunkStore::Open(o);
      ASSERT_TRUE(store.has_value()) << store.error().ToString();
      stores_[id] = std::move(*store);
      members_->Add(id, stores_[id].get());
    }
  }
  void TearDown() override {
    stores_.clear();
    fs::remove_all(root_);
  }

  ChunkRef Put(const std::string& member, const std::string& data, std::string id = "") {
    if (id.empty()) id = NewChunkId();
    ChunkRef ref{"g1", id, data.size(), ChecksumOf(data)};
    auto w = stores_[member]->BeginWrite(ref.id, ref.size, ref.checksum);
    EXPECT_TRUE(w.has_value());
    if (!w) return ref;
    EXPECT_TRUE((*w)->Append(data).ok());
    EXPECT_TRUE((*w)->Commit().ok());
    return ref;
  }

  void FlipByte(const std::string& member, const ChunkRef& ref, uint64_t offset) {
    std::string path = stores_[member]->ChunkPathForTest(ref.id);
    ASSERT_FALSE(path.empty());
    ASSERT_TRUE(FaultInjectingEnv::FlipByte(path, kChunkHeaderSize + offset).ok());
  }

  LocalReadResult Stream(std::vector<std::string> ids, const ChunkRef& ref, uint64_t offset,
                         uint64_t len, ChunkSink sink) {
    std::vector<MemberInfo> members;
    for (auto& id : ids) members.push_back(Member(id));
    LocalReadResult out;
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          out =
              co_await StreamLocalCopies(members, ref, offset, len, members_.get(), sink, nullptr);
          done = true;
        },
        asio::detached);
    io_.run();
    io_.restart();
    EXPECT_TRUE(done);
    return out;
  }

  asio::io_context io_;
  fs::path root_;
  std::map<std::string, std::unique_ptr<LocalChunkStore>> stores_;
  std::shared_ptr<TestMembers> members_ = std::make_shared<TestMembers>();
};

TEST_F(LocalReadTest, ReadsTheRightBytesThroughEitherSinkForEveryRange) {
  // Larger than the 1 MiB verification buffer (read twice for a bytes sink), and smaller.
  for (size_t size : {size_t{3} * 1024 * 1024 + 5, size_t{100} * 1024}) {
    const std::string data = RandomBytes(size, static_cast<unsigned>(size));
    const ChunkRef ref = Put("a", data);
    const std::vector<std::pair<uint64_t, uint64_t>> ranges = {
        {0, size}, {0, 1}, {size - 1, 1}, {12345, size / 2}, {size - (1 << 16), 1 << 16}, {7, 0}};
    for (auto [off, len] : ranges) {
      SCOPED_TRACE(testing::Message() << "size=" << size << " off=" << off << " len=" << len);
      Collected bytes, file;
      LocalReadResult r = Stream({"a"}, ref, off, len, BytesSink(&bytes));
      EXPECT_TRUE(r.final && r.status.ok()) << r.status.ToString();
      EXPECT_TRUE(bytes.bytes == data.substr(off, len));
      r = Stream({"a"}, ref, off, len, FileSink(&file));
      EXPECT_TRUE(r.final && r.status.ok()) << r.status.ToString();
      EXPECT_TRUE(file.bytes == data.substr(off, len));
      // A sink that takes files gets one file range, never bytes copied through memory.
      EXPECT_EQ(file.byte_calls, 0);
      EXPECT_EQ(file.file_calls, len > 0 ? 1 : 0);
    }
  }
}

TEST_F(LocalReadTest, ARangeOutsideTheChunkIsRangeInvalid) {
  const std::string data = RandomBytes(1000, 1);
  const ChunkRef ref = Put("a", data);
  Collected c;
  LocalReadResult r = Stream({"a"}, ref, 900, 101, BytesSink(&c));
  EXPECT_TRUE(r.final);
  EXPECT_EQ(r.status.code(), Code::kRangeInvalid);
}

TEST_F(LocalReadTest, ACopyCorruptedOnDiskIsDetectedAndTheNextMemberServesIt) {
  const std::string data = RandomBytes(3u << 20, 2);
  const ChunkRef ref = Put("a", data, NewChunkId());
  Put("b", data, ref.id);
  // Early in the chunk: a streamed read would have handed it on long before the checksum.
  FlipByte("a", ref, 1234);
  for (bool files : {false, true}) {
    SCOPED_TRACE(files ? "file sink" : "bytes sink");
    const uint64_t corrupt = Count("corrupt"), served = Count("served");
    Collected c;
    LocalReadResult r = Stream({"a", "b"}, ref, 0, ref.size, files ? FileSink(&c) : BytesSink(&c));
    EXPECT_TRUE(r.final && r.status.ok()) << r.status.ToString();
    EXPECT_TRUE(c.bytes == data);
    EXPECT_EQ(Count("corrupt"), corrupt + 1);
    EXPECT_EQ(Count("served"), served + 1);
  }
}

TEST_F(LocalReadTest, WhenEveryCopyIsCorruptNothingIsHandedOnAndItIsCorruption) {
  for (size_t size : {size_t{3} << 20, size_t{4096}}) {
    const std::string data = RandomBytes(size, 3);
    const ChunkRef ref = Put("a", data);
    FlipByte("a", ref, size - 1);
    for (bool files : {false, true}) {
      Collected c;
      LocalReadResult r = Stream({"a"}, ref, 0, ref.size, files ? FileSink(&c) : BytesSink(&c));
      EXPECT_FALSE(r.final);  // the caller may still try members over HTTP
      EXPECT_EQ(r.status.code(), Code::kCorruption) << r.status.ToString();
      EXPECT_TRUE(c.bytes.empty());
      EXPECT_EQ(c.byte_calls + c.file_calls, 0);
    }
  }
}

TEST_F(LocalReadTest, AMissingChunkOrAStoppedMemberIsNotFinalAndTheNextMemberServes) {
  const std::string data = RandomBytes(5000, 4);
  const ChunkRef ref = Put("b", data);
  const uint64_t missing = Count("missing"), errors = Count("error");
  Collected c;
  LocalReadResult r = Stream({"a"}, ref, 0, ref.size, BytesSink(&c));
  EXPECT_FALSE(r.final);
  EXPECT_EQ(r.status.code(), Code::kNotFound);
  EXPECT_EQ(Count("missing"), missing + 1);
  r = Stream({"a", "b"}, ref, 0, ref.size, BytesSink(&c));
  EXPECT_TRUE(r.final && r.status.ok());
  EXPECT_TRUE(c.bytes == data);
  members_->SetServing("b", false);
  c = {};
  r = Stream({"b"}, ref, 0, ref.size, BytesSink(&c));
  EXPECT_FALSE(r.final);
  EXPECT_EQ(r.status.code(), Code::kUnavailable);
  EXPECT_EQ(Count("error"), errors + 1);
  EXPECT_TRUE(c.bytes.empty());
}

TEST_F(LocalReadTest, ASinkErrorIsFinal) {
  const std::string data = RandomBytes(2u << 20, 5);
  const ChunkRef ref = Put("a", data, NewChunkId());
  Put("b", data, ref.id);
  ChunkSink failing = [](std::string_view) -> awaitable<Status> {
    co_return Cancelled("client went away");
  };
  LocalReadResult r = Stream({"a", "b"}, ref, 0, ref.size, failing);
  EXPECT_TRUE(r.final);
  EXPECT_EQ(r.status.code(), Code::kCancelled);
  EXPECT_EQ(members_->opens.load(), 1);  // not read again from b
}

// A copy prepared ahead (PrepareLocalCopy, as ReadChunks does for the next chunk) is checked
// once, before the read asks for it; the read then sends it without checking it again.
TEST_F(LocalReadTest, APreparedCopyIsCheckedAheadOnceAndThenSent) {
  const std::string data = RandomBytes(3u << 20, 6);
  const ChunkRef ref = Put("b", data);
  std::shared_ptr<PreparedRead> prepared =
      PrepareLocalCopy(io_.get_executor(), Member("b"), ref, members_, nullptr);
  io_.run();  // the check runs to its end with no read waiting for it
  io_.restart();
  EXPECT_EQ(members_->opens.load(), 1);
  const uint64_t served = Count("served");
  Collected c;
  std::vector<MemberInfo> members = {Member("a"), Member("b")};
  LocalReadResult out;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        // "a" comes first in read order, but "b" was prepared: it is tried first.
        out = co_await StreamLocalCopies(members, ref, 100, ref.size - 100, members_.get(),
                                         FileSink(&c), nullptr, prepared);
      },
      asio::detached);
  io_.run();
  io_.restart();
  EXPECT_TRUE(out.final && out.status.ok()) << out.status.ToString();
  EXPECT_TRUE(c.bytes == data.substr(100));
  EXPECT_EQ(c.file_calls, 1);
  EXPECT_EQ(members_->opens.load(), 1);  // neither checked again nor "a" asked
  EXPECT_EQ(Count("served"), served + 1);
}

// A prepared copy that is bad counts as that member's failure: the read goes on to the next
// member. One prepared for another chunk, or used with a bytes-only sink, is ignored.
TEST_F(LocalReadTest, APreparedBadCopyFailsOverAndAMismatchedOneIsIgnored) {
  const std::string data = RandomBytes(2u << 20, 7);
  const ChunkRef ref = Put("a", data, NewChunkId());
  Put("b", data, ref.id);
  FlipByte("a", ref, 99);
  std::vector<MemberInfo> members = {Member("a"), Member("b")};
  auto run = [&](std::shared_ptr<PreparedRead> prepared, ChunkSink sink) {
    LocalReadResult out;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          out = co_await StreamLocalCopies(members, ref, 0, ref.size, members_.get(), sink, nullptr,
                                           prepared);
        },
        asio::detached);
    io_.run();
    io_.restart();
    return out;
  };
  const uint64_t corrupt = Count("corrupt");
  Collected c;
  LocalReadResult r =
      run(PrepareLocalCopy(io_.get_executor(), Member("a"), ref, members_, nullptr), FileSink(&c));
  EXPECT_TRUE(r.final && r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(c.bytes == data);
  EXPECT_EQ(Count("corrupt"), corrupt + 1);
  EXPECT_EQ(members_->opens.load(), 2);  // a (ahead, bad), then b

  const ChunkRef other = Put("b", RandomBytes(1000, 8));
  members_->opens = 0;
  Collected d;
  r = run(PrepareLocalCopy(io_.get_executor(), Member("b"), other, members_, nullptr),
          FileSink(&d));
  EXPECT_TRUE(r.final && r.status.ok());
  EXPECT_TRUE(d.bytes == data);
  EXPECT_EQ(members_->opens.load(), 3);  // the unused check of `other`, then a (bad), then b

  members_->opens = 0;
  Collected e;
  r = run(PrepareLocalCopy(io_.get_executor(), Member("b"), ref, members_, nullptr), BytesSink(&e));
  EXPECT_TRUE(r.final && r.status.ok());
  EXPECT_TRUE(e.bytes == data);
  EXPECT_EQ(members_->opens.load(), 3);  // the bytes sink checks again: a (bad), then b
}

// Dropped before its check is done (the client went away): the check finishes on its own and
// frees everything (asan would see a use after free or a leak).
TEST_F(LocalReadTest, APreparedReadDroppedWhileCheckingIsHarmless) {
  const std::string data = RandomBytes(3u << 20, 9);
  const ChunkRef ref = Put("a", data);
  PrepareLocalCopy(io_.get_executor(), Member("a"), ref, members_, nullptr).reset();
  io_.run();
  io_.restart();
  EXPECT_EQ(members_->opens.load(), 1);
}

// ---------------------------------------------------------------------------------------
// The ClusterClient with local members: local copies first, HTTP for the rest.

// Serves `map` at any path.
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

 private:
  awaitable<void> Handle(Exchange& ex) {
    (void)co_await ex.Respond(http::status::ok, map.ToJson(true).dump());
  }
  std::unique_ptr<Server> server_;
};

// GET /v1/chunks/{id} of whole chunks from memory; counts the GETs.
class FakeChunkserver {
 public:
  explicit FakeChunkserver(asio::any_io_executor ex)
      : server_(std::make_unique<Server>(ex, ServerOptions{},
                                         [this](Exchange& ex) { return Handle(ex); })) {
    EXPECT_TRUE(server_->Listen("127.0.0.1:0").ok());
    server_->Start();
  }
  ~FakeChunkserver() { server_->Stop(); }
  std::string addr() const { return server_->local_address(); }
  std::map<std::string, std::string> chunks;
  int gets = 0;

 private:
  awaitable<void> Handle(Exchange& ex) {
    gets++;
    constexpr std::string_view kPrefix = "/v1/chunks/";
    auto it = ex.path().starts_with(kPrefix)
                  ? chunks.find(std::string(ex.path().substr(kPrefix.size())))
                  : chunks.end();
    if (it == chunks.end()) {
      (void)co_await ex.Respond(http::status::not_found, "{}");
      co_return;
    }
    ex.AddHeader("X-Wharf-Checksum", FormatChecksum(ChecksumOf(it->second)));
    (void)co_await ex.Respond(http::status::ok, it->second, "application/octet-stream");
  }
  std::unique_ptr<Server> server_;
};

class LocalClusterClientTest : public LocalReadTest {
 protected:
  // Group g1: member a (local; its HTTP address is the fake, so a read of it over HTTP would
  // show as a GET there) and member r (remote only).
  std::string StreamViaClient(const ChunkRef& ref, Status* st) {
    FakeMaster master(io_.get_executor());
    GroupInfo g;
    g.id = "g1";
    g.writable = true;
    g.members = {Member("a", remote_a_.addr()), Member("r", remote_r_.addr())};
    master.map.version = 1;
    master.map.groups = {g};
    ClusterClientOptions o;
    o.masters = {master.addr()};
    o.read_hedge = std::chrono::milliseconds(-1);
    o.local_members = members_;
    ClusterClient client(io_.get_executor(), o);
    Collected c;
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          EXPECT_TRUE((co_await client.Refresh()).ok());
          // Twice: read order rotates over the active members; local ones go first anyway.
          for (int i = 0; i < 2; ++i) {
            c = {};
            *st = co_await client.StreamChunk(ref, 0, ref.size, FileSink(&c));
          }
          done = true;
          io_.stop();  // the fake servers would keep it running
        },
        asio::detached);
    io_.run();
    io_.restart();
    EXPECT_TRUE(done);
    return c.bytes;
  }
  FakeChunkserver remote_a_{io_.get_executor()};
  FakeChunkserver remote_r_{io_.get_executor()};
};

TEST_F(LocalClusterClientTest, ALocalCopyIsServedWithoutHttp) {
  const std::string data = RandomBytes(2u << 20, 6);
  const ChunkRef ref = Put("a", data);
  remote_r_.chunks[ref.id] = data;
  Status st;
  EXPECT_TRUE(StreamViaClient(ref, &st) == data);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(remote_a_.gets + remote_r_.gets, 0);
}

TEST_F(LocalClusterClientTest, AChunkTheLocalMemberLacksIsReadOverHttp) {
  const std::string data = RandomBytes(2u << 20, 7);
  const ChunkRef ref{"g1", NewChunkId(), data.size(), ChecksumOf(data)};
  remote_r_.chunks[ref.id] = data;
  Status st;
  EXPECT_TRUE(StreamViaClient(ref, &st) == data);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(remote_r_.gets, 2);
  EXPECT_EQ(remote_a_.gets, 0);  // a was asked locally, not over HTTP again
}

TEST_F(LocalClusterClientTest, ACorruptLocalCopyFallsBackToHttp) {
  const std::string data = RandomBytes(3u << 20, 8);
  const ChunkRef ref = Put("a", data);
  FlipByte("a", ref, 10);
  remote_r_.chunks[ref.id] = data;
  Status st;
  EXPECT_TRUE(StreamViaClient(ref, &st) == data);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(remote_r_.gets, 2);
}

TEST_F(LocalClusterClientTest, AStoppedLocalMemberIsAskedOverHttpLikeAnyOther) {
  const std::string data = RandomBytes(1u << 20, 9);
  const ChunkRef ref = Put("a", data);
  members_->SetServing("a", false);
  remote_a_.chunks[ref.id] = data;  // what its HTTP side would serve
  remote_r_.chunks[ref.id] = data;
  Status st;
  EXPECT_TRUE(StreamViaClient(ref, &st) == data);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(remote_a_.gets + remote_r_.gets, 2);
  EXPECT_EQ(members_->opens.load(), 0);
}

}  // namespace
}  // namespace wharf

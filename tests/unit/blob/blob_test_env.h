// Test helpers of tests/unit/blob: a small in-process fake of the chunk cluster (one master
// answering /v1/map, one chunkserver keeping chunks in memory), string sources and readers, and
// a fixture with a real SQLite store, so the blob code is tested without processes.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "blob/blob_service.h"
#include "blob/blob_writer.h"
#include "cluster/cluster_client.h"
#include "common/async.h"
#include "common/log.h"
#include "http/server.h"
#include "master/cluster_map.h"
#include "meta/meta_store.h"

namespace wharf::testing {

// One group "g1" with one member: this process. PUT /v1/chunks/<id> waits while `hold` is set.
class FakeCluster {
 public:
  explicit FakeCluster(asio::any_io_executor ex)
      : server_(ex, Options(), [this](Exchange& e) { return Handle(e); }) {
    EXPECT_TRUE(server_.Listen("127.0.0.1:0").ok());
    server_.Start();
  }
  std::string addr() const { return server_.local_address(); }
  void Stop() { server_.Stop(); }
  void Release() { hold = false; }

  bool hold = false;
  int puts_started = 0;
  int puts_done = 0;
  std::vector<std::string> put_ids;
  std::map<std::string, std::string> chunks;

 private:
  // Idle keep-alive connections close at once, so a test's loop ends when its work is done.
  static ServerOptions Options() {
    ServerOptions o;
    o.idle_timeout = std::chrono::milliseconds(50);
    return o;
  }

  awaitable<void> Handle(Exchange& ex) {
    std::string path(ex.path());
    if (path == "/v1/map") {
      (void)co_await ex.Respond(http::status::ok, MapJson());
      co_return;
    }
    const std::string prefix = "/v1/chunks/";
    if (!path.starts_with(prefix)) {
      (void)co_await ex.Respond(http::status::not_found, "{}");
      co_return;
    }
    std::string id = path.substr(prefix.size());
    if (ex.method() == http::verb::put) {
      ++puts_started;
      put_ids.push_back(id);
      Result<std::string> body = co_await ex.ReadAll(64u << 20);
      while (hold) co_await SleepFor(std::chrono::milliseconds(5));
      if (body) chunks[id] = std::move(*body);
      ++puts_done;
      (void)co_await ex.Respond(http::status::created, "{}");
      co_return;
    }
    auto it = chunks.find(id);
    if (it == chunks.end()) {
      (void)co_await ex.Respond(http::status::not_found, "{}");
      co_return;
    }
    (void)co_await ex.Respond(http::status::ok, it->second, "application/octet-stream");
  }

  std::string MapJson() const {
    MemberInfo m;
    m.id = "m1";
    m.addr = addr();
    m.state = MemberState::kActive;
    m.capacity = 1ull << 40;
    m.free = 1ull << 40;
    GroupInfo g;
    g.id = "g1";
    g.writable = true;
    g.members.push_back(m);
    ClusterMap map;
    map.version = 1;
    map.groups.push_back(g);
    return map.ToJson(true).dump();
  }

  Server server_;
};

// A ByteSource over a string, `step` bytes per read.
class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string data, size_t step = 1000)
      : data_(std::move(data)), step_(step) {}
  awaitable<Result<size_t>> Read(void* buf, size_t n) override {
    size_t k = std::min({n, step_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    co_return k;
  }

 private:
  std::string data_;
  size_t step_;
  size_t pos_ = 0;
};

// A BlobReader over a string.
class StringReader final : public BlobReader {
 public:
  explicit StringReader(std::string data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_.size(); }
  awaitable<Status> Read(uint64_t offset, uint64_t len, ByteSink sink) override {
    co_return co_await sink(std::string_view(data_).substr(offset, len));
  }

 private:
  std::string data_;
};

// A read-through source holding one blob and one manifest.
class TestSource final : public ReadThroughSource {
 public:
  awaitable<Result<std::unique_ptr<BlobReader>>> OpenBlob(std::string repo,
                                                          Digest digest) override {
    ++blob_lookups;
    if (repo != "up/stream" || digest != DigestOf(blob)) co_return Err(NotFound("not upstream"));
    co_return std::unique_ptr<BlobReader>(std::make_unique<StringReader>(blob));
  }
  awaitable<Result<ManifestRecord>> GetManifest(std::string repo, Reference ref) override {
    ++manifest_lookups;
    if (repo != "up/stream" || ref.tag != "v1") co_return Err(NotFound("not upstream"));
    ManifestRecord m;
    m.content = "{\"upstream\":true}";
    m.digest = DigestOf(m.content);
    m.media_type = "application/vnd.oci.image.manifest.v1+json";
    co_return m;
  }
  std::string blob = "bytes from upstream";
  int blob_lookups = 0;
  int manifest_lookups = 0;
};

class BlobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("wharf-blob-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = OpenMetaStore("sqlite:" + (dir_ / "meta.db").string());
    ASSERT_TRUE(store) << store.error().ToString();
    meta_ = std::move(*store);
    fake_ = std::make_unique<FakeCluster>(io_.get_executor());
    ClusterClientOptions co;
    co.masters = {fake_->addr()};
    cluster_ = std::make_unique<ClusterClient>(io_.get_executor(), co);
    ctx_.ex = io_.get_executor();
    ctx_.cluster = cluster_.get();
    ctx_.meta = meta_.get();
    ctx_.chunk_size = 4096;
    ctx_.max_inflight_chunks = 4;
    ctx_.log = GetLogger("blob-test");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `f` on the loop (after a map refresh) until it and everything it started is done.
  template <typename F>
  void Run(F f) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          Status st = co_await cluster_->Refresh();
          EXPECT_TRUE(st.ok()) << st.ToString();
          co_await f();
          done = true;
          fake_->Stop();
        },
        asio::detached);
    io_.run();
    EXPECT_TRUE(done);
  }

  ChunkState StateOf(const std::string& id) {
    auto r = meta_->GetChunkState(id);
    return r ? *r : ChunkState::kUnknown;
  }

  static awaitable<Result<std::string>> ReadAllOf(BlobReader& reader) {
    auto out = std::make_shared<std::string>();
    ByteSink sink = [out](std::string_view piece) -> awaitable<Status> {
      out->append(piece);
      co_return Status::Ok();
    };
    Status st = co_await reader.Read(0, reader.size(), sink);
    if (!st.ok()) co_return Err(st);
    co_return *out;
  }

  std::filesystem::path dir_;
  asio::io_context io_;
  std::unique_ptr<MetaStore> meta_;
  std::unique_ptr<FakeCluster> fake_;
  std::unique_ptr<ClusterClient> cluster_;
  BlobContext ctx_;
};

inline std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 % 251);
  return s;
}

}  // namespace wharf::testing

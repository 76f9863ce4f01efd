// A gateway's pieces without processes: an SQLite MetaStore in a temp dir with a fake clock, the
// in-memory FakeChunkCluster with groups g1 = {a1, a2} and g2 = {b1, b2}, and a GatewayContext
// over them on a private io_context.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/fs.h"
#include "common/log.h"
#include "fakes/fake_chunk_cluster.h"
#include "gateway/blob_serve.h"
#include "gateway/gateway.h"
#include "meta/meta_store.h"

namespace wharf {

class GatewayFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        (std::filesystem::temp_directory_path() / ("wharf-gateway-test-" + RandomHex(8))).string();
    std::filesystem::create_directories(dir_);
    MetaStoreOptions mo;
    int64_t* now = &now_;
    mo.now_unix = [now] { return *now; };
    auto meta = OpenMetaStore("sqlite:" + dir_ + "/meta.db", mo);
    ASSERT_TRUE(meta.has_value()) << meta.error().ToString();
    meta_ = std::move(*meta);
    cluster_.AddGroup("g1", {"a1", "a2"});
    cluster_.AddGroup("g2", {"b1", "b2"});
    options_.chunk_size = 4096;
    options_.max_inflight_chunks = 2;
    ctx_.ex = io_.get_executor();
    ctx_.cluster = &cluster_;
    ctx_.meta = meta_.get();
    ctx_.options = &options_;
    ctx_.log = GetLogger("gateway");
    blob_ctx_ = BlobContextOf(ctx_);
  }
  void TearDown() override {
    meta_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Runs `f` (a coroutine lambda) to completion on io_.
  template <typename F>
  void Run(F f) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          co_await f();
          done = true;
        },
        asio::detached);
    io_.run();
    io_.restart();
    ASSERT_TRUE(done);
  }

  // A new upload session in the store; returns its id.
  std::string NewUpload() {
    UploadSession s;
    s.id = RandomHex(16);
    EXPECT_TRUE(meta_->CreateUpload(s).ok());
    return s.id;
  }

  int64_t now_ = 1'000'000;  // the store's clock (unix seconds)
  std::string dir_;
  asio::io_context io_;
  std::unique_ptr<MetaStore> meta_;
  FakeChunkCluster cluster_;
  GatewayOptions options_;
  GatewayContext ctx_;
  BlobContext blob_ctx_;  // what BlobWriter and ReadChunks get from ctx_
};

}  // namespace wharf

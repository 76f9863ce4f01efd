#include "cli/local_cluster.h"

#include <fmt/format.h>

#include <future>
#include <map>

#include "chunkserver/chunkserver.h"
#include "cli/gateway_flags.h"
#include "common/fs.h"
#include "common/units.h"
#include "gateway/gateway.h"
#include "http/cluster_auth.h"
#include "http/server.h"
#include "master/master_server.h"

namespace wharf {
namespace {

constexpr const char* kGroups[] = {"g1", "g2"};
constexpr const char* kMembersPerGroup[] = {"a", "b"};
constexpr int kChunkservers = 4;

// What Server::Listen accepts: HOST:PORT with an IP address (or "localhost") as host.
Status ValidateListen(const std::string& what, const std::string& host_port) {
  auto hp = SplitHostPort(host_port);
  if (!hp) return InvalidArgument(what + ": " + hp.error().message());
  boost::system::error_code ec;
  asio::ip::make_address(hp->first == "localhost" ? "127.0.0.1" : hp->first, ec);
  if (ec) return InvalidArgument(what + ": not an IP address: '" + hp->first + "'");
  return Status::Ok();
}

// Runs `fn` on `ex` and waits for it (the daemons' Stop() belongs on their own loops).
template <typename F>
void RunOn(asio::any_io_executor ex, F fn) {
  std::promise<void> done;
  asio::post(ex, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

// The cluster's chunkservers as the gateway's LocalMembers (cluster/local_read.h). The
// chunkservers outlive the gateway (LocalCluster destroys it first).
class InProcessMembers final : public LocalMembers {
 public:
  void Add(Chunkserver* cs) { members_.emplace(cs->id(), cs); }
  bool Serves(std::string_view member_id) const override {
    auto it = members_.find(member_id);
    return it != members_.end() && it->second->serving();
  }
  Result<OpenChunk> Open(std::string_view member_id, const std::string& chunk_id) override {
    auto it = members_.find(member_id);
    if (it == members_.end()) {
      return Err(Unavailable("member " + std::string(member_id) + " is not in this process"));
    }
    return it->second->OpenLocal(chunk_id);
  }

 private:
  std::map<std::string, Chunkserver*, std::less<>> members_;  // fixed before the gateway starts
};

}  // namespace

struct LocalCluster::Daemon {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
};

Status LocalClusterOptions::Validate() const {
  if (data_dir.empty()) return InvalidArgument("--data must not be empty");
  if (base_port < 0 || base_port > 65535 - kChunkservers) {
    return InvalidArgument(fmt::format("--cluster-port must be in 0..{}", 65535 - kChunkservers));
  }
  WHARF_RETURN_IF_ERROR(ValidateListen("--cluster-host", host + ":0"));
  WHARF_RETURN_IF_ERROR(ValidateListen("--listen", gateway.listen));
  if (reserve.value < 0 || (reserve.percent && reserve.value > 100)) {
    return InvalidArgument("--reserve must be 0%..100% or a size");
  }
  if (Status st = CheckChunkSize(chunk_size); !st.ok()) {
    return InvalidArgument("--chunk-size: " + st.message());
  }
  if (heartbeat <= std::chrono::milliseconds(0)) {
    return InvalidArgument("heartbeat interval must be positive");
  }
  if (repair_interval < std::chrono::milliseconds(100)) {
    return InvalidArgument("--repair-interval must be at least 100ms");
  }
  // Reads the gateway's files and keys (creates nothing) so that a bad one stops `wharf up`
  // before anything starts.
  WHARF_RETURN_IF_ERROR(cli::CheckGatewayFiles(gateway));
  return Status::Ok();
}

GatewayOptions GatewayOptionsFor(const LocalClusterOptions& o, const std::string& master) {
  GatewayOptions go = o.gateway;
  go.masters = {master};
  if (go.meta_url.empty()) go.meta_url = "sqlite:" + o.data_dir + "/meta.db";
  go.chunk_size = o.chunk_size;
  return go;
}

LocalCluster::LocalCluster(LocalClusterOptions options) : options_(std::move(options)) {}

LocalCluster::~LocalCluster() { Stop(); }

std::string LocalCluster::master_address() const { return master_ ? master_->address() : ""; }

std::string LocalCluster::gateway_address() const { return gateway_ ? gateway_->address() : ""; }

Status LocalCluster::Start() {
  if (!loops_.empty() || stopped_) return InvalidArgument("a LocalCluster starts once");
  WHARF_RETURN_IF_ERROR(options_.Validate());
  Status st = StartDaemons();
  if (!st.ok()) {
    Stop();
    return st;
  }
  for (auto& d : loops_) d->thread = std::thread([&io = d->io] { io.run(); });
  running_ = true;
  return Status::Ok();
}

// Starts each daemon on the calling thread, before its loop runs (their Start() binds and
// spawns coroutines that run once the loop does).
Status LocalCluster::StartDaemons() {
  const std::string& data = options_.data_dir;
  key_file_ = options_.cluster_key_file.empty() ? data + "/cluster.key" : options_.cluster_key_file;
  if (options_.cluster_key_file.empty()) WHARF_RETURN_IF_ERROR(MakeDirs(data));
  auto key = options_.cluster_key_file.empty() ? ClusterKey::LoadOrCreate(key_file_)
                                               : ClusterKey::Load(key_file_);
  if (!key) return key.error();
  key_ = *key;
  auto port = [&](int i) { return options_.base_port == 0 ? 0 : options_.base_port + i; };
  auto loop = [&]() -> asio::any_io_executor {
    loops_.push_back(std::make_unique<Daemon>());
    return loops_.back()->io.get_executor();
  };

  MasterOptions mo;
  mo.listen = fmt::format("{}:{}", options_.host, port(0));
  mo.data_dir = data + "/master";
  mo.chunk_size = options_.chunk_size;
  mo.cluster_key = key_;
  master_ = std::make_unique<MasterServer>(loop(), mo);
  if (Status st = master_->Start(); !st.ok()) return Status(st.code(), "master: " + st.message());

  int i = 1;
  for (const char* g : kGroups) {
    for (const char* m : kMembersPerGroup) {
      ChunkserverOptions co;
      co.group = g;
      co.id = fmt::format("{}-{}", g, m);
      co.listen = fmt::format("{}:{}", options_.host, port(i++));
      co.dirs = {data + "/" + co.id};
      co.masters = {master_->address()};
      co.reserve = options_.reserve;
      co.sync = options_.sync;
      co.direct_io = options_.direct_io;
      co.heartbeat = options_.heartbeat;
      co.repair_interval = options_.repair_interval;
      co.max_chunk_bytes = std::max<uint64_t>(options_.chunk_size, 1u << 20);
      co.cluster_key = key_;
      auto cs = std::make_unique<Chunkserver>(loop(), co);
      Status st = cs->Start();
      chunkservers_.push_back(std::move(cs));
      if (!st.ok()) return Status(st.code(), co.id + ": " + st.message());
      members_.push_back(Member{co.group, co.id, chunkservers_.back()->address()});
    }
  }

  GatewayOptions go = GatewayOptionsFor(options_, master_->address());
  go.cluster_key = key_;
  if (options_.local_reads) {
    auto local = std::make_shared<InProcessMembers>();
    for (auto& cs : chunkservers_) local->Add(cs.get());
    go.local_members = std::move(local);
  }
  go.on_fatal = [this](const Status& st) {
    gateway_fatal_ = st;
    gateway_->Stop();
  };
  gateway_ = std::make_unique<Gateway>(loop(), go);
  if (Status st = gateway_->Start(); !st.ok()) {
    return Status(st.code(), "gateway: " + st.message());
  }
  return Status::Ok();
}

Status LocalCluster::WaitUntilWritable(std::chrono::milliseconds timeout) {
  if (!running_ || !gateway_) return Unavailable("the cluster is not running");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Status health;
    RunOn(loops_[1 + chunkservers_.size()]->io.get_executor(),
          [&] { health = gateway_fatal_.ok() ? gateway_->Health() : gateway_fatal_; });
    if (!gateway_fatal_.ok()) return health;
    if (health.ok() || std::chrono::steady_clock::now() >= deadline) return health;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status LocalCluster::ReloadTls() {
  if (!gateway_ || !running_) return Status::Ok();
  Status st;
  RunOn(loops_.back()->io.get_executor(), [&] { st = gateway_->ReloadTls(); });
  return st;
}

void LocalCluster::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Each daemon stops on its own loop (or here, if the loops never ran).
  auto stop = [&](auto& daemon, size_t loop) {
    if (!daemon) return;
    if (running_) {
      RunOn(loops_[loop]->io.get_executor(), [&] { daemon->Stop(); });
    } else {
      daemon->Stop();
    }
  };
  stop(master_, 0);
  for (size_t k = 0; k < chunkservers_.size(); ++k) stop(chunkservers_[k], 1 + k);
  stop(gateway_, 1 + chunkservers_.size());
  for (auto& d : loops_) {
    d->work.reset();
    d->io.stop();
  }
  for (auto& d : loops_) {
    if (d->thread.joinable()) d->thread.join();
  }
  running_ = false;
}

}  // namespace wharf

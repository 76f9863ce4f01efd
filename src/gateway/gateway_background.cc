// Gateway: the work that is not a request. The namespace claim (one metadata store per cluster,
// master/namespace_registry.h), the background-work lease (MetaStore::AcquireLease), and the
// garbage collector's rounds under it.
#include <unistd.h>

#include <chrono>

#include "common/async.h"
#include "common/log_throttle.h"
#include "common/metrics.h"
#include "gateway/gateway.h"

namespace wharf {
namespace {

// The lease every gateway of a store competes for.
constexpr const char* kBackgroundLease = "background";
// A confirmed namespace is claimed again this often: a master that lost its disk (or a new one)
// learns it, and one that serves another store is noticed.
constexpr std::chrono::seconds kNamespaceRecheck{30};

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "gateway";
  return buf;
}

}  // namespace

std::string DefaultInstanceName(const std::string& bound_address) {
  const size_t colon = bound_address.rfind(':');
  return HostName() + ":" +
         (colon == std::string::npos ? bound_address : bound_address.substr(colon + 1));
}

void Gateway::Fatal(const Status& st) {
  ctx_.log->error("gateway cannot go on: {}", st.message());
  if (options_.on_fatal) {
    options_.on_fatal(st);
  } else {
    Stop();
  }
}

awaitable<void> Gateway::NamespaceLoop() {
  auto& confirmed_gauge =
      Metrics().Gauge("wharf_gateway_namespace_confirmed",
                      "1 when the masters confirmed that the cluster serves this gateway's "
                      "metadata store (the inventory sweep runs only then).");
  LogThrottle throttle(std::chrono::seconds(30));
  while (!stopped_) {
    Status st = co_await cluster_->masters().ClaimNamespace(store_id_);
    if (stopped_) break;
    if (st.code() == Code::kConflict) {
      confirmed_gauge.Set(0);
      if (!namespace_confirmed_) {
        Fatal(Status(Code::kConflict,
                     st.message() + ": this gateway's --meta " + "is another metadata store " +
                         "than the one the cluster serves; refusing to start against it"));
        co_return;
      }
      // Confirmed before, refused now (a master that lost its disk was claimed by another
      // store first): stop sweeping, keep serving, and say so loudly.
      namespace_confirmed_ = false;
      ctx_.log->error("namespace no longer confirmed, inventory sweep stopped err={}", st);
    } else if (st.ok()) {
      if (!namespace_confirmed_) {
        ctx_.log->info("namespace confirmed store_id={} masters={}", store_id_,
                       options_.masters.size());
      }
      namespace_confirmed_ = true;
      throttle.Reset();
      confirmed_gauge.Set(1);
    } else if (throttle.Admit()) {
      ctx_.log->warn("namespace not confirmed yet store_id={} err={}", store_id_, st);
    }
    const std::chrono::milliseconds next = namespace_confirmed_
                                               ? std::chrono::milliseconds(kNamespaceRecheck)
                                               : std::chrono::milliseconds(1000);
    co_await SleepFor(next);
  }
}

awaitable<void> Gateway::LeaseLoop() {
  auto& held = Metrics().Gauge("wharf_gateway_background_lease_held",
                               "1 while this gateway holds the background-work lease (garbage "
                               "collection and upload expiry run here).");
  static auto& takeovers = Metrics().Counter("wharf_gateway_background_lease_acquired_total",
                                             "Times this gateway took the background lease.");
  MetaStore* meta = meta_.get();
  const std::string name = instance_;
  const int64_t ttl = options_.background_lease_ttl.count();
  const auto renew =
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.background_lease_ttl) / 3;
  LogThrottle throttle(std::chrono::seconds(30));
  while (!stopped_) {
    auto acquire = [meta, name, ttl] { return meta->AcquireLease(kBackgroundLease, name, ttl); };
    auto got = co_await Offload(acquire);
    if (stopped_) break;
    const bool was_held = lease_.held;
    if (got) {
      lease_ = *got;
      throttle.Reset();
    } else {
      // Not renewed: the claim runs out at its expiry whatever we think.
      const int64_t now = options_.now_unix ? options_.now_unix() : SystemNowUnix();
      if (lease_.held && now >= lease_.expires_unix) lease_.held = false;
      if (throttle.Admit()) ctx_.log->warn("background lease not renewed err={}", got.error());
    }
    if (lease_.held && !was_held) {
      takeovers.Inc();
      ctx_.log->info("background lease taken holder={} expires_unix={}", name, lease_.expires_unix);
    } else if (!lease_.held && was_held) {
      ctx_.log->warn("background lease lost holder={}", lease_.holder);
    }
    held.Set(lease_.held ? 1 : 0);
    co_await SleepFor(renew);
  }
}

awaitable<void> Gateway::CollectGarbageLoop() {
  while (!stopped_) {
    co_await SleepFor(options_.gc_interval);
    if (stopped_ || !lease_.held) continue;
    const auto start = std::chrono::steady_clock::now();
    GcReport report = co_await gc_->RunOnce();
    Round round;
    round.finished_unix = options_.now_unix ? options_.now_unix() : SystemNowUnix();
    round.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    round.report = report;
    last_round_ = round;
  }
}

awaitable<void> Gateway::SiteEvictionLoop() {
  const auto period =
      std::min<std::chrono::milliseconds>(options_.gc_interval, std::chrono::seconds(5));
  while (!stopped_) {
    co_await SleepFor(period);
    if (stopped_) break;
    co_await evictor_->FlushPulls();
    if (!lease_.held) continue;
    EvictionPass pass = co_await evictor_->RunOnce();
    (void)pass;  // logged and counted by the evictor
  }
}

}  // namespace wharf

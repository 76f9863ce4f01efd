#include "http/access_log.h"

#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "common/metrics.h"

namespace wharf {

// A file sink that can be reopened (after logrotate). Runs on the log's thread.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {}
  ~ReopenableFileSink() override {
    if (f_) std::fclose(f_);
  }
  Status OpenNow() {
    f_ = std::fopen(path_.c_str(), "ae");
    if (!f_) return IOError("cannot open access log " + path_ + ": " + std::strerror(errno));
    return Status::Ok();
  }
  void RequestReopen() { reopen_ = true; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (reopen_.exchange(false)) {
      if (std::FILE* f = std::fopen(path_.c_str(), "ae")) {
        if (f_) std::fclose(f_);
        f_ = f;
      }  // else keep writing to the old file: better than losing lines
    }
    if (!f_) return;
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::fwrite(buf.data(), 1, buf.size(), f_);
  }
  void flush_() override {
    if (f_) std::fflush(f_);
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::atomic<bool> reopen_{false};
};

namespace {

std::mutex g_open_mu;
std::set<AccessLog*> g_open;  // for ReopenAll

constexpr size_t kQueueLines = 16384;

}  // namespace

Result<std::shared_ptr<AccessLog>> AccessLog::Open(const std::string& where) {
  if (where == "off") return std::shared_ptr<AccessLog>();
  if (where.empty()) return Err(InvalidArgument("--access-log must be off, stderr or a file"));
  std::shared_ptr<AccessLog> log(new AccessLog());
  spdlog::sink_ptr sink;
  if (where == "stderr") {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    log->file_ = std::make_shared<ReopenableFileSink>(where);
    WHARF_RETURN_IF_ERROR(log->file_->OpenNow());
    sink = log->file_;
  }
  log->pool_ = std::make_shared<spdlog::details::thread_pool>(kQueueLines, 1);
  log->logger_ = std::make_shared<spdlog::async_logger>(
      "access", std::move(sink), log->pool_, spdlog::async_overflow_policy::overrun_oldest);
  log->logger_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%n] %v");
  log->logger_->set_level(spdlog::level::info);
  // Flushed by the log's thread after each line, so a reader of the file sees it at once.
  log->logger_->flush_on(spdlog::level::info);
  std::lock_guard lock(g_open_mu);
  g_open.insert(log.get());
  return log;
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(g_open_mu);
    g_open.erase(this);
  }
  // The pool's thread writes what is queued before it stops (the pool outlives the logger).
  logger_.reset();
}

void AccessLog::Record(const Exchange& ex) {
  static auto& dropped = Metrics().Counter("wharf_access_log_dropped_total",
                                           "Access log lines dropped because the queue was full.");
  const RequestContext& c = ex.context();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.started)
          .count();
  // A verified TLS client certificate's subject is quoted (it holds spaces and commas).
  const std::string tls_client =
      c.tls_client_subject.empty() ? "" : " tls_client=\"" + c.tls_client_subject + "\"";
  logger_->info(
      "remote={} method={} path={} status={} bytes_in={} bytes_out={} duration_ms={:.3f} "
      "request_id={} route={} user={}{}",
      c.remote, ex.method_string(), ex.path(), ex.status_code(), c.bytes_in, c.bytes_out, ms,
      c.request_id, c.route.empty() ? std::string_view(Router::kNoRoute) : c.route,
      c.principal ? std::string_view(c.principal->subject) : std::string_view("-"), tls_client);
  size_t overruns = pool_->overrun_counter();
  size_t before = seen_overruns_.load();
  if (overruns > before && seen_overruns_.compare_exchange_strong(before, overruns)) {
    dropped.Inc(overruns - before);
  }
}

void AccessLog::Reopen() {
  if (file_) file_->RequestReopen();
}

void AccessLog::ReopenAll() {
  std::lock_guard lock(g_open_mu);
  for (AccessLog* log : g_open) log->Reopen();
}

awaitable<Filter::Result> AccessLogFilter::OnRequest(Exchange& ex) {
  ex.AtEnd([log = log_](const Exchange& e) { log->Record(e); });
  co_return Result::kContinue;
}

}  // namespace wharf

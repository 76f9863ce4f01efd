// The access log: one line per request, written when the exchange ends:
//
//   2026-12-01T21:30:00.123 info [access] remote=127.0.0.1:53210 method=GET path=/v2/
//       status=200 bytes_in=0 bytes_out=2 duration_ms=0.412 request_id=3f2a9c0d1e4b5a6f
//       route=registry user=alice
//
// (one line; bytes are body bytes; user is the identity the auth filter proved, "-" for none).
// Lines go through spdlog's async logger: the event loop only queues them, a thread of the log's
// own writes them, so a slow disk never blocks the loop. When the queue is full the oldest queued
// lines are dropped rather than block (counted in wharf_access_log_dropped_total).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/router.h"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace wharf {

class ReopenableFileSink;

class AccessLog {
 public:
  // `where` is "off" (returns nullptr), "stderr", or a file path, opened for append (created
  // if missing). kInvalidArgument for an empty spec, kIOError when the file cannot be opened.
  static Result<std::shared_ptr<AccessLog>> Open(const std::string& where);
  ~AccessLog();

  // Queues the line of a finished exchange. Thread-safe; never blocks on disk.
  void Record(const Exchange& ex);
  // Reopens the file (after logrotate moved it) before the next line; no-op for stderr. Safe
  // from any thread; the reopen itself happens on the log's thread.
  void Reopen();
  // Reopen() on every open access log of the process (SIGHUP).
  static void ReopenAll();

 private:
  AccessLog() = default;
  std::shared_ptr<spdlog::details::thread_pool> pool_;  // declared first: outlives logger_
  std::shared_ptr<ReopenableFileSink> file_;            // null for stderr
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<size_t> seen_overruns_{0};  // of pool_, already counted as dropped
};

// The filter that records every request of its router in `log`; add it first, so requests
// that a later filter answers (authentication, rate limits) are logged too.
class AccessLogFilter : public Filter {
 public:
  explicit AccessLogFilter(std::shared_ptr<AccessLog> log) : log_(std::move(log)) {}
  awaitable<Result> OnRequest(Exchange& ex) override;

 private:
  std::shared_ptr<AccessLog> log_;
};

}  // namespace wharf

// A one-line progress bar on stderr for the file commands: bytes done / total, percent, rate
// and time left. Drawn only when stderr is a terminal and the transfer is large; redrawn at
// most ~10 times a second; cleared (line ended) by Finish.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace wharf::cli {

class Progress {
 public:
  // Transfers above this size show a bar (when stderr is a terminal).
  static constexpr uint64_t kThreshold = 8u << 20;

  // `total` may be 0 when unknown (no percent, no time left).
  Progress(std::string label, uint64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const { return enabled_; }
  // Adds n bytes done; redraws when the last draw is older than 100 ms.
  void Add(uint64_t n);
  // Draws the final state and ends the line (or just ends it after a failure, ok=false).
  void Finish(bool ok = true);

  // The line as drawn (exposed for tests): "label  12.0 MiB / 300.0 MiB   4% [#...] ...".
  static std::string Render(const std::string& label, uint64_t done, uint64_t total, double seconds,
                            int width);

 private:
  void Draw();
  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool enabled_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace wharf::cli

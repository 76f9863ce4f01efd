#include "cli/progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "common/units.h"

namespace wharf::cli {
namespace {

int TerminalWidth() {
  struct winsize ws {};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

std::string FormatDuration(double s) {
  if (s < 0 || s > 99 * 3600) return "--:--";
  auto t = static_cast<uint64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

}  // namespace

Progress::Progress(std::string label, uint64_t total) : label_(std::move(label)), total_(total) {
  enabled_ = total_ > kThreshold && isatty(STDERR_FILENO) == 1;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (!finished_) Finish(false);
}

void Progress::Add(uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ >= std::chrono::milliseconds(100)) {
    last_draw_ = now;
    Draw();
  }
}

void Progress::Finish(bool ok) {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  if (ok) Draw();
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void Progress::Draw() {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = Render(label_, done_, total_, secs, TerminalWidth());
  std::fputs(("\r" + line + "\x1b[K").c_str(), stderr);
  std::fflush(stderr);
}

std::string Progress::Render(const std::string& label, uint64_t done, uint64_t total,
                             double seconds, int width) {
  // Fixed-width fields, so the line does not jitter as the numbers change.
  double rate = seconds > 0.05 ? static_cast<double>(done) / seconds : 0;
  std::string out = label.size() > 24 ? label.substr(0, 24) : label;
  if (total) {
    out += fmt::format("  {:>9} / {:<9} {:>3}%", FormatBytes(done), FormatBytes(total),
                       static_cast<int>(100.0 * std::min(done, total) / total));
  } else {
    out += fmt::format("  {:>9}", FormatBytes(done));
  }
  std::string tail = fmt::format("{:>9}/s", FormatBytes(static_cast<uint64_t>(rate)));
  if (total) {
    std::string when;
    if (done >= total) {
      when = "done in " + FormatDuration(seconds);
    } else {
      when =
          (rate > 0 ? FormatDuration(static_cast<double>(total - done) / rate) : "--:--") + " left";
    }
    tail += fmt::format("  {:>12}", when);
  }
  int bar = width - 1 - static_cast<int>(out.size()) - static_cast<int>(tail.size()) - 5;
  if (total && bar >= 8) {
    bar = std::min(bar, 30);
    int fill = static_cast<int>(static_cast<double>(bar) * std::min(done, total) / total);
    out += " [" + std::string(fill, '#') + std::string(bar - fill, '.') + "]";
  }
  out += "  " + tail;
  if (static_cast<int>(out.size()) >= width) out.resize(std::max(width - 1, 0));
  return out;
}

}  // namespace wharf::cli

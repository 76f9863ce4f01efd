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

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total) {
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
  double rate = seconds > 0.05 ? static_cast<double>(done) / seconds : 0;
  std::string amount = total ? fmt::format("{} / {}", FormatBytes(done), FormatBytes(total))
                             : FormatBytes(done);
  std::string pct = total ? fmt::format("{:3}%", static_cast<int>(100.0 * done / total)) : "";
  std::string tail = fmt::format("{}/s", FormatBytes(static_cast<uint64_t>(rate)));
  if (total) {
    std::string left = "--:--";
    if (done >= total) {
      left = FormatDuration(seconds);
      tail += "  done in " + left;
    } else {
      if (rate > 0) left = FormatDuration(static_cast<double>(total - done) / rate);
      tail += "  " + left + " left";
    }
  }
  std::string head = fmt::format("{}  {} {}", label, amount, pct);
  int bar = width - 1 - static_cast<int>(head.size()) - static_cast<int>(tail.size()) - 5;
  std::string out = head;
  if (total && bar >= 10) {
    bar = std::min(bar, 40);
    int fill = static_cast<int>(static_cast<double>(bar) * std::min(done, total) / total);
    out += " [" + std::string(fill, '#') + std::string(bar - fill, '.') + "]";
  }
  out += "  " + tail;
  if (static_cast<int>(out.size()) >= width) out.resize(std::max(width - 1, 0));
  return out;
}

}  // namespace wharf::cli

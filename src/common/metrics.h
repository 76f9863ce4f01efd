// Prometheus metrics. Names follow wharf_<component>_<noun>_<unit>.
//
//   static auto& puts = Metrics().Counter("wharf_chunkserver_puts_total", "Chunk puts.");
//   puts.Inc();
//   Metrics().Counter("wharf_gateway_requests_total", "...",
//   {{"route","blob"},{"code","200"}}).Inc();
//
// Thread-safe. Returned references stay valid for the life of the registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wharf {

using Labels = std::vector<std::pair<std::string, std::string>>;

class CounterMetric {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class GaugeMetric {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class HistogramMetric {
 public:
  explicit HistogramMetric(std::vector<double> bounds);
  void Observe(double v);
  // Snapshot for rendering: cumulative bucket counts, sum and count.
  void Snapshot(std::vector<uint64_t>* buckets, double* sum, uint64_t* count) const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

class MetricsRegistry {
 public:
  CounterMetric& Counter(const std::string& name, const std::string& help,
                         const Labels& labels = {});
  GaugeMetric& Gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // Default buckets suit latencies in seconds (1 ms .. 60 s).
  HistogramMetric& Histogram(const std::string& name, const std::string& help,
                             const Labels& labels = {}, std::vector<double> bounds = {});
  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  struct Family {
    std::string type;
    std::string help;
    std::map<std::string, std::unique_ptr<CounterMetric>> counters;  // by rendered labels
    std::map<std::string, std::unique_ptr<GaugeMetric>> gauges;
    std::map<std::string, std::unique_ptr<HistogramMetric>> histograms;
  };
  Family& GetFamily(const std::string& name, const std::string& type, const std::string& help);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// The process-wide registry (every role of `wharf up` shares it; names differ by component).
MetricsRegistry& Metrics();

// Renders labels as {a="x",b="y"} with Prometheus escaping ("" when empty).
std::string RenderLabels(const Labels& labels);

}  // namespace wharf

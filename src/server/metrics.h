// Counters behind /metrics, in the Prometheus text format: requests by
// route and status, token counts (prompt, cached, generated), time to first
// token, and the engine's gauges (batch, KV blocks, step times).
#pragma once

#include "engine/engine.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace tandem::server {

class ServerMetrics {
 public:
  void count_request(const std::string& route, int status);
  void count_usage(const engine::Usage& u);
  std::string render(const engine::EngineMetrics& engine, int64_t in_flight) const;
  // TEXT (Prometheus exposition) with the label NAME="VALUE" on every
  // sample (tandem serve --node-id: node="a"). VALUE needs no escaping
  // (the CLI allows letters, digits, '_', '.', '-').
  static std::string with_label(const std::string& text, const std::string& name, const std::string& value);

 private:
  static constexpr double kTtftBucketsS[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  int64_t prompt_tokens_ = 0, cached_tokens_ = 0, generated_tokens_ = 0;
  int64_t ttft_counts_[std::size(kTtftBucketsS) + 1] = {};
  double ttft_sum_s_ = 0;
  int64_t ttft_n_ = 0;
};

}  // namespace tandem::server

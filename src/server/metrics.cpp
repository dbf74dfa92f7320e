#include "server/metrics.h"

#include <fmt/format.h>

namespace tandem::server {
namespace {

// Writes a cumulative histogram from per-bucket counts (the last bucket
// holds what is above every bound).
template <size_t N>
void histogram(std::string& out, const char* name, const char* help, const double (&bounds)[N], const int64_t* counts,
               double sum, double scale) {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  int64_t cumulative = 0;
  for (size_t i = 0; i < N; ++i) {
    cumulative += counts[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i] * scale, cumulative);
  }
  cumulative += counts[N];
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cumulative, name, sum * scale, name,
                     cumulative);
}

void metric(std::string& out, const char* name, const char* type, const char* help, int64_t value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

std::string ServerMetrics::with_label(const std::string& text, const std::string& name, const std::string& value) {
  const std::string label = fmt::format("{}=\"{}\"", name, value);
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line[0] != '#') {
      const size_t brace = line.find('{'), space = line.find(' ');
      if (brace != std::string::npos && brace < space) {
        line.insert(brace + 1, label + ",");
      } else if (space != std::string::npos) {
        line.insert(space, "{" + label + "}");
      }
    }
    out += line;
    out += '\n';
    start = end + 1;
  }
  return out;
}

void ServerMetrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void ServerMetrics::count_usage(const engine::Usage& u) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += u.prompt_tokens;
  cached_tokens_ += u.cached_tokens;
  generated_tokens_ += u.generated_tokens;
  if (u.generated_tokens > 0) {
    const double s = u.ttft_ms / 1000;
    size_t b = 0;
    while (b < std::size(kTtftBucketsS) && s > kTtftBucketsS[b]) ++b;
    ++ttft_counts_[b];
    ttft_sum_s_ += s;
    ++ttft_n_;
  }
}

std::string ServerMetrics::render(const engine::EngineMetrics& e, int64_t in_flight) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP tandem_requests_total HTTP requests by route and status.\n# TYPE tandem_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += fmt::format("tandem_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  }
  metric(out, "tandem_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", prompt_tokens_);
  metric(out, "tandem_cached_prompt_tokens_total", "counter", "Prompt tokens served from the prefix cache.",
         cached_tokens_);
  metric(out, "tandem_generated_tokens_total", "counter", "Generated tokens.", generated_tokens_);
  histogram(out, "tandem_time_to_first_token_seconds", "Time from request to first generated token.", kTtftBucketsS,
            ttft_counts_, ttft_sum_s_, 1);
  histogram(out, "tandem_step_seconds", "Duration of one batched forward step.", engine::EngineMetrics::kStepBucketsMs,
            e.step_ms_counts, e.step_ms_sum / 1000, 1);
  metric(out, "tandem_requests_in_flight", "gauge", "Requests queued or running in the server.", in_flight);
  metric(out, "tandem_sequences_running", "gauge", "Sequences in the engine's batch.", e.running);
  metric(out, "tandem_sequences_waiting", "gauge", "Sequences waiting for the engine.", e.waiting);
  metric(out, "tandem_batch_size", "gauge", "Sequences in the last step.", e.last_batch_size);
  metric(out, "tandem_batch_tokens", "gauge", "Tokens in the last step.", e.last_batch_tokens);
  metric(out, "tandem_steps_total", "counter", "Engine steps.", e.steps);
  metric(out, "tandem_preemptions_total", "counter", "Sequences preempted for lack of KV blocks.", e.preemptions);
  metric(out, "tandem_kv_evictions_total", "counter", "Cached KV blocks evicted.", e.evictions);
  metric(out, "tandem_kv_tail_hits_total", "counter", "Partial last blocks of finished sequences taken over.",
         e.tail_hits);
  metric(out, "tandem_kv_head_copies_total", "counter", "Heads shared with a cached block copied into a new block.",
         e.head_copies);
  metric(out, "tandem_kv_partial_block_tokens_total", "counter",
         "Prompt tokens served from inside a block (tails and shared heads).", e.partial_block_tokens);
  out += "# HELP tandem_kv_blocks KV cache blocks by state.\n# TYPE tandem_kv_blocks gauge\n";
  const int64_t used = e.kv_blocks_total - e.kv_blocks_free - e.kv_blocks_cached;
  out += fmt::format(
      "tandem_kv_blocks{{state=\"used\"}} {}\ntandem_kv_blocks{{state=\"cached\"}} {}\n"
      "tandem_kv_blocks{{state=\"free\"}} {}\n",
      used, e.kv_blocks_cached, e.kv_blocks_free);
  metric(out, "tandem_sessions", "gauge", "Session manifests kept (see /admin/sessions).", e.sessions);
  metric(out, "tandem_moe_routed_rows_total", "counter",
         "Mixture of experts: (token, expert) pairs computed; divided by the reads, the rows each expert read serves.",
         e.moe_routed);
  metric(out, "tandem_moe_expert_reads_total", "counter",
         "Mixture of experts: expert weight reads (one per expert per layer per step, whatever its rows).",
         e.moe_expert_reads);
  if (!e.disk_enabled) return out;
  metric(out, "tandem_disk_blocks", "gauge", "KV blocks in the disk tier.", e.disk_blocks);
  metric(out, "tandem_disk_bytes", "gauge", "Bytes of the disk tier's block files.",
         static_cast<int64_t>(e.disk_bytes));
  metric(out, "tandem_disk_writes_total", "counter", "KV blocks written to disk.", e.disk_writes);
  metric(out, "tandem_disk_write_errors_total", "counter", "KV block writes that failed.", e.disk_write_errors);
  metric(out, "tandem_disk_loads_total", "counter", "KV blocks read back from disk.", e.disk_loads);
  metric(out, "tandem_disk_load_errors_total", "counter",
         "KV blocks that failed a check on load (deleted and recomputed).", e.disk_load_errors);
  metric(out, "tandem_disk_evictions_total", "counter", "KV blocks the disk budget pushed out.", e.disk_evictions);
  metric(out, "tandem_disk_hit_tokens_total", "counter", "Prompt tokens read from disk instead of computed.",
         e.disk_hit_tokens);
  metric(out, "tandem_disk_pending_blocks", "gauge", "KV blocks waiting to be written.", e.disk_pending);
  if (!e.remote_enabled) return out;
  metric(out, "tandem_redis_connected", "gauge", "1 while the Redis tier's writer is connected.", e.remote_connected);
  metric(out, "tandem_redis_hits_total", "counter", "KV blocks read from Redis and verified.", e.remote_hits);
  metric(out, "tandem_redis_misses_total", "counter", "Redis reads that ended a chain on an absent block.",
         e.remote_misses);
  metric(out, "tandem_redis_bad_values_total", "counter",
         "Redis values rejected (wrong key, tokens, size or checksum): recomputed.", e.remote_bad_values);
  metric(out, "tandem_redis_errors_total", "counter", "Redis commands that failed (down, timeout, error).",
         e.remote_errors);
  metric(out, "tandem_redis_reconnects_total", "counter", "Redis connections re-established.", e.remote_reconnects);
  metric(out, "tandem_redis_writes_total", "counter", "KV blocks and manifests written to Redis.", e.remote_writes);
  metric(out, "tandem_redis_dropped_writes_total", "counter", "Writes dropped (queue full or Redis down).",
         e.remote_dropped_writes);
  metric(out, "tandem_redis_read_bytes_total", "counter", "Bytes read from Redis.",
         static_cast<int64_t>(e.remote_bytes_read));
  metric(out, "tandem_redis_written_bytes_total", "counter", "Bytes written to Redis.",
         static_cast<int64_t>(e.remote_bytes_written));
  metric(out, "tandem_redis_reads_total", "counter", "Redis read round trips (one per request that missed locally).",
         e.remote_reads);
  out += fmt::format(
      "# HELP tandem_redis_read_seconds_total Time in Redis read round trips.\n"
      "# TYPE tandem_redis_read_seconds_total counter\ntandem_redis_read_seconds_total {:.6f}\n",
      e.remote_read_ms_total / 1000);
  metric(out, "tandem_redis_hit_tokens_total", "counter", "Prompt tokens staged from Redis instead of computed.",
         e.remote_hit_tokens);
  return out;
}

}  // namespace tandem::server

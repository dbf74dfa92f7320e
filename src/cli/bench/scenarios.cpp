// The bench scenarios: throughput (single vs batched), resume (TTFT with a
// cached prefix: cold, RAM, disk after a restart) and memory (KV bytes per
// session, and agents sharing a prefix).
#include "cli/bench/bench.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

namespace tandem::bench {

using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A + " " + B (appends: GCC 12 warns falsely on operator+ chains of strings).
std::string join(const std::string& a, const std::string& b) {
  std::string out = a;
  out.push_back(' ');
  out.append(b);
  return out;
}

// A tag no earlier run used: prompts that start with it share no prefix
// with anything cached.
std::string fresh_tag(const std::string& what) {
  static std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("[{} {:08x}]", what, static_cast<uint32_t>(rng()));
}

struct RunResult {
  std::string name;
  int concurrency = 1;
  double seconds = 0, tokens_per_s = 0;
  int64_t prompt_tokens = 0, cached_tokens = 0, generated = 0;
  int failures = 0;
  std::string first_error;
  Stats latency_ms, ttft_ms;
  std::optional<int64_t> preemptions;  // during the run, where the driver tells
};

// Every prompt once, through CONCURRENCY client threads taking the next
// prompt as they finish one (concurrency 1 = one after another).
RunResult run_prompts(Driver& d, const std::vector<std::string>& prompts, int max_tokens, int concurrency,
                      const std::string& name, Progress& progress) {
  const std::string tag = fresh_tag(name);
  const std::optional<int64_t> preempted_before = d.preemptions();
  std::vector<Outcome> out(prompts.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  const auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < prompts.size();) {
        Job job;
        job.prompt = fmt::format("{} #{}: {}", tag, i, prompts[i]);  // shares no block with any other prompt
        job.max_tokens = max_tokens;
        out[i] = d.run(job);
        std::lock_guard<std::mutex> lock(mu);
        progress.tick();
      }
    });
  }
  for (auto& w : workers) w.join();
  RunResult r;
  r.name = name;
  r.concurrency = concurrency;
  r.seconds = seconds_since(t0);
  if (const auto after = d.preemptions(); after && preempted_before) r.preemptions = *after - *preempted_before;
  std::vector<double> latency, ttft;
  for (const Outcome& o : out) {
    if (!o.ok) {
      if (r.failures++ == 0) r.first_error = o.error;
      continue;
    }
    r.prompt_tokens += o.prompt_tokens;
    r.cached_tokens += o.cached_tokens;
    r.generated += o.generated_tokens;
    latency.push_back(o.total_ms);
    ttft.push_back(o.ttft_ms);
  }
  r.tokens_per_s = static_cast<double>(r.generated) / r.seconds;
  r.latency_ms = stats_of(latency);
  r.ttft_ms = stats_of(ttft);
  return r;
}

json run_json(const RunResult& r, double single_tps) {
  return {{"run", r.name},
          {"concurrency", r.concurrency},
          {"seconds", r.seconds},
          {"tokens_per_s", r.tokens_per_s},
          {"speedup_vs_single", single_tps > 0 ? r.tokens_per_s / single_tps : 0},
          {"prompt_tokens", r.prompt_tokens},
          {"cached_prompt_tokens", r.cached_tokens},
          {"generated_tokens", r.generated},
          {"failures", r.failures},
          {"latency_ms", stats_json(r.latency_ms)},
          {"ttft_ms", stats_json(r.ttft_ms)},
          {"preemptions", r.preemptions ? json(*r.preemptions) : json(nullptr)}};
}

}  // namespace

Result<json> bench_throughput(Driver& d, const ThroughputOptions& o, std::vector<Chart>* charts) {
  if (o.prompts.empty()) return Status::error("throughput: no prompts");
  {  // warm-up: page the weights in, start the threads
    Job warm;
    warm.prompt = fresh_tag("warm-up") + " hello";
    warm.max_tokens = 4;
    const Outcome w = d.run(warm);
    if (!w.ok) return Status::errorf("throughput: the warm-up request failed: {}", w.error);
  }
  const int64_t total = static_cast<int64_t>(o.prompts.size()) * static_cast<int64_t>(1 + o.concurrency.size());
  std::vector<RunResult> runs;
  {
    Progress progress("throughput", total);
    runs.push_back(run_prompts(d, o.prompts, o.max_tokens, 1, "single", progress));
    for (int c : o.concurrency) {
      runs.push_back(run_prompts(d, o.prompts, o.max_tokens, c, fmt::format("batched x{}", c), progress));
    }
  }
  const double single = runs.front().tokens_per_s;
  fmt::print("{} prompts, {} generated tokens each (EOS ignored)\n", o.prompts.size(), o.max_tokens);
  fmt::print("{:<12} {:>8} {:>10} {:>8}  {:>27}  {:>27}\n", "run", "total s", "tokens/s", "speedup",
             "latency ms avg / p50 / p99", "TTFT ms avg / p50 / p99");
  json rows = json::array();
  for (const RunResult& r : runs) {
    fmt::print(
        "{:<12} {:>8.2f} {:>10.1f} {:>7.2f}x  {:>8.0f} / {:>7.0f} / {:>7.0f}  {:>8.0f} / {:>7.0f} / {:>7.0f}{}{}\n",
        r.name, r.seconds, r.tokens_per_s, r.tokens_per_s / single, r.latency_ms.avg, r.latency_ms.p50,
        r.latency_ms.p99, r.ttft_ms.avg, r.ttft_ms.p50, r.ttft_ms.p99,
        r.preemptions && *r.preemptions > 0 ? fmt::format("  ({} preemptions)", *r.preemptions) : "",
        r.failures ? fmt::format("  ({} failed: {})", r.failures, r.first_error) : "");
    rows.push_back(run_json(r, single));
  }
  if (charts != nullptr) {
    Chart tps{"Aggregate decode throughput", "concurrent requests", "tokens/s", {}, false};
    ChartSeries batched{"batched", {}}, base{"single (one by one)", {}};
    Chart ttft{"Time to first token", "concurrent requests", "ms", {}, false};
    ChartSeries p50{"TTFT p50", {}}, p99{"TTFT p99", {}};
    for (size_t i = 1; i < runs.size(); ++i) {
      const double c = runs[i].concurrency;
      batched.points.emplace_back(c, runs[i].tokens_per_s);
      base.points.emplace_back(c, single);
      p50.points.emplace_back(c, runs[i].ttft_ms.p50);
      p99.points.emplace_back(c, runs[i].ttft_ms.p99);
    }
    tps.series = {batched, base};
    ttft.series = {p50, p99};
    charts->push_back(tps);
    charts->push_back(ttft);
  }
  for (const RunResult& r : runs) {
    if (r.failures == static_cast<int>(o.prompts.size())) {
      return Status::errorf("throughput: every request of '{}' failed: {}", r.name, r.first_error);
    }
  }
  return json{{"prompts", o.prompts.size()}, {"max_tokens", o.max_tokens}, {"runs", rows}};
}

Result<json> bench_resume(Driver& d, EngineDriver* restart_driver, const ResumeOptions& o, std::vector<Chart>* charts) {
  fmt::print("follow-up turn = cached prefix + ~{} new tokens; TTFT (ms) and the speedup over cold\n", o.new_tokens);
  fmt::print("{:>9} {:>10} {:>10} {:>8} {:>12} {:>8}  {}\n", "prefix", "cold", "RAM", "x cold", "disk/restart",
             "x cold", "cached tokens (RAM / disk)");
  json rows = json::array();
  ChartSeries cold_s{"cold", {}}, ram_s{"RAM hit", {}}, disk_s{"disk hit after restart", {}};
  Progress progress("resume", static_cast<int64_t>(o.lengths.size()) * (restart_driver ? 3 : 2));
  for (int64_t len : o.lengths) {
    auto turn = [&](const std::string& text) {
      // Each turn starts on an idle server: the disk writes of the turn
      // before (a 3,500-token prefix is 400 MB of f16 blocks) would
      // otherwise share its two cores with this one.
      if (Status s = d.settle(); !s.ok()) return Outcome{false, s.message()};
      Job j;
      j.prompt = text;
      j.max_tokens = 1;
      Outcome r = d.run(j);
      progress.tick();
      return r;
    };
    // The follow-up's new part: about new_tokens tokens of text.
    // One conversation: its first turn (the prefix and a new part) is the
    // cold measurement; a follow-up with another new part finds the prefix
    // in RAM; after a restart, a third finds it on disk. One long prefill
    // in all, and each follow-up recomputes the same amount: the prefix's
    // partial last block and its new part.
    const std::string prefix = sized_prompt(d, len, fresh_tag("conversation"));
    const Outcome cold = turn(join(prefix, sized_prompt(d, o.new_tokens, "Then")));
    const Outcome ram = turn(join(prefix, sized_prompt(d, o.new_tokens, "Next")));
    Outcome disk;
    if (restart_driver != nullptr) {
      if (Status s = restart_driver->restart(); !s.ok()) return s;
      if (o.drop_page_cache) {
        std::ofstream("/proc/sys/vm/drop_caches") << "3\n";  // root only; otherwise the files may be in the page cache
      }
      disk = turn(join(prefix, sized_prompt(d, o.new_tokens, "Later")));
    }
    for (const Outcome* x : {&cold, &ram}) {
      if (!x->ok) return Status::errorf("resume at {} tokens: {}", len, x->error);
    }
    const int64_t prefix_tokens = d.count_tokens(prefix).value_or(len);
    const double ram_x = cold.ttft_ms / ram.ttft_ms;
    const double disk_x = disk.ok ? cold.ttft_ms / disk.ttft_ms : 0;
    fmt::print("{:>9} {:>10.1f} {:>10.1f} {:>7.1f}x {:>12} {:>8}  {} / {}\n", prefix_tokens, cold.ttft_ms, ram.ttft_ms,
               ram_x, disk.ok ? fmt::format("{:.1f}", disk.ttft_ms) : "n/a",
               disk.ok ? fmt::format("{:.1f}x", disk_x) : "", ram.cached_tokens, disk.ok ? disk.cached_tokens : 0);
    json row = {{"prefix_tokens", prefix_tokens}, {"follow_up_tokens", ram.prompt_tokens},
                {"cold_ttft_ms", cold.ttft_ms},   {"ram_ttft_ms", ram.ttft_ms},
                {"ram_speedup", ram_x},           {"ram_cached_tokens", ram.cached_tokens}};
    if (disk.ok) {
      row["disk_ttft_ms"] = disk.ttft_ms;
      row["disk_speedup"] = disk_x;
      row["disk_cached_tokens"] = disk.cached_tokens;
      row["page_cache_dropped"] = o.drop_page_cache;
    }
    rows.push_back(row);
    const double x = static_cast<double>(prefix_tokens);
    cold_s.points.emplace_back(x, cold.ttft_ms);
    ram_s.points.emplace_back(x, ram.ttft_ms);
    if (disk.ok) disk_s.points.emplace_back(x, disk.ttft_ms);
  }
  if (charts != nullptr) {
    Chart c{"TTFT of a follow-up turn", "cached prefix (tokens)", "ms (log)", {cold_s, ram_s}, true};
    if (!disk_s.points.empty()) c.series.push_back(disk_s);
    charts->push_back(c);
  }
  return json{{"new_tokens", o.new_tokens}, {"rows", rows}};
}

namespace {

// The engine's metrics once it has published the step that finished the
// last request (a request ends inside a step; the step's figures follow
// at its end).
engine::EngineMetrics idle_metrics(engine::Engine& e) {
  const auto until = Clock::now() + std::chrono::seconds(10);
  engine::EngineMetrics m = e.metrics();
  while ((m.running > 0 || m.waiting > 0) && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    m = e.metrics();
  }
  return m;
}

}  // namespace

Result<json> bench_memory(EngineDriver& d, const MemoryOptions& o) {
  const model::Model& m = d.model();
  const int bt = d.setup().engine.block_tokens;
  json types = json::object();
  fmt::print("KV cache bytes ({}):\n", model::describe(m.config()));
  fmt::print("{:<6} {:>12} {:>16} {:>10}\n", "type", "per token", fmt::format("per {}-token session", o.session_tokens),
             "vs f16");
  const double f16_block = static_cast<double>(m.kv_shape(kernels::KvType::kF16, bt).block_bytes());
  for (kernels::KvType type :
       {kernels::KvType::kF32, kernels::KvType::kF16, kernels::KvType::kBF16, kernels::KvType::kQ8_0}) {
    const char* name = kernels::kv_type_name(type);
    const kv::KvShape shape = m.kv_shape(type, bt);
    if (!shape.check().empty()) continue;  // q8_0 with a head size it cannot store
    const double block = static_cast<double>(shape.block_bytes());
    const int64_t blocks = (o.session_tokens + bt - 1) / bt;
    fmt::print("{:<6} {:>10.0f} B {:>13.1f} MiB {:>9.0f}%\n", name, block / bt, block * blocks / (1 << 20),
               100 * block / f16_block);
    types[name] = {{"bytes_per_token", block / bt},
                   {"session_bytes", block * static_cast<double>(blocks)},
                   {"vs_f16", block / f16_block}};
  }

  // N agents: one shared prefix (a system prompt and tools), a private tail each.
  engine::Engine& e = d.engine();
  const std::string shared = sized_prompt(d, o.shared_tokens, fresh_tag("system"));
  const auto before = idle_metrics(e);
  const int64_t free_before = before.kv_blocks_free;
  Progress progress("memory", o.agents);
  auto agent = [&](int i) {
    Job j;
    j.prompt = join(shared, sized_prompt(d, o.private_tokens, fmt::format("agent {}", i)));
    j.max_tokens = 1;
    j.session = fmt::format("bench-agent-{}", i);
    return d.run(j);
  };
  const Outcome first = agent(0);  // computes the shared prefix once
  progress.tick();
  if (!first.ok) return Status::errorf("memory: {}", first.error);
  std::vector<Outcome> rest(static_cast<size_t>(o.agents - 1));
  std::vector<std::thread> threads;
  for (int i = 1; i < o.agents; ++i) {
    threads.emplace_back([&, i] { rest[static_cast<size_t>(i - 1)] = agent(i); });
  }
  for (auto& t : threads) t.join();
  progress.tick(o.agents - 1);
  for (const Outcome& r : rest) {
    if (!r.ok) return Status::errorf("memory: {}", r.error);
  }
  const auto after = idle_metrics(e);
  const int64_t used = free_before - after.kv_blocks_free;  // blocks now holding KV
  const int64_t per_agent_tokens = first.prompt_tokens;
  const int64_t private_copies = o.agents * ((per_agent_tokens + bt - 1) / bt);
  const double block = static_cast<double>(m.kv_shape(d.setup().engine.kv_type, bt).block_bytes());
  fmt::print(
      "{} agents, each {} prompt tokens sharing a {}-token prefix: {} KV blocks ({:.1f} MiB) vs {} for private "
      "copies ({:.1f} MiB): {:.1f}%\n",
      o.agents, per_agent_tokens, o.shared_tokens, used, used * block / (1 << 20), private_copies,
      private_copies * block / (1 << 20), 100.0 * static_cast<double>(used) / static_cast<double>(private_copies));
  return json{{"kv_types", types},
              {"shared_prefix",
               {{"agents", o.agents},
                {"prompt_tokens_per_agent", per_agent_tokens},
                {"shared_tokens", o.shared_tokens},
                {"blocks_used", used},
                {"bytes_used", static_cast<double>(used) * block},
                {"blocks_private_copies", private_copies},
                {"bytes_private_copies", static_cast<double>(private_copies) * block},
                {"fraction", static_cast<double>(used) / static_cast<double>(private_copies)}}}};
}

}  // namespace tandem::bench

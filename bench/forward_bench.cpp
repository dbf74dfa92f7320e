// End-to-end forward-pass benchmark on a real-shaped model:
//   - memory bandwidth of this machine (STREAM-like read of 512 MiB),
//   - prefill tokens/s for a 512-token prompt,
//   - decode tokens/s for 1 sequence and aggregate for 2, 4, 8, 16
//     sequences decoding together (one token each per step), each with a
//     context of --decode-ctx tokens (default 64) in a --kv-type cache,
//   - single-stream decode against the bandwidth roofline:
//     (weight bytes + KV bytes read) x tokens/s / bandwidth.
//
//   build/bench/forward_bench [--model FILE | --like qwen3-0.6b --type q8_0] [--threads N]
//                             [--batches 1,8] [--prefill 0] [--kv-type q8_0] [--decode-ctx 3000] [--steps 32]
//
// Without --model it synthesizes the model once into build/bench-models/.
// TANDEM_NO_AMX=1 runs without the AMX matmuls (kernels/amx.h), for A/B.
#include "kernels/amx.h"
#include "kernels/dot.h"
#include "kv/kv_pool.h"
#include "model/model.h"
#include "bench_model.h"
#include "core/huge_buffer.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

using namespace tandem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Read bandwidth with N threads: sum a large buffer (larger than any
// cache), on 2 MiB pages like the weights (4 KiB pages read ~10-30% slower
// on a VM: their TLB misses cost more than the bandwidth probe should).
double measure_bandwidth_gbs(int n_threads) {
  const size_t n = (512u << 20) / sizeof(uint64_t);
  HugeBuffer mem = HugeBuffer::allocate(n * sizeof(uint64_t));
  if (!mem) std::abort();
  auto* buf = reinterpret_cast<uint64_t*>(mem.data());
  std::fill(buf, buf + n, uint64_t{1});
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<uint64_t> sums(static_cast<size_t>(n_threads));
    const auto t0 = Clock::now();
    std::vector<std::thread> th;
    for (int t = 0; t < n_threads; ++t) {
      th.emplace_back([&, t] {
        const size_t b = n * static_cast<size_t>(t) / static_cast<size_t>(n_threads);
        const size_t e = n * static_cast<size_t>(t + 1) / static_cast<size_t>(n_threads);
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = b; i + 4 <= e; i += 4) s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
        sums[static_cast<size_t>(t)] = s0 + s1 + s2 + s3;
      });
    }
    for (auto& x : th) x.join();
    const double s = seconds(t0);
    uint64_t total = 0;
    for (auto v : sums) total += v;
    if (total == 0) std::abort();
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = bench::parse_args(argc, argv);
  if (!args) return 2;
  auto loaded = bench::load_model(*args, 4096, 512, 16);
  if (!loaded) return 1;
  const int threads = args->threads;
  const std::string& model_path = args->model_path;
  model::Model& m = *loaded;
  const auto kv_type = bench::kv_type_for(*args, m);
  if (!kv_type) return 2;
  const auto shape = m.kv_shape(*kv_type);
  const int steps = args->steps, ctx = args->decode_ctx;
  const int64_t seq_blocks = (ctx + steps + shape.block_tokens - 1) / shape.block_tokens;
  const int max_batch = *std::max_element(args->batches.begin(), args->batches.end());
  auto pool =
      kv::KvPool::create(shape, shape.block_bytes() * static_cast<size_t>(max_batch * seq_blocks + 512 / 32 + 1));
  if (!pool) {
    fmt::print(stderr, "{}\n", pool.message());
    return 1;
  }
  const double bw = measure_bandwidth_gbs(threads);
  const double wgb = static_cast<double>(m.weight_bytes()) / 1e9;
  fmt::print("model {} ({}), {:.2f} GB of weights per step, {} threads, SIMD {}, AMX {}\n", model_path,
             model::describe(m.config()), wgb, threads, kernels::simd_target_name(), kernels::amx_status());
  const double kv_token_gb = static_cast<double>(shape.block_bytes()) / shape.block_tokens / 1e9;
  fmt::print("memory read bandwidth: {:.1f} GB/s -> decode roofline {:.1f} tokens/s (weights only)\n", bw, bw / wgb);
  fmt::print("KV cache {}: {} bytes per token; decode context {} tokens ({:.3f} GB of KV per sequence)\n",
             kernels::kv_type_name(*kv_type), shape.block_bytes() / shape.block_tokens, ctx, kv_token_gb * ctx);

  std::vector<float> logits;
  auto blocks_for = [&](int64_t n) {
    std::vector<kv::BlockId> b;
    for (int64_t i = 0; i < (n + shape.block_tokens - 1) / shape.block_tokens; ++i)
      b.push_back(*(*pool)->blocks().allocate());
    return b;
  };
  // Prefill: one 512-token prompt.
  if (args->prefill) {
    std::vector<int32_t> prompt(512);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919) % 1000 + 10);
    auto blocks = blocks_for(512);
    model::SequenceBatch sb{prompt, 0, blocks};
    (void)m.forward(std::span<const model::SequenceBatch>(&sb, 1), **pool, logits);  // warm-up
    const auto t0 = Clock::now();
    const double cpu0 = process_cpu_seconds();
    (void)m.forward(std::span<const model::SequenceBatch>(&sb, 1), **pool, logits);
    const double s = seconds(t0), cpu = process_cpu_seconds() - cpu0;
    // CPU time counts the work whatever else runs on the machine (it also
    // counts the workers' short spin-waits): tokens per CPU-second x
    // threads is the wall-clock speed this run would have alone.
    fmt::print("prefill 512 tokens: {:.1f} tokens/s, {:.1f} tokens per CPU-second\n", 512 / s, 512 / cpu);
    for (auto b : blocks) (*pool)->blocks().release(b);
  }
  // Decode: B sequences with a CTX-token context each, --steps steps. The
  // context's K/V are not computed, only written with bytes (attention's
  // cost does not depend on the values; untouched pages would all read
  // the kernel's one zero page from cache).
  double single = 0;
  for (int B : args->batches) {
    std::vector<std::vector<int32_t>> toks(static_cast<size_t>(B), std::vector<int32_t>(ctx + steps, 100));
    std::vector<std::vector<kv::BlockId>> blocks;
    for (int s = 0; s < B; ++s) {
      blocks.push_back(blocks_for(ctx + steps));
      for (kv::BlockId b : blocks.back()) std::memset((*pool)->block_data(b), 0x11, shape.block_bytes());
    }
    std::vector<model::SequenceBatch> batch(static_cast<size_t>(B));
    double t_total = 0;
    for (int step = 0; step < steps; ++step) {
      for (int s = 0; s < B; ++s) {
        batch[static_cast<size_t>(s)] = {
            std::span<const int32_t>(toks[static_cast<size_t>(s)]).subspan(static_cast<size_t>(ctx + step), 1),
            ctx + step, blocks[static_cast<size_t>(s)]};
      }
      const auto t0 = Clock::now();
      auto r = m.forward(batch, **pool, logits);
      if (!r) {
        fmt::print(stderr, "{}\n", r.message());
        return 1;
      }
      if (step > 0) t_total += seconds(t0);  // first step warms up
    }
    const double tps = B * (steps - 1) / t_total;
    if (B == 1) single = tps;
    // Bytes a step reads: the weights once, every sequence's KV.
    // The VM's bandwidth drifts by tens of percent within minutes: the
    // roofline is the better of the probe at start and one right after.
    const double bw_ref = std::max(bw, measure_bandwidth_gbs(threads));
    const double step_gb = wgb + B * kv_token_gb * (ctx + steps / 2);
    fmt::print(
        "decode {:>2} sequences: {:7.1f} tokens/s aggregate ({:.2f}x single), {:.0f}% of the bandwidth roofline "
        "({:.1f} GB/s)\n",
        B, tps, single > 0 ? tps / single : 0.0, 100 * (tps / B) * step_gb / bw_ref, bw_ref);
    for (auto& bl : blocks) {
      for (auto b : bl) (*pool)->blocks().release(b);
    }
  }
  return 0;
}

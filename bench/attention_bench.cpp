// Paged attention on the Qwen3-0.6B shape (16 query heads, 8 KV heads,
// head_dim 128, f16 KV in 32-token blocks), in GFLOP/s against the machine's
// f32 FMA peak (Zen 3 AVX2: 2 x 8-lane FMA per cycle per core, ~95 GFLOP/s
// per core at ~3 GHz). FLOPs counted: 2 * head_dim for q.k and 2 * head_dim
// for p.v per (query head, visible key); softmax is not counted.
//
//   build/bench/attention_bench [--reps N]
//
// Threads split the work by KV head, as the forward pass does.
#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/dot.h"
#include "kernels/thread_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace tandem;
using namespace tandem::kernels;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kHeads = 16, kKvHeads = 8, kHeadDim = 128, kBlockTokens = 32;

struct Case {
  const char* name;
  int n_queries;
  int64_t pos;  // position of the first query
};

double run_case(const Case& c, ThreadPool& pool, int reps) {
  const int64_t last = c.pos + c.n_queries - 1;
  const int64_t n_blocks = last / kBlockTokens + 1;
  const size_t block_elems = static_cast<size_t>(kKvHeads) * kBlockTokens * kHeadDim;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> kmem(static_cast<size_t>(n_blocks) * block_elems), vmem(kmem.size());
  for (auto& x : kmem) x = f32_to_f16(nd(rng));
  for (auto& x : vmem) x = f32_to_f16(nd(rng));
  std::vector<const uint8_t*> kp, vp;
  for (int64_t b = 0; b < n_blocks; ++b) {
    kp.push_back(reinterpret_cast<const uint8_t*>(kmem.data() + static_cast<size_t>(b) * block_elems));
    vp.push_back(reinterpret_cast<const uint8_t*>(vmem.data() + static_cast<size_t>(b) * block_elems));
  }
  const size_t qd = static_cast<size_t>(kHeads) * kHeadDim;
  std::vector<float> q(static_cast<size_t>(c.n_queries) * qd), out(q.size());
  for (auto& x : q) x = nd(rng);
  const int group = kHeads / kKvHeads;
  const size_t per_thread = attention_scratch_floats(kBlockTokens, kHeadDim, c.n_queries, group);
  std::vector<float> scratch(per_thread * static_cast<size_t>(pool.size()));
  auto once = [&] {
    pool.run([&](int t, int nt) {
      int64_t b, e;
      ThreadPool::split(kKvHeads, t, nt, &b, &e);
      AttentionArgs a;
      a.q = q.data();
      a.out = out.data();
      a.n_queries = c.n_queries;
      a.q_stride = a.out_stride = static_cast<int64_t>(qd);
      a.n_heads = kHeads;
      a.n_kv_heads = kKvHeads;
      a.head_dim = kHeadDim;
      a.scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
      a.pos = c.pos;
      a.k_blocks = kp.data();
      a.v_blocks = vp.data();
      a.block_tokens = kBlockTokens;
      a.kv_type = KvType::kF16;
      a.scratch = scratch.data() + static_cast<size_t>(t) * per_thread;
      for (int64_t kvh = b; kvh < e; ++kvh) attention(a, static_cast<int>(kvh) * group, static_cast<int>(kvh + 1) * group);
    });
  };
  double flops = 0;
  for (int i = 0; i < c.n_queries; ++i) flops += 4.0 * kHeadDim * kHeads * static_cast<double>(c.pos + i + 1);
  once();  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    // Enough calls for ~20 ms per sample.
    const int inner = std::max(1, static_cast<int>(2e9 / 50 / flops));
    for (int i = 0; i < inner; ++i) once();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count() / inner);
  }
  return flops / best * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--reps") reps = std::atoi(argv[i + 1]);
  }
  const Case cases[] = {{"cached turn: 48 queries at 3008", 48, 3008},
                        {"prefill chunk: 512 queries at 2560", 512, 2560},
                        {"decode: 1 query at 3000", 1, 3000}};
  fmt::print("attention, {} heads / {} KV heads, head_dim {}, f16 KV, {}-token blocks, SIMD {}\n", kHeads, kKvHeads,
             kHeadDim, kBlockTokens, simd_target_name());
  fmt::print("{:<38} {:>12} {:>12}\n", "case (best of reps)", "1 thread", "2 threads");
  ThreadPool one(1), two(2);
  for (const Case& c : cases) {
    const double g1 = run_case(c, one, reps);
    const double g2 = run_case(c, two, reps);
    fmt::print("{:<38} {:>8.1f} GF/s {:>7.1f} GF/s\n", c.name, g1, g2);
  }
  fmt::print("peak f32 FMA (Zen 3 AVX2, ~3 GHz): ~95 GFLOP/s per core\n");
  return 0;
}

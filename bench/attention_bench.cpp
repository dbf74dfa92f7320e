// Paged attention on the Qwen3-0.6B shape (16 query heads, 8 KV heads,
// head_dim 128, 32-token blocks), f16 and q8_0 KV, in GFLOP/s; compare with
// the f32 FMA peak per core (2 FMA pipes x lanes x 2 x clock: ~95 GFLOP/s
// for Zen 3 AVX2 at ~3 GHz, twice that with AVX-512). FLOPs counted: 2 *
// head_dim for q.k and 2 * head_dim for p.v per (query head, visible key);
// softmax is not counted. The decode case from DRAM also gives the KV
// bandwidth it reached (bytes per FLOP printed at the end).
//
//   build/bench/attention_bench [--reps N] [--kv-types f16,q8_0] [--only TEXT] [--threads 1|2]
//
// --only runs the cases whose name contains TEXT (e.g. under perf record).
//
// Threads split the work by KV head, as the forward pass does.
#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/dot.h"
#include "kernels/simd_limit.h"
#include "kernels/kv_quant.h"
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
  int64_t pos;     // position of the first query
  int copies = 1;  // distinct caches visited in turn: > 1 streams K/V from DRAM, not from cache
};

// One layer's K or V of N_BLOCKS blocks of unit-normal values in TYPE's
// layout (q8_0: every token's row quantized by the KV write kernel).
std::vector<uint8_t> random_blocks(KvType type, int64_t n_blocks, bool is_k, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t hb = kv_head_bytes(type, kHeadDim, kBlockTokens);
  std::vector<uint8_t> mem(static_cast<size_t>(n_blocks) * kKvHeads * hb);
  std::vector<float> row(kHeadDim);
  for (size_t h = 0; h < mem.size() / hb; ++h) {
    uint8_t* head = mem.data() + h * hb;
    for (int t = 0; t < kBlockTokens; ++t) {
      for (auto& x : row) x = nd(rng);
      if (type == KvType::kQ8_0) {
        auto* q = reinterpret_cast<int8_t*>(head);
        auto* d = reinterpret_cast<uint16_t*>(head + kHeadDim * kBlockTokens);
        if (is_k) {
          quantize_kv_q8(row.data(), kHeadDim, 32, q + t, kBlockTokens, d + t, kBlockTokens);
        } else {
          quantize_kv_q8(row.data(), kHeadDim, 32, q + t * kHeadDim, 1, d + t * (kHeadDim / 32), 1);
        }
      } else {
        auto* f = reinterpret_cast<uint16_t*>(head);
        for (size_t i = 0; i < kHeadDim; ++i) {
          if (type == KvType::kBF16) {
            f[kv_bf16_index(is_k, kHeadDim, kBlockTokens, static_cast<size_t>(t), i)] = f32_to_bf16(row[i]);
          } else {
            f[is_k ? i * kBlockTokens + static_cast<size_t>(t) : static_cast<size_t>(t) * kHeadDim + i] =
                f32_to_f16(row[i]);
          }
        }
      }
    }
  }
  return mem;
}

double run_case(const Case& c, KvType type, ThreadPool& pool, int reps) {
  const int64_t last = c.pos + c.n_queries - 1;
  const int64_t n_blocks = last / kBlockTokens + 1;
  const size_t block_bytes = static_cast<size_t>(kKvHeads) * kv_head_bytes(type, kHeadDim, kBlockTokens);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint8_t> kmem = random_blocks(type, n_blocks, true, rng),
                       vmem = random_blocks(type, n_blocks, false, rng);
  const size_t layer_bytes = kmem.size();
  kmem.resize(layer_bytes * static_cast<size_t>(c.copies));
  vmem.resize(kmem.size());
  for (int i = 1; i < c.copies; ++i) {
    std::memcpy(kmem.data() + static_cast<size_t>(i) * layer_bytes, kmem.data(), layer_bytes);
    std::memcpy(vmem.data() + static_cast<size_t>(i) * layer_bytes, vmem.data(), layer_bytes);
  }
  // Block tables of every copy, one after the other.
  std::vector<const uint8_t*> kp, vp;
  for (int64_t b = 0; b < n_blocks * c.copies; ++b) {
    kp.push_back(kmem.data() + static_cast<size_t>(b) * block_bytes);
    vp.push_back(vmem.data() + static_cast<size_t>(b) * block_bytes);
  }
  int copy = 0;
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
      a.k_blocks = kp.data() + copy * n_blocks;
      a.v_blocks = vp.data() + copy * n_blocks;
      a.block_tokens = kBlockTokens;
      a.kv_type = type;
      a.scratch = scratch.data() + static_cast<size_t>(t) * per_thread;
      for (int64_t kvh = b; kvh < e; ++kvh)
        attention(a, static_cast<int>(kvh) * group, static_cast<int>(kvh + 1) * group);
    });
    copy = (copy + 1) % c.copies;
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
  if (tandem::Status st = tandem::kernels::limit_simd_from_env(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 2;
  }
  int reps = 5;
  std::vector<KvType> types{KvType::kF16, KvType::kBF16, KvType::kQ8_0};
  std::string only;
  int threads = 0;  // 0: 1 and 2
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string opt = argv[i], val = argv[i + 1];
    if (opt == "--reps") {
      reps = std::atoi(val.c_str());
    } else if (opt == "--only") {
      only = val;
    } else if (opt == "--threads") {
      threads = std::atoi(val.c_str());
    } else if (opt == "--kv-types") {
      types.clear();
      for (size_t p = 0; p <= val.size();) {
        const size_t e = std::min(val.find(',', p), val.size());
        const auto t = parse_kv_type(val.substr(p, e - p));
        if (!t) {
          fmt::print(stderr, "unknown KV type '{}' ({})\n", val.substr(p, e - p), kv_type_names());
          return 1;
        }
        types.push_back(*t);
        p = e + 1;
      }
    } else {
      fmt::print(stderr,
                 "usage: attention_bench [--reps N] [--kv-types f16,bf16,q8_0] [--only TEXT] [--threads 1|2]\n");
      return 1;
    }
  }
  const Case cases[] = {{"cached turn: 48 queries at 3008", 48, 3008},
                        {"prefill chunk: 512 queries at 2560", 512, 2560},
                        {"decode: 1 query at 3000", 1, 3000},
                        // 12.3 MB of f16 K/V per layer: 80 copies (1 GB) outgrow any cache.
                        {"decode, K/V from DRAM: 1 at 3000", 1, 3000, 80}};
  fmt::print("attention, {} heads / {} KV heads, head_dim {}, {}-token blocks, SIMD {}\n", kHeads, kKvHeads, kHeadDim,
             kBlockTokens, simd_target_name());
  fmt::print("{:<38}", "case (best of reps), GFLOP/s");
  for (KvType t : types) fmt::print(" {:>6} 1T {:>6} 2T", kv_type_name(t), kv_type_name(t));
  fmt::print("\n");
  ThreadPool one(1), two(2);
  for (const Case& c : cases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    fmt::print("{:<38}", c.name);
    for (KvType t : types) {
      const double g1 = threads == 2 ? 0.0 : run_case(c, t, one, reps);
      const double g2 = threads == 1 ? 0.0 : run_case(c, t, two, reps);
      fmt::print(" {:>9.1f} {:>9.1f}", g1, g2);
      std::fflush(stdout);
    }
    fmt::print("\n");
  }
  fmt::print("(GB/s of K/V read in the DRAM case = GFLOP/s x {:.3f} for f16 and bf16, x {:.3f} for q8_0)\n",
             2.0 * kv_head_bytes(KvType::kF16, kHeadDim, 1) * kKvHeads / (4.0 * kHeadDim * kHeads),
             2.0 * kv_head_bytes(KvType::kQ8_0, kHeadDim, 32) / 32 * kKvHeads / (4.0 * kHeadDim * kHeads));
  fmt::print("KV bytes per token and layer (8 KV heads of 128): ");
  for (KvType t : types)
    fmt::print("{} {}  ", kv_type_name(t), 2 * kKvHeads * kv_head_bytes(t, kHeadDim, kBlockTokens) / kBlockTokens);
  fmt::print("\n");
  return 0;
}

// Paged attention. Highway dynamic dispatch: this file is compiled once per
// SIMD target, and one dispatched call runs a whole head range, so the
// per-block kernels (scores, online softmax, P.V) inline into one loop
// instead of costing an indirect call each per (query, block).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/attention_amx.h"

#ifndef TANDEM_KERNELS_ATTENTION_TILE
#define TANDEM_KERNELS_ATTENTION_TILE
namespace tandem::kernels {
// (query, head) items per tile: 6 x 2 accumulators + 2 K/V vectors + a
// broadcast fill 15 of the 16 AVX2 registers, and 12 independent FMA chains
// keep both FMA pipes busy through the 4-cycle latency with slack (8 chains
// is the bare minimum).
constexpr int kTile = 6;
}  // namespace tandem::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace tandem::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// GCC folds every use of a loaded K or V vector into its FMA as a memory
// operand: with two queries that is 10 loads per 8 FMAs, and Zen 3 issues
// two 256-bit loads per cycle, so the loop becomes load-bound. An empty asm
// pins the vector in a register (loaded once, used by every query).
// (Pinning by reference into an array element instead makes GCC store the
// array to the stack every step.)
HWY_INLINE VF Pinned(VF v) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3 && (defined(__GNUC__) || defined(__clang__))
  asm("" : "+x"(v.raw));
#endif
  return v;
}

// K and V are read either from f32 scratch (converted once per block when
// many queries share it) or straight from the f16 cache (decode: converting
// in registers saves a store and a reload). Both give the same f32 values.
HWY_INLINE VF LoadKv(DF d, const float* p) { return hn::LoadU(d, p); }
HWY_INLINE VF LoadKv(DF d, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, p));
}
HWY_INLINE float ScalarKv(const float* p) { return *p; }
HWY_INLINE float ScalarKv(const hwy::float16_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return ::tandem::f16_to_f32(h);
}

// A q8_0 KV head of one block (layout in kv_type.h). K: int8 Q[dim][token]
// with f16 scales D[dim / G][token]. V: int8 Q[token][dim] with the scales
// of the rows in use converted to f32 once per block, D[token * NG + dim / G]
// (a broadcast per V vector then costs one load). A value is the product
// of an int8 and an f16, exact in f32: whether a block is dequantized to
// scratch or in registers, every query multiplies the same f32 values.
struct Q8K {
  const int8_t* q;
  const hwy::float16_t* d;
  size_t group;
};
struct Q8V {
  const int8_t* q;
  const float* d;
  size_t group, ng;
};

// How the tiles read K and V, whatever the storage: values that share a
// scale (GroupDims), the scale of a run of keys (KScale, K only; a
// placeholder for f32 and f16, which the compiler drops) or of one V
// vector (VScale), a vector of values (Load), one value (Scalar, for tails).
template <typename T>
HWY_INLINE size_t GroupDims(const T*, size_t dims) {
  return dims;
}
HWY_INLINE size_t GroupDims(const Q8K& k, size_t) { return k.group; }
HWY_INLINE size_t GroupDims(const Q8V& v, size_t) { return v.group; }
template <typename T>
HWY_INLINE VF KScale(DF d, const T*, size_t, size_t, size_t) {
  return hn::Zero(d);
}
HWY_INLINE VF KScale(DF d, const Q8K& k, size_t g, size_t t, size_t j) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, k.d + g * t + j));
}
template <typename T>
HWY_INLINE VF VScale(DF d, const T*, size_t, size_t) {
  return hn::Zero(d);
}
HWY_INLINE VF VScale(DF d, const Q8V& v, size_t t, size_t g) { return hn::Set(d, v.d[t * v.ng + g]); }
template <typename T>
HWY_INLINE VF Load(DF d, const T* p, size_t idx, VF) {
  return LoadKv(d, p + idx);
}
HWY_INLINE VF LoadQ8(DF d, const int8_t* q, VF scale) {
  const hn::Rebind<int8_t, DF> d8;
  const hn::Rebind<int32_t, DF> di;
  return hn::Mul(hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, q))), scale);
}
HWY_INLINE VF Load(DF d, const Q8K& k, size_t idx, VF scale) { return LoadQ8(d, k.q + idx, scale); }
HWY_INLINE VF Load(DF d, const Q8V& v, size_t idx, VF scale) { return LoadQ8(d, v.q + idx, scale); }
template <typename T>
HWY_INLINE float Scalar(const T* p, size_t idx, size_t) {
  return ScalarKv(p + idx);
}
HWY_INLINE float Scalar(const Q8K& k, size_t idx, size_t sidx) {
  return static_cast<float>(k.q[idx]) * ScalarKv(k.d + sidx);
}
HWY_INLINE float Scalar(const Q8V& v, size_t idx, size_t sidx) { return static_cast<float>(v.q[idx]) * v.d[sidx]; }

// S[n][t] = sum over d of Q[n][d] * K_T[d][t] for NQ queries, t in [0, T),
// keys stored transposed (row d holds T keys). NV key vectors per step:
// NQ * NV independent FMA chains hide the 4-cycle FMA latency, and each K
// load serves all NQ queries. Every lane sums over d in order from zero
// (fma), whatever NQ, NV or the tail, so a query's scores never depend on
// the queries it shares the loads with. q8_0 K: the dims of one scale group
// run together after their NV scale vectors are loaded.
template <int NQ, int NV, typename KS>
HWY_INLINE void ScoresTile(const float* const* q, const KS& k_t, size_t dims, size_t t, float* const* s) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t gd = GroupDims(k_t, dims);
  size_t j = 0;
  for (; j + NV * L <= t; j += NV * L) {
    VF acc[NQ][NV];
    for (int n = 0; n < NQ; ++n) {
      for (int v = 0; v < NV; ++v) acc[n][v] = hn::Zero(d);
    }
    for (size_t g0 = 0; g0 < dims; g0 += gd) {
      VF sc[NV];
      for (int v = 0; v < NV; ++v) sc[v] = KScale(d, k_t, g0 / gd, t, j + v * L);
      for (size_t i = g0; i < g0 + gd; ++i) {
        VF k[NV];
        for (int v = 0; v < NV; ++v) k[v] = Pinned(Load(d, k_t, i * t + j + v * L, sc[v]));
        for (int n = 0; n < NQ; ++n) {
          const VF qi = hn::Set(d, q[n][i]);
          for (int v = 0; v < NV; ++v) acc[n][v] = hn::MulAdd(qi, k[v], acc[n][v]);
        }
      }
    }
    for (int n = 0; n < NQ; ++n) {
      for (int v = 0; v < NV; ++v) hn::StoreU(acc[n][v], d, s[n] + j + v * L);
    }
  }
  for (; j + L <= t; j += L) {
    VF acc[NQ];
    for (int n = 0; n < NQ; ++n) acc[n] = hn::Zero(d);
    for (size_t g0 = 0; g0 < dims; g0 += gd) {
      const VF sc = KScale(d, k_t, g0 / gd, t, j);
      for (size_t i = g0; i < g0 + gd; ++i) {
        const VF k = Pinned(Load(d, k_t, i * t + j, sc));
        for (int n = 0; n < NQ; ++n) acc[n] = hn::MulAdd(hn::Set(d, q[n][i]), k, acc[n]);
      }
    }
    for (int n = 0; n < NQ; ++n) hn::StoreU(acc[n], d, s[n] + j);
  }
  for (; j < t; ++j) {  // block sizes that are not a multiple of a vector
    for (int n = 0; n < NQ; ++n) {
      float acc = 0.0f;
      for (size_t i = 0; i < dims; ++i) acc = std::fma(q[n][i], Scalar(k_t, i * t + j, (i / gd) * t + j), acc);
      s[n][j] = acc;
    }
  }
}

// OUT[n][c] = OUT[n][c] * CORR[n] + sum over t in [T0, T1] of P[n][t] * V[t][c]
// for NQ queries, V rows [token][dims]. NV dim vectors per step; each lane
// sums over t in order after the (exact, when CORR is 1) rescale, so the
// arithmetic is that of one query alone. A query whose own keys are a
// subrange has P = 0 elsewhere, and fma(0, v, acc) == acc for finite v.
// A vector never straddles two q8_0 groups: c is a multiple of the lane
// count, which divides 32, and a group shorter than 32 is the whole head.
template <int NQ, int NV, typename VS>
HWY_INLINE void PvTile(const float* const* p, const float* corr, const VS& v, size_t t0, size_t t1, size_t dims,
                       float* const* out) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t gd = GroupDims(v, dims);
  size_t c = 0;
  for (; c + NV * L <= dims; c += NV * L) {
    VF acc[NQ][NV];
    for (int n = 0; n < NQ; ++n) {
      const VF cn = hn::Set(d, corr[n]);
      for (int k = 0; k < NV; ++k) acc[n][k] = hn::Mul(hn::LoadU(d, out[n] + c + k * L), cn);
    }
    for (size_t t = t0; t <= t1; ++t) {
      VF vv[NV];
      for (int k = 0; k < NV; ++k) {
        vv[k] = Pinned(Load(d, v, t * dims + c + k * L, VScale(d, v, t, (c + k * L) / gd)));
      }
      for (int n = 0; n < NQ; ++n) {
        const VF pt = hn::Set(d, p[n][t]);
        for (int k = 0; k < NV; ++k) acc[n][k] = hn::MulAdd(pt, vv[k], acc[n][k]);
      }
    }
    for (int n = 0; n < NQ; ++n) {
      for (int k = 0; k < NV; ++k) hn::StoreU(acc[n][k], d, out[n] + c + k * L);
    }
  }
  for (; c + L <= dims; c += L) {
    VF acc[NQ];
    for (int n = 0; n < NQ; ++n) acc[n] = hn::Mul(hn::LoadU(d, out[n] + c), hn::Set(d, corr[n]));
    for (size_t t = t0; t <= t1; ++t) {
      const VF vv = Pinned(Load(d, v, t * dims + c, VScale(d, v, t, c / gd)));
      for (int n = 0; n < NQ; ++n) acc[n] = hn::MulAdd(hn::Set(d, p[n][t]), vv, acc[n]);
    }
    for (int n = 0; n < NQ; ++n) hn::StoreU(acc[n], d, out[n] + c);
  }
  const size_t ng = dims / gd;
  for (; c < dims; ++c) {
    for (int n = 0; n < NQ; ++n) {
      float acc = out[n][c] * corr[n];
      for (size_t t = t0; t <= t1; ++t) acc = std::fma(p[n][t], Scalar(v, t * dims + c, t * ng + c / gd), acc);
      out[n][c] = acc;
    }
  }
}

// S[t] *= SCALE for t in [t0, t1]; returns the max of those.
HWY_INLINE float ScaleMaxInl(float* s, size_t t0, size_t t1, float scale) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const auto vs = hn::Set(d, scale);
  auto mx = hn::Set(d, -std::numeric_limits<float>::infinity());
  const size_t n = t1 - t0 + 1;
  float* x = s + t0;
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto v = hn::Mul(hn::LoadU(d, x + i), vs);
    hn::StoreU(v, d, x + i);
    mx = hn::Max(mx, v);
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, mx));
  for (; i < n; ++i) {
    x[i] *= scale;
    m = std::max(m, x[i]);
  }
  return m;
}

// S[t] = exp(S[t] - M) for t in [t0, t1]; returns their sum (lane partial
// sums, then the tail in order: fixed for a given t0, t1).
HWY_INLINE float ExpSumInl(float* s, size_t t0, size_t t1, float m) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const auto vm = hn::Set(d, m);
  auto sum = hn::Zero(d);
  const size_t n = t1 - t0 + 1;
  float* x = s + t0;
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    hn::StoreU(e, d, x + i);
    sum = hn::Add(sum, e);
  }
  float total = hn::GetLane(hn::SumOfLanes(d, sum));
  if (i < n) {
    alignas(64) float tail[64] = {};
    const size_t r = n - i;
    for (size_t k = 0; k < L; ++k) tail[k] = k < r ? x[i + k] : m;
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, tail), vm));
    hn::StoreU(e, d, tail);
    for (size_t k = 0; k < r; ++k) {
      x[i + k] = tail[k];
      total += tail[k];
    }
  }
  return total;
}

// One query of one head inside a block: its visible keys [t0, t1].
struct Item {
  const float* q;
  float* out;
  float* run_max;
  float* run_sum;
  size_t t0, t1;
};

// Up to kTile items through one block: their scores share each K load, the
// online softmax runs per item (its own [t0, t1], fixed by its position),
// and P.V runs over the union of their key ranges with zero weights outside
// each item's own, sharing each V load.
template <int NQ, typename KS, typename VS>
HWY_INLINE void RunTile(const Item* it, const KS& k_t, const VS& vrows, size_t dims, size_t bt, float scale,
                        float* scores) {
  constexpr int NV = NQ <= 2 ? 4 : 2;  // NQ * NV accumulators + NV loads + 1 fit 16 registers
  const float* q[NQ];
  float* s[NQ];
  float* out[NQ];
  float corr[NQ];
  size_t u0 = bt, u1 = 0;
  for (int n = 0; n < NQ; ++n) {
    q[n] = it[n].q;
    s[n] = scores + static_cast<size_t>(n) * bt;
    out[n] = it[n].out;
    u0 = std::min(u0, it[n].t0);
    u1 = std::max(u1, it[n].t1);
  }
  // As many key vectors per step as the block holds, up to NV: with
  // AVX-512 a 32-token block is two vectors, and a 4-vector step would
  // leave the whole block to the one-vector loop (NQ FMA chains, latency
  // bound). Each lane's sum is the same whichever step runs it.
  const size_t L = hn::Lanes(DF());
  if (NV >= 4 && bt >= 4 * L) {
    ScoresTile<NQ, NV>(q, k_t, dims, bt, s);
  } else if (bt >= 2 * L) {
    ScoresTile<NQ, 2>(q, k_t, dims, bt, s);
  } else {
    ScoresTile<NQ, 1>(q, k_t, dims, bt, s);
  }
  for (int n = 0; n < NQ; ++n) {
    const Item& x = it[n];
    const float block_max = ScaleMaxInl(s[n], x.t0, x.t1, scale);
    const float old_max = *x.run_max;
    const float new_max = std::max(old_max, block_max);
    // exp(0) is 1: skip the call when the max holds (most blocks).
    corr[n] = new_max == old_max ? 1.0f : std::exp(old_max - new_max);  // 0 on the first block
    *x.run_sum = *x.run_sum * corr[n] + ExpSumInl(s[n], x.t0, x.t1, new_max);
    *x.run_max = new_max;
    for (size_t t = u0; t < x.t0; ++t) s[n][t] = 0.0f;
    for (size_t t = x.t1 + 1; t <= u1; ++t) s[n][t] = 0.0f;
  }
  PvTile<NQ, NV>(s, corr, vrows, u0, u1, dims, out);
}

// Block rows as f32 in scratch, the same values Load() gives: OUT[r][c] for
// r in [R0, R1), c in [0, COLS) (K: rows are dims, columns keys; V: rows
// are keys, columns dims). SCALE(r, c) is Load()'s scale vector, SIDX(r, c)
// Scalar()'s scale index.
template <typename S, typename ScaleFn, typename IndexFn>
HWY_INLINE void Dequantize(const S& src, size_t r0, size_t r1, size_t cols, ScaleFn scale, IndexFn sidx, float* out) {
  const DF d;
  const size_t L = hn::Lanes(d);
  for (size_t r = r0; r < r1; ++r) {
    size_t c = 0;
    for (; c + L <= cols; c += L) hn::StoreU(Load(d, src, r * cols + c, scale(r, c)), d, out + r * cols + c);
    for (; c < cols; ++c) out[r * cols + c] = Scalar(src, r * cols + c, sidx(r, c));
  }
}

// bf16 heads (pair layout, kv_type.h) as f32 rows in scratch: K as
// [dim][token], V rows [R0, R1) as [token][dim] (the pair of the last row
// too). A u32 lane holds a pair: the low half is the first of the two.
HWY_INLINE void UnpairBf16(const uint16_t* src, size_t n_pairs_from, size_t n_pairs_to, size_t cols, float* out) {
  const DF d;
  const hn::Rebind<uint32_t, DF> du;
  const size_t L = hn::Lanes(d);
  const auto high = hn::Set(du, 0xFFFF0000u);
  for (size_t j = n_pairs_from; j < n_pairs_to; ++j) {
    const uint32_t* row = reinterpret_cast<const uint32_t*>(src) + j * cols;
    float* first = out + 2 * j * cols;
    float* second = first + cols;
    size_t c = 0;
    for (; c + L <= cols; c += L) {
      const auto u = hn::LoadU(du, row + c);
      hn::StoreU(hn::BitCast(d, hn::ShiftLeft<16>(u)), d, first + c);
      hn::StoreU(hn::BitCast(d, hn::And(u, high)), d, second + c);
    }
    for (; c < cols; ++c) {
      first[c] = ::tandem::bf16_to_f32(src[(j * cols + c) * 2]);
      second[c] = ::tandem::bf16_to_f32(src[(j * cols + c) * 2 + 1]);
    }
  }
}

template <KvType kType>
void AttendHeads(const AttentionArgs& a, int head_begin, int head_end, bool convert) {
  const DF d;
  const int group = a.n_heads / a.n_kv_heads;
  const size_t hd = static_cast<size_t>(a.head_dim);
  const int64_t bt = a.block_tokens;
  const size_t bts = static_cast<size_t>(bt);
  const size_t head_elems = bts * hd;
  const size_t head_bytes = kv_head_bytes(kType, a.head_dim, a.block_tokens);
  const size_t q8_group = kType == KvType::kQ8_0 ? static_cast<size_t>(kv_q8_group(a.head_dim)) : hd;
  const size_t q8_ng = hd / q8_group;
  const int64_t last_pos = a.pos + a.n_queries - 1;
  auto first_visible = [&](int64_t pos) { return a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1) : 0; };
  float* kbuf = a.scratch;
  float* vbuf = kbuf + head_elems;
  float* vscale = vbuf + head_elems;             // [block_tokens][ng]: q8_0 V scales
  float* scores = vscale + bts * (hd / 32 + 1);  // [kTile][block_tokens]
  float* run_max = scores + kTile * bts;
  float* run_sum = run_max + static_cast<size_t>(a.n_queries) * static_cast<size_t>(group);

  for (int kvh = head_begin / group; kvh * group < head_end; ++kvh) {
    const int hb = std::max(head_begin, kvh * group), he = std::min(head_end, (kvh + 1) * group);
    const size_t n_h = static_cast<size_t>(he - hb);
    auto state = [&](int h, int i) { return static_cast<size_t>(i) * n_h + static_cast<size_t>(h - hb); };
    for (int i = 0; i < a.n_queries; ++i) {
      for (int h = hb; h < he; ++h) {
        std::memset(a.out + i * a.out_stride + static_cast<size_t>(h) * hd, 0, hd * sizeof(float));
        // A sink is a key of logit sinks[h] and no value: the softmax starts from it.
        run_max[state(h, i)] = a.sinks != nullptr ? a.sinks[h] : -std::numeric_limits<float>::infinity();
        run_sum[state(h, i)] = a.sinks != nullptr ? 1.0f : 0.0f;
      }
    }
    for (int64_t b = first_visible(a.pos) / bt; b <= last_pos / bt; ++b) {
      const int64_t block_start = b * bt;
      // Keys of this block any query sees.
      const int64_t lo = std::max(first_visible(a.pos), block_start) - block_start;
      const int64_t hi = std::min(last_pos, block_start + bt - 1) - block_start;
      if (lo > hi) continue;
      const size_t rlo = static_cast<size_t>(lo), rhi = static_cast<size_t>(hi) + 1;  // V rows in use
      // This KV head's K ([head_dim][block_tokens]) and V rows (kv_type.h).
      const uint8_t* kh = a.k_blocks[b] + static_cast<size_t>(kvh) * head_bytes;
      const uint8_t* vh = a.v_blocks[b] + static_cast<size_t>(kvh) * head_bytes;
      auto run = [&](const Item* it, int n, const auto& kp, const auto& vp) {
        switch (n) {
          case 1: RunTile<1>(it, kp, vp, hd, bts, a.scale, scores); break;
          case 2: RunTile<2>(it, kp, vp, hd, bts, a.scale, scores); break;
          case 3: RunTile<3>(it, kp, vp, hd, bts, a.scale, scores); break;
          case 4: RunTile<4>(it, kp, vp, hd, bts, a.scale, scores); break;
          case 5: RunTile<5>(it, kp, vp, hd, bts, a.scale, scores); break;
          default: RunTile<kTile>(it, kp, vp, hd, bts, a.scale, scores); break;
        }
      };
      // Items query-major (both heads of a query side by side: same keys).
      Item tile[kTile];
      int n_tile = 0;
      auto for_tiles = [&](const auto& kp, const auto& vp) {
        for (int i = 0; i < a.n_queries; ++i) {
          const int64_t pos = a.pos + i;
          const int64_t t0 = std::max(first_visible(pos), block_start) - block_start;
          const int64_t t1 = std::min(pos, block_start + bt - 1) - block_start;
          if (t0 > t1) continue;
          for (int h = hb; h < he; ++h) {
            tile[n_tile++] = Item{a.q + i * a.q_stride + static_cast<size_t>(h) * hd,
                                  a.out + i * a.out_stride + static_cast<size_t>(h) * hd,
                                  run_max + state(h, i),
                                  run_sum + state(h, i),
                                  static_cast<size_t>(t0),
                                  static_cast<size_t>(t1)};
            if (n_tile == kTile) {
              run(tile, kTile, kp, vp);
              n_tile = 0;
            }
          }
        }
        if (n_tile > 0) run(tile, n_tile, kp, vp);
        n_tile = 0;
      };
      // Converting once per block for all queries: K whole, V only the rows any query sees.
      auto convert_and_run = [&](const auto& kp, const auto& vp) {
        Dequantize(
            kp, 0, hd, bts, [&](size_t r, size_t c) { return KScale(d, kp, r / q8_group, bts, c); },
            [&](size_t r, size_t c) { return (r / q8_group) * bts + c; }, kbuf);
        Dequantize(
            vp, rlo, rhi, hd, [&](size_t r, size_t c) { return VScale(d, vp, r, c / q8_group); },
            [&](size_t r, size_t c) { return r * q8_ng + c / q8_group; }, vbuf);
        for_tiles(static_cast<const float*>(kbuf), static_cast<const float*>(vbuf));
      };
      if constexpr (kType == KvType::kF32) {
        for_tiles(reinterpret_cast<const float*>(kh), reinterpret_cast<const float*>(vh));
      } else if constexpr (kType == KvType::kBF16) {
        // Always through scratch: a pair row is not a vector of one dim's keys.
        UnpairBf16(reinterpret_cast<const uint16_t*>(kh), 0, hd / 2, bts, kbuf);
        UnpairBf16(reinterpret_cast<const uint16_t*>(vh), rlo / 2, (rhi + 1) / 2, hd, vbuf);
        for_tiles(static_cast<const float*>(kbuf), static_cast<const float*>(vbuf));
      } else if constexpr (kType == KvType::kF16) {
        const auto* kp = reinterpret_cast<const hwy::float16_t*>(kh);
        const auto* vp = reinterpret_cast<const hwy::float16_t*>(vh);
        if (convert) {
          convert_and_run(kp, vp);
        } else {
          for_tiles(kp, vp);
        }
      } else {
        // V scales of the rows in use to f32 (exact), so a V vector's scale is one broadcast load.
        const auto* vd = reinterpret_cast<const hwy::float16_t*>(vh + head_elems);
        const hn::Rebind<hwy::float16_t, DF> dh;
        size_t e = rlo * q8_ng;
        for (; e + hn::Lanes(d) <= rhi * q8_ng; e += hn::Lanes(d))
          hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, vd + e)), d, vscale + e);
        for (; e < rhi * q8_ng; ++e) vscale[e] = ScalarKv(vd + e);
        const Q8K kp{reinterpret_cast<const int8_t*>(kh), reinterpret_cast<const hwy::float16_t*>(kh + head_elems),
                     q8_group};
        const Q8V vp{reinterpret_cast<const int8_t*>(vh), vscale, q8_group, q8_ng};
        if (convert) {
          convert_and_run(kp, vp);
        } else {
          for_tiles(kp, vp);
        }
      }
    }
    for (int i = 0; i < a.n_queries; ++i) {
      for (int h = hb; h < he; ++h) {
        float* out = a.out + i * a.out_stride + static_cast<size_t>(h) * hd;
        const float inv = 1.0f / run_sum[state(h, i)];
        size_t c = 0;
        for (; c + hn::Lanes(d) <= hd; c += hn::Lanes(d))
          hn::StoreU(hn::Mul(hn::LoadU(d, out + c), hn::Set(d, inv)), d, out + c);
        for (; c < hd; ++c) out[c] *= inv;
      }
    }
  }
}

void Attention(const AttentionArgs& a, int head_begin, int head_end) {
  // Few queries per KV head (decode): K and V are read once per block, so
  // converting them in registers beats converting to scratch and reloading.
  const int per_kv_head = a.n_queries * std::min(a.n_heads / a.n_kv_heads, head_end - head_begin);
  switch (a.kv_type) {
    case KvType::kF32: AttendHeads<KvType::kF32>(a, head_begin, head_end, false); break;
    case KvType::kF16: AttendHeads<KvType::kF16>(a, head_begin, head_end, per_kv_head > kTile); break;
    case KvType::kQ8_0: AttendHeads<KvType::kQ8_0>(a, head_begin, head_end, per_kv_head > kTile); break;
    case KvType::kBF16: AttendHeads<KvType::kBF16>(a, head_begin, head_end, true); break;
  }
}

// Building blocks for the tests, the same inline code the loop above runs.
void ScoresBlockF32(const float* q, const float* k_t, size_t dims, size_t t, float* out) {
  ScoresTile<1, 4>(&q, k_t, dims, t, &out);
}
void ScoresBlock2F32(const float* q0, const float* q1, const float* k_t, size_t dims, size_t t, float* out0,
                     float* out1) {
  const float* q[2] = {q0, q1};
  float* out[2] = {out0, out1};
  ScoresTile<2, 4>(q, k_t, dims, t, out);
}
void PvBlockF32(const float* p, const float* v, size_t t0, size_t t1, size_t dims, float* out) {
  const float one = 1.0f;
  PvTile<1, 4>(&p, &one, v, t0, t1, dims, &out);
}
void PvBlock2F32(const float* p0, const float* p1, const float* v, size_t t0, size_t t1, size_t dims, float* out0,
                 float* out1) {
  const float* p[2] = {p0, p1};
  float* out[2] = {out0, out1};
  const float one[2] = {1.0f, 1.0f};
  PvTile<2, 4>(p, one, v, t0, t1, dims, out);
}
float ScaleMax(float* s, size_t t0, size_t t1, float scale) { return ScaleMaxInl(s, t0, t1, scale); }
float ExpSum(float* s, size_t t0, size_t t1, float m) { return ExpSumInl(s, t0, t1, m); }

}  // namespace HWY_NAMESPACE
}  // namespace tandem::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tandem::kernels {

HWY_EXPORT(Attention);
HWY_EXPORT(ScoresBlockF32);
HWY_EXPORT(ScoresBlock2F32);
HWY_EXPORT(PvBlockF32);
HWY_EXPORT(PvBlock2F32);
HWY_EXPORT(ScaleMax);
HWY_EXPORT(ExpSum);

size_t attention_scratch_floats(int block_tokens, int head_dim, int n_queries, int group) {
  const size_t bt = static_cast<size_t>(block_tokens), hd = static_cast<size_t>(head_dim);
  // K and V of a block, q8_0 V scales (at most one per 32 dims, or one per row), kTile score rows, max and sum.
  const size_t f32_path = 2 * bt * hd + bt * (hd / 32 + 1) + kTile * bt +
                          2 * static_cast<size_t>(n_queries) * static_cast<size_t>(std::max(group, 1));
  return std::max(f32_path, detail::attention_amx_scratch_floats(head_dim, n_queries, group));
}

void attention(const AttentionArgs& a, int head_begin, int head_end) {
  if (detail::attention_amx_fits(a) && detail::attention_amx_on(a.kv_type)) {
    detail::attention_amx(a, head_begin, head_end);
    return;
  }
  HWY_DYNAMIC_DISPATCH(Attention)(a, head_begin, head_end);
}

const char* attention_path_name() {
  const bool f16 = detail::attention_amx_on(KvType::kF16), bf16 = detail::attention_amx_on(KvType::kBF16);
  if (f16) return bf16 ? "f16 attention: amx-bf16; bf16: amx-bf16" : "f16 attention: amx-bf16; bf16: f32";
  return bf16 ? "f16 attention: f32; bf16: amx-bf16" : "f16 attention: f32; bf16: f32";
}

bool attention_runs_on_tiles(KvType type, int head_dim, int block_tokens) {
  AttentionArgs a;
  a.kv_type = type;
  a.head_dim = head_dim;
  a.block_tokens = block_tokens;
  return detail::attention_amx_fits(a) && detail::attention_amx_on(type);
}

KvType auto_kv_type(int head_dim, int block_tokens) {
  return attention_runs_on_tiles(KvType::kBF16, head_dim, block_tokens) ? KvType::kBF16 : KvType::kF16;
}

void scores_block_f32(const float* q, const float* k_t, size_t d, size_t t, float* out) {
  HWY_DYNAMIC_DISPATCH(ScoresBlockF32)(q, k_t, d, t, out);
}
void pv_block_f32(const float* p, const float* v, size_t t0, size_t t1, size_t d, float* out) {
  HWY_DYNAMIC_DISPATCH(PvBlockF32)(p, v, t0, t1, d, out);
}
void scores_block2_f32(const float* q0, const float* q1, const float* k_t, size_t d, size_t t, float* out0,
                       float* out1) {
  HWY_DYNAMIC_DISPATCH(ScoresBlock2F32)(q0, q1, k_t, d, t, out0, out1);
}
void pv_block2_f32(const float* p0, const float* p1, const float* v, size_t t0, size_t t1, size_t d, float* out0,
                   float* out1) {
  HWY_DYNAMIC_DISPATCH(PvBlock2F32)(p0, p1, v, t0, t1, d, out0, out1);
}
float scale_max_f32(float* s, size_t t0, size_t t1, float scale) {
  return HWY_DYNAMIC_DISPATCH(ScaleMax)(s, t0, t1, scale);
}
float exp_sum_f32(float* s, size_t t0, size_t t1, float m) { return HWY_DYNAMIC_DISPATCH(ExpSum)(s, t0, t1, m); }

void attention_reference(const AttentionArgs& a) {
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t first = a.window > 0 ? std::max<int64_t>(0, a.pos - a.window + 1) : 0;
  const size_t head_bytes = kv_head_bytes(a.kv_type, a.head_dim, a.block_tokens);
  auto load = [&](const uint8_t* const* blocks, int kvh, int64_t pos, int i) -> double {
    const int64_t b = pos / a.block_tokens, t = pos % a.block_tokens;
    return kv_load(a.kv_type, blocks[b] + static_cast<size_t>(kvh) * head_bytes, blocks == a.k_blocks, a.head_dim,
                   a.block_tokens, static_cast<int>(t), i);
  };
  for (int h = 0; h < a.n_heads; ++h) {
    const int kvh = h / group;
    std::vector<double> s;
    double mx = a.sinks != nullptr ? a.sinks[h] : -INFINITY;
    for (int64_t p = first; p <= a.pos; ++p) {
      double d = 0;
      for (int i = 0; i < a.head_dim; ++i) d += a.q[h * a.head_dim + i] * load(a.k_blocks, kvh, p, i);
      s.push_back(d * a.scale);
      mx = std::max(mx, s.back());
    }
    double sum = a.sinks != nullptr ? std::exp(a.sinks[h] - mx) : 0.0;
    for (double& v : s) sum += (v = std::exp(v - mx));
    for (int i = 0; i < a.head_dim; ++i) {
      double acc = 0;
      for (int64_t p = first; p <= a.pos; ++p) acc += s[static_cast<size_t>(p - first)] * load(a.v_blocks, kvh, p, i);
      a.out[h * a.head_dim + i] = static_cast<float>(acc / sum);
    }
  }
}

}  // namespace tandem::kernels
#endif

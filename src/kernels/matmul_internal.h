// Internal to matmul*.cpp: how MatmulScratch::bytes is carved up and the
// entry points of the per-type SIMD kernels. Not part of the public API.
//
//   scratch.bytes (64-byte aligned base):
//   | act row 0 | ... | act row M-1 | work thread 0 | ... | work thread T-1 | AMX panels |
//     act_row_bytes(K) each          work_bytes(K) each                   amx_panel_bytes(M, K)
//
// An act row holds one activation row quantized to int8 (quantize_act.h);
// a work area holds one thread's prepared weight tile (8 weight rows
// unpacked to the layout the kernel reads; 16 rows for AMX). The AMX
// panels (only when amx_available()) hold the activation rows repacked in
// groups of 16 for the tile unit (matmul_amx.cpp).
#pragma once

#include "kernels/matmul.h"

#include <cstddef>
#include <cstdint>

namespace tandem::kernels::detail {

// Work area (prepared tile) sizes per kernel family (see the .cpp files).
inline size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
// Q8_0/Q4_0 (matmul_q8.cpp): a tile of 8 rows, 544 bytes per block of 32,
// plus one zero row (<= 34/32 K bytes) for ragged tiles.
constexpr size_t kPrepBlockBytesQ8 = 544;
inline size_t prep_tile_bytes_q8(int64_t k) {
  return static_cast<size_t>(k) / 32 * kPrepBlockBytesQ8 + round_up(static_cast<size_t>(k) / 32 * 34, 64);
}
// Q4_K/Q5_K/Q6_K (matmul_kq.cpp): a tile of 8 rows, 2880 bytes per super-block
// of 256, plus one zero row (<= 210/256 K bytes) for ragged tiles.
constexpr size_t kPrepSuperBlockBytes = 2880;
inline size_t prep_tile_bytes_kq(int64_t k) {
  return (static_cast<size_t>(k) + 255) / 256 * (kPrepSuperBlockBytes + 210) + 64;
}

// AMX, per 16 rows (weights or activations): Q8_0/Q4_0 (matmul_amx.cpp)
// blocks of 32 columns, 512 int8 + 16 f32 scales; Q4_K/Q6_K
// (matmul_amx_kq.cpp) super-blocks of 256, a panel of 4 KB int8 + scales +
// block sums, a weight tile of two 4 KB digit planes + scales + mins. A
// work area holds two weight tiles and 4 KB of tile-store buffers.
constexpr size_t kAmxBlockBytes = 576;
constexpr size_t kAmxKqPanelSbBytes = 4416;
constexpr size_t kAmxKqWeightSbBytes = 8576;
inline size_t prep_tile_bytes_amx(int64_t k) {
  const size_t q8 = static_cast<size_t>(k) / 32 * kAmxBlockBytes;
  const size_t kq = (static_cast<size_t>(k) + 255) / 256 * kAmxKqWeightSbBytes;
  return 2 * (q8 > kq ? q8 : kq) + 4096;
}
size_t amx_panel_bytes(int64_t m, int64_t k);  // 0 without AMX; covers both panel kinds
static_assert(kAmxKqPanelSbBytes <= 256 / 32 * kAmxBlockBytes);

// Bytes of one quantized activation row, 64-aligned: blocks of 32 take
// K + K/8, blocks of 256 K + K/64 + K/8 + K/16 (quantize_act.h).
inline size_t act_row_bytes(int64_t k) { return round_up(static_cast<size_t>(k) * 5 / 4 + 64, 64); }
inline size_t work_bytes(int64_t k) {
  const size_t q8 = prep_tile_bytes_q8(k), kq = prep_tile_bytes_kq(k), amx = prep_tile_bytes_amx(k);
  const size_t most = q8 > kq ? q8 : kq;
  return round_up(most > amx ? most : amx, 64);
}

struct ScratchView {
  uint8_t* act = nullptr;  // M rows of act_stride bytes
  size_t act_stride = 0;
  uint8_t* work = nullptr;  // n_threads areas of work_stride bytes
  size_t work_stride = 0;
  uint8_t* panels = nullptr;  // AMX activation panels (null without AMX)
};

// Carves SCRATCH for M rows of K columns and N_THREADS threads, growing it
// only when the call exceeds what reserve() provided.
ScratchView scratch_view(MatmulScratch& scratch, int64_t m, int64_t k, int n_threads);

// The SIMD kernels. Each returns false when the CPU target has no kernel
// for the type (pre-AVX2 x86, other architectures): the caller then takes
// the generic path.
bool matmul_q8(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
               ThreadPool& pool, const ScratchView& s);  // Q8_0, Q4_0
bool matmul_kq(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
               ThreadPool& pool, const ScratchView& s);  // Q4_K, Q5_K, Q6_K
bool matmul_f16(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
                ThreadPool& pool, const ScratchView& s);  // F16, BF16
const char* matmul_q8_target_name();

// AMX path of matmul_q8 (matmul_amx.cpp), called by its AVX3_DL target
// after the M activation rows are quantized into S.act (u8 = q + 128, the
// VNNI layout). Precondition: amx_available() and S.panels sized for M.
// Returns false when the build has no AMX kernel.
bool matmul_q8_amx(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s);
// AMX path of matmul_kq (matmul_amx_kq.cpp), called after the M rows are
// quantized into S.act (Q8_K-style rows). Same preconditions.
bool matmul_kq_amx(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s);

// Decode path of matmul_kq for Q4_K, Q5_K and Q6_K (matmul_kq_vnni.cpp): M = 1..
// kKqVnniMaxRows rows already quantized into S.act, elements in lanes,
// bit-identical to the rows-in-lanes kernel. Precondition: the CPU has
// AVX-512 VNNI and VBMI (the AVX3_DL target of matmul_kq.cpp calls it).
// Returns false (nothing done) for other types or M, when the build has no
// such kernel, or when disabled.
constexpr int64_t kKqVnniMaxRows = 4;
bool matmul_kq_vnni(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s);
// Process-wide switch (on unless TANDEM_NO_KQ_VNNI is set to anything but
// "0") and call counter, for tests and A/B benchmarks: off, matmul_kq takes
// its rows-in-lanes kernel. Not for use while matmuls run on other threads.
bool kq_vnni_enabled();
void set_kq_vnni_enabled(bool on);
uint64_t kq_vnni_call_count();

// Number of matmuls that took an AMX path in this process (tests check
// that the path they compare was really taken); the kernels count.
uint64_t amx_call_count();
void count_amx_call();

// The AMX kernels need x86-64 and a compiler with the tile intrinsics.
#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 11 || defined(__clang__))
#define TANDEM_HAVE_AMX_KERNEL 1
#else
#define TANDEM_HAVE_AMX_KERNEL 0
#endif
// The VNNI decode kernel of the K-quants: x86-64, GCC or clang (target pragmas).
#if defined(__x86_64__) && defined(__GNUC__)
#define TANDEM_HAVE_KQ_VNNI_KERNEL 1
#else
#define TANDEM_HAVE_KQ_VNNI_KERNEL 0
#endif

}  // namespace tandem::kernels::detail

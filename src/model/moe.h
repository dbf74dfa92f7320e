// The mixture-of-experts FFN of one layer, for every row of a step at once.
//
// Each row picks its experts (router softmax, top k, weights renormalized to
// sum 1). Rows are then grouped by expert, so an expert's weights are
// streamed once per step for all the rows of all sequences routed to it:
// the gain of batching agents is largest here. A row's output is the sum of
// its experts' outputs in expert order, so it does not depend on which
// other rows share the step (batched == alone, bit for bit).
#pragma once

#include "kernels/matmul.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

#include <cstdint>
#include <vector>

namespace tandem::model {

// Top-K routing of ROWS rows of router LOGITS ([rows][n_experts]): for each
// row its K most probable experts (softmax over all; ties: lower index
// first) in EXPERT[row * K + k], most probable first, and their
// probabilities renormalized over the K in WEIGHT.
void route_top_k(const float* logits, int64_t rows, int n_experts, int k, int32_t* expert, float* weight);

// How moe_ffn spreads a layer over the threads. kRows: experts one after
// another, each expert's matrices split by weight rows over all threads (a
// few regions per expert). kExperts: each thread takes whole experts
// (claimed one at a time, biggest first) and runs their three matrices
// alone: three regions less per expert, one weight stream per thread; the
// choice when a step touches at least two experts per thread (decode: 8
// experts on 2 threads). Both give the same bits.
enum class MoeSplit { kAuto, kRows, kExperts };

// One thread's buffers in the kExperts split.
struct MoeThreadScratch {
  kernels::MatmulScratch mm;
  std::vector<float> x, gate, up;
};

// Buffers of moe_ffn, sized once for up to MAX_ROWS rows.
struct MoeScratch {
  MoeSplit split = MoeSplit::kAuto;          // tests and A/B benchmarks force one
  std::vector<float> logits;                 // [rows][n_experts]
  std::vector<int32_t> expert;               // [rows][k]
  std::vector<float> weight;                 // [rows][k]
  std::vector<int32_t> counts;               // [n_experts + 1]: rows per expert, then offsets
  std::vector<int32_t> routed;               // [rows * k]: (row * k + slot), grouped by expert
  std::vector<int32_t> position;             // [rows * k]: where each pair landed in ROUTED
  std::vector<int32_t> next;                 // [n_experts]: the next free place of each expert in ROUTED
  std::vector<float> x, gate, up;            // kRows: one expert's rows: input, gate, up
  std::vector<float> y;                      // [rows * k][dim]: every pair's expert output, in ROUTED order
  std::vector<MoeThreadScratch> per_thread;  // kExperts
  kernels::ThreadPool serial{1};             // kExperts: runs a thread's matmuls on that thread
  std::vector<int> order;                    // kExperts: the experts to run, most rows first
  MoeSplit last_split = MoeSplit::kAuto;     // what the last call did (tests)
  // Rows each expert got in the last layer run (for the benchmark report).
  std::vector<int64_t> expert_rows;
  // Since load: (row, expert) pairs computed, and expert reads (an expert's
  // matrices run once for all its rows of a step). Their ratio is how many
  // rows share each read: the gain of batching with experts.
  int64_t routed_total = 0, expert_reads_total = 0;

  void reserve(const ModelConfig& c, int max_rows, int n_threads);
};

// OUT[r] = sum over row r's experts e (in expert order) of w(r, e) * expert_e(X[r]),
// for ROWS rows of X ([rows][dim], the FFN input after its norm). OUT may be X.
void moe_ffn(const LayerWeights& L, const ModelConfig& c, float* x, int64_t rows, float* out, kernels::ThreadPool& pool,
             kernels::MatmulScratch& mm, MoeScratch& s);

}  // namespace tandem::model

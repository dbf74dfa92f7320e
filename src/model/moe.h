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

// Buffers of moe_ffn, sized once for up to MAX_ROWS rows.
struct MoeScratch {
  std::vector<float> logits;        // [rows][n_experts]
  std::vector<int32_t> expert;      // [rows][k]
  std::vector<float> weight;        // [rows][k]
  std::vector<int32_t> counts;      // [n_experts + 1]: rows per expert, then offsets
  std::vector<int32_t> routed;      // [rows * k]: (row * k + slot), grouped by expert
  std::vector<float> x, gate, up, y;  // one expert's rows: input, gate, up, output
  std::vector<float> acc;           // [rows][dim]: the sum so far
  // Rows each expert got in the last layer run (for the benchmark report).
  std::vector<int64_t> expert_rows;
  // Since load: (row, expert) pairs computed, and expert reads (an expert's
  // matrices run once for all its rows of a step). Their ratio is how many
  // rows share each read: the gain of batching with experts.
  int64_t routed_total = 0, expert_reads_total = 0;

  void reserve(const ModelConfig& c, int max_rows);
};

// OUT[r] = sum over row r's experts e (in expert order) of w(r, e) * expert_e(X[r]),
// for ROWS rows of X ([rows][dim], the FFN input after its norm). OUT may be X.
void moe_ffn(const LayerWeights& L, const ModelConfig& c, float* x, int64_t rows, float* out,
             kernels::ThreadPool& pool, kernels::MatmulScratch& mm, MoeScratch& s);

}  // namespace tandem::model

// A loaded model and its batched forward pass over the paged KV cache.
//
// One forward() call runs a batch of sequences. Each sequence brings new
// tokens (one for decode, a chunk for prefill), the position of the first
// of them, and its block table: the KV blocks holding positions
// [0, start_pos + n_tokens), in order. forward() writes the new tokens' K/V
// into those blocks and returns logits for the positions that asked.
//
// A sequence's logits never depend on the rest of the batch or on how its
// prompt was chunked: every kernel reduces each row in a fixed order.
#pragma once

#include "core/status.h"
#include "gguf/reader.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"
#include "kv/kv_pool.h"
#include "model/config.h"
#include "model/weights.h"

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tandem::model {

struct SequenceBatch {
  std::span<const int32_t> tokens;      // the new tokens
  int64_t start_pos = 0;                // position of tokens[0]
  std::span<const kv::BlockId> blocks;  // blocks for positions [0, start_pos + tokens.size())
  enum class Logits { kNone, kLast, kAll } logits = Logits::kLast;
};

struct ForwardLimits {
  int max_tokens = 512;    // tokens in one forward() call (all sequences)
  int max_sequences = 16;  // sequences in one call
};

class Model {
 public:
  struct Options {
    int64_t ctx = 0;    // 0: the model's context length
    int n_threads = 0;  // 0: one per core
    ForwardLimits limits;
  };

  static Result<std::unique_ptr<Model>> load(const std::string& path, const Options& options);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const gguf::GgufFile& file() const { return file_; }
  kv::KvShape kv_shape(kernels::KvType type, int block_tokens = 32) const;
  kernels::ThreadPool& pool() { return *pool_; }
  // Brings the weights into memory before the first forward pass (see
  // WeightsResidence): copied onto 2 MiB pages (MappedFile::make_resident)
  // unless TANDEM_MMAP_WEIGHTS=1 or that fails; then every page of the file
  // mapping is touched, as llama.cpp's MAP_POPULATE does (a mixture-of-
  // experts model touches its experts a few at a time, and each first touch
  // of a page was a fault on the decode path). Weights larger than
  // AVAILABLE_BYTES stay paged on demand. PROGRESS(done, total) as it reads.
  // On 2 MiB pages, Q8_0/Q4_0 matrices are then repacked for the decode kernels
  // where that pays (kernels/q8_pack.h; TANDEM_NO_PACK=1 keeps the layout).
  struct WeightsResidence {
    enum class Kind { kHugePages, kFilePages, kOnDemand } kind = Kind::kOnDemand;
    std::string note;  // why not huge pages, when not
    int packed_matrices = 0;
  };
  WeightsResidence bring_weights_in(uint64_t available_bytes,
                                    const std::function<void(uint64_t done, uint64_t total)>& progress);
  // Bytes of weights a decode step streams (all matrices; the embedding only when tied;
  // with experts: the router and the experts one token uses).
  uint64_t weight_bytes() const;
  // Identifies the model's weights and everything else that shapes its K/V
  // (metadata, tensor layout, the SIMD targets the kernels run with): KV
  // computed by another model, or on a CPU whose kernels round
  // differently, must never be served as this one's. Hashes the header and
  // samples of every tensor, so it is cheap even for large files.
  uint64_t fingerprint() const;

  // Runs the batch. Logit rows are written in order: for each sequence that
  // asked, its last token's row (kLast) or one row per token (kAll); each row
  // holds config().vocab floats. Returns the number of rows, or an error for
  // a malformed batch (too many tokens, positions beyond the blocks...).
  Result<int> forward(std::span<const SequenceBatch> batch, kv::KvPool& kv, std::vector<float>& logits);

  // Mixture of experts, since load: (row, expert) pairs computed and expert
  // reads (zeros for a dense model). See MoeScratch.
  struct MoeCounters {
    int64_t routed = 0, expert_reads = 0;
  };
  MoeCounters moe_counters() const;

 private:
  Model();
  // Activations and scratch, sized once for ForwardLimits (forward.cpp).
  struct State;
  void init_state();
  // The steps of forward() (forward.cpp).
  struct Rows {
    int64_t rows = 0, logit_rows = 0;
  };
  Result<Rows> flatten_rows(std::span<const SequenceBatch> batch, const kv::KvPool& kv);
  void embed_rows(std::span<const SequenceBatch> batch, int64_t n_rows);
  void attention_block(int l, std::span<const SequenceBatch> batch, kv::KvPool& kv, int64_t n_rows);
  void ffn_block(int l, int64_t n_rows);
  int output_logits(std::span<const SequenceBatch> batch, int64_t n_logit_rows, std::vector<float>& logits);
  // Repacks the Q8_0/Q4_0 matrices in place (kernels/q8_pack.h); how many.
  Result<int> pack_weights();

  gguf::GgufFile file_;
  ModelConfig config_;
  Weights weights_;
  // Hashed from the file's bytes, so computed before pack_weights() changes them.
  mutable std::optional<uint64_t> fingerprint_;
  ForwardLimits limits_;
  std::unique_ptr<kernels::ThreadPool> pool_;
  std::unique_ptr<State> state_;
};

}  // namespace tandem::model

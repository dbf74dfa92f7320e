// KV cache storage: one pool of fixed-size blocks allocated once from a byte
// budget. A block holds K and V of `block_tokens` consecutive positions for
// every layer, so it is the unit of sharing, eviction and the disk tier
// (kv/disk_tier.h stores whole blocks).
//
// Layout of one block (T = block_tokens, H = kv heads):
//
//   | layer 0: K of heads 0..H-1 | V of heads 0..H-1 | layer 1: K V | ... |
//
// and one head's K or V in the pool's KvType as kernels/kv_type.h defines
// it (the one place for the per-type layouts: f16/f32, q8_0, bf16).
//
// The pool owns the bytes and, in blocks(), who holds each block (ref
// counts, free list, eviction order: kv/block_pool.h). What a block
// contains is the prefix index's (kv/prefix_index.h); model tests and
// benchmarks allocate and release through blocks() without an index.
#pragma once

#include "core/status.h"
#include "core/huge_buffer.h"
#include "kv/block_pool.h"
#include "kernels/kv_type.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tandem::kv {

struct KvShape {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int block_tokens = 32;
  kernels::KvType type = kernels::KvType::kF16;

  // K (or V) of one KV head, one layer, one block.
  size_t head_bytes() const { return kernels::kv_head_bytes(type, head_dim, block_tokens); }
  // K (or V) of one layer in one block.
  size_t half_layer_bytes() const { return static_cast<size_t>(n_kv_heads) * head_bytes(); }
  size_t block_bytes() const { return 2 * half_layer_bytes() * static_cast<size_t>(n_layers); }
  // Why TYPE cannot store this shape ("" when it can).
  std::string check() const;
};

class KvPool {
 public:
  // A pool of as many blocks as BUDGET_BYTES holds (at least one). Refuses
  // a shape its type cannot store (q8_0 with head_dim 80).
  static Result<std::unique_ptr<KvPool>> create(const KvShape& shape, size_t budget_bytes);

  const KvShape& shape() const { return shape_; }
  int32_t n_blocks() const { return n_blocks_; }
  BlockPool& blocks() { return *blocks_; }
  const BlockPool& blocks() const { return *blocks_; }

  // The whole block (block_bytes(), all layers): what the disk tier stores.
  uint8_t* block_data(BlockId id) { return base(id, 0); }
  uint8_t* k(BlockId id, int layer) { return base(id, layer); }
  uint8_t* v(BlockId id, int layer) { return base(id, layer) + shape_.half_layer_bytes(); }

  // Writes the K and V rows of one token at SLOT (within its block) for
  // LAYER, converted to the pool's type (q8_0: kernels/kv_quant.h). K_ROW
  // and V_ROW hold n_kv_heads * head_dim floats. A token's bytes depend
  // only on its rows. Threads may write different tokens at once.
  void write(BlockId id, int layer, int slot, const float* k_row, const float* v_row);

 private:
  uint8_t* base(BlockId id, int layer) {
    return data_.data() + static_cast<size_t>(id) * shape_.block_bytes() +
           static_cast<size_t>(layer) * 2 * shape_.half_layer_bytes();
  }

  KvShape shape_;
  int32_t n_blocks_ = 0;
  HugeBuffer data_;  // 2 MiB pages where possible: see core/huge_buffer.h
  std::unique_ptr<BlockPool> blocks_;
};

}  // namespace tandem::kv

#include "kv/kv_pool.h"

#include "core/fp16.h"

#include <cstring>

namespace tandem::kv {

Result<std::unique_ptr<KvPool>> KvPool::create(const KvShape& shape, size_t budget_bytes) {
  if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || shape.block_tokens <= 0) {
    return Status::error("KV shape must be positive");
  }
  const size_t block = shape.block_bytes();
  const size_t n = budget_bytes / block;
  if (n == 0) {
    return Status::errorf("KV budget of {} bytes is smaller than one block ({} bytes)", budget_bytes, block);
  }
  if (n > static_cast<size_t>(INT32_MAX)) return Status::error("KV budget too large");
  auto pool = std::unique_ptr<KvPool>(new KvPool());
  pool->shape_ = shape;
  pool->n_blocks_ = static_cast<int32_t>(n);
  pool->data_.reset(new (std::nothrow) uint8_t[n * block]);
  if (!pool->data_) return Status::errorf("cannot allocate {} MiB for the KV cache", n * block >> 20);
  pool->free_.reserve(n);
  for (size_t i = n; i-- > 0;) pool->free_.push_back(static_cast<BlockId>(i));  // hand out 0, 1, 2, ... first
  return pool;
}

std::optional<BlockId> KvPool::allocate() {
  if (free_.empty()) return std::nullopt;
  const BlockId id = free_.back();
  free_.pop_back();
  return id;
}

void KvPool::release(BlockId id) { free_.push_back(id); }

void KvPool::write(BlockId id, int layer, int slot, const float* k_row, const float* v_row) {
  const KvShape& s = shape_;
  uint8_t* kb = k(id, layer);
  uint8_t* vb = v(id, layer);
  for (int h = 0; h < s.n_kv_heads; ++h) {
    const size_t off = (static_cast<size_t>(h) * s.block_tokens + static_cast<size_t>(slot)) * s.head_dim;
    const float* ks = k_row + static_cast<size_t>(h) * s.head_dim;
    const float* vs = v_row + static_cast<size_t>(h) * s.head_dim;
    if (s.type == kernels::KvType::kF32) {
      std::memcpy(kb + off * 4, ks, static_cast<size_t>(s.head_dim) * 4);
      std::memcpy(vb + off * 4, vs, static_cast<size_t>(s.head_dim) * 4);
    } else {
      auto* kd = reinterpret_cast<uint16_t*>(kb) + off;
      auto* vd = reinterpret_cast<uint16_t*>(vb) + off;
      for (int i = 0; i < s.head_dim; ++i) {
        kd[i] = f32_to_f16(ks[i]);
        vd[i] = f32_to_f16(vs[i]);
      }
    }
  }
}

}  // namespace tandem::kv

#include "kv/kv_pool.h"

#include "core/check.h"

#include "core/fp16.h"
#include "kernels/dot.h"
#include "kernels/kv_quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace tandem::kv {

std::string KvShape::check() const {
  if (n_layers <= 0 || n_kv_heads <= 0 || head_dim <= 0 || block_tokens <= 0) return "KV shape must be positive";
  if (type == kernels::KvType::kQ8_0 && kernels::kv_q8_group(head_dim) == 0) {
    return fmt::format(
        "a q8_0 KV cache needs a head size that is a multiple of 32 (or 8 or 16); this model's is {}: use "
        "--kv-type f16",
        head_dim);
  }
  if (type == kernels::KvType::kBF16 && (head_dim % 2 != 0 || block_tokens % 2 != 0)) {
    return fmt::format(
        "a bf16 KV cache needs an even head size and block size (this model's head is {}, blocks {}): "
        "use --kv-type f16",
        head_dim, block_tokens);
  }
  return "";
}

Result<std::unique_ptr<KvPool>> KvPool::create(const KvShape& shape, size_t budget_bytes) {
  if (std::string why = shape.check(); !why.empty()) return Status::error(why);
  const size_t block = shape.block_bytes();
  const size_t n = budget_bytes / block;
  if (n == 0) {
    return Status::errorf("KV budget of {} bytes is smaller than one block ({} bytes)", budget_bytes, block);
  }
  if (n > static_cast<size_t>(INT32_MAX)) return Status::error("KV budget too large");
  auto pool = std::unique_ptr<KvPool>(new KvPool());
  pool->shape_ = shape;
  pool->n_blocks_ = static_cast<int32_t>(n);
  pool->data_ = HugeBuffer::allocate(n * block);
  if (!pool->data_) return Status::errorf("cannot allocate {} MiB for the KV cache", n * block >> 20);
  pool->blocks_ = std::make_unique<BlockPool>(pool->n_blocks_);
  return pool;
}

void KvPool::write(BlockId id, int layer, int slot, const float* k_row, const float* v_row) {
  const KvShape& s = shape_;
  TANDEM_DCHECK(id >= 0 && id < n_blocks_ && layer >= 0 && layer < s.n_layers && slot >= 0 && slot < s.block_tokens,
                "KV write out of range: block {} of {}, layer {} of {}, slot {} of {}", id, n_blocks_, layer,
                s.n_layers, slot, s.block_tokens);
  uint8_t* kb = k(id, layer);
  uint8_t* vb = v(id, layer);
  // K transposed ([head][dim][token]), V as rows ([head][token][dim]): see kernels/attention.h.
  const size_t T = static_cast<size_t>(s.block_tokens), D = static_cast<size_t>(s.head_dim);
  for (size_t h = 0; h < static_cast<size_t>(s.n_kv_heads); ++h) {
    const float* ks = k_row + h * D;
    const float* vs = v_row + h * D;
    const size_t k_off = h * D * T + static_cast<size_t>(slot);  // + d * T
    const size_t v_off = (h * T + static_cast<size_t>(slot)) * D;
    if (s.type == kernels::KvType::kQ8_0) {
      // Per head: | q[D][T] | d[D/G][T] | for K, | q[T][D] | d[T][D/G] | for V.
      const size_t hb = s.head_bytes(), g = static_cast<size_t>(kernels::kv_q8_group(s.head_dim)), ng = D / g;
      uint8_t* kh = kb + h * hb;
      uint8_t* vh = vb + h * hb;
      kernels::quantize_kv_q8(ks, s.head_dim, static_cast<int>(g), reinterpret_cast<int8_t*>(kh) + slot,
                              static_cast<ptrdiff_t>(T), reinterpret_cast<uint16_t*>(kh + D * T) + slot,
                              static_cast<ptrdiff_t>(T));
      kernels::quantize_kv_q8(vs, s.head_dim, static_cast<int>(g),
                              reinterpret_cast<int8_t*>(vh) + static_cast<size_t>(slot) * D, 1,
                              reinterpret_cast<uint16_t*>(vh + D * T) + static_cast<size_t>(slot) * ng, 1);
    } else if (s.type == kernels::KvType::kBF16) {
      auto* kd = reinterpret_cast<uint16_t*>(kb) + h * D * T;
      auto* vd = reinterpret_cast<uint16_t*>(vb) + h * D * T;
      const size_t t = static_cast<size_t>(slot);
      for (size_t d = 0; d < D; ++d) {
        kd[kernels::kv_bf16_index(true, D, T, t, d)] = f32_to_bf16(ks[d]);
        vd[kernels::kv_bf16_index(false, D, T, t, d)] = f32_to_bf16(vs[d]);
      }
    } else if (s.type == kernels::KvType::kF32) {
      auto* kd = reinterpret_cast<float*>(kb);
      for (size_t d = 0; d < D; ++d) kd[k_off + d * T] = ks[d];
      std::memcpy(vb + v_off * 4, vs, D * 4);
    } else {
      // f16 through the vector converter (the scalar one was 3.5% of a
      // 3,500-token prefill); K's halves then go to their column.
      kernels::f32_to_f16_row(vs, reinterpret_cast<uint16_t*>(vb) + v_off, D);
      auto* kd = reinterpret_cast<uint16_t*>(kb);
      uint16_t kh[256];
      for (size_t d0 = 0; d0 < D; d0 += 256) {
        const size_t n = std::min<size_t>(256, D - d0);
        kernels::f32_to_f16_row(ks + d0, kh, n);
        for (size_t d = 0; d < n; ++d) kd[k_off + (d0 + d) * T] = kh[d];
      }
    }
  }
}

}  // namespace tandem::kv

// Running sequences through Model::forward in tests: block tables, greedy
// decoding, prompts fed in chunks.
#pragma once

#include "kv/kv_pool.h"
#include "model/model.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace tandem::model::test {

inline std::unique_ptr<Model> load(const std::string& path, int n_threads = 2, int max_tokens = 256,
                                   int max_sequences = 16) {
  Model::Options o;
  o.n_threads = n_threads;
  o.limits.max_tokens = max_tokens;
  o.limits.max_sequences = max_sequences;
  o.ctx = 2048;
  auto m = Model::load(path, o);
  EXPECT_TRUE(m.ok()) << m.message();
  return m.ok() ? std::move(*m) : nullptr;
}

inline std::unique_ptr<kv::KvPool> make_pool(const Model& m, kernels::KvType type, int n_blocks = 512) {
  const auto shape = m.kv_shape(type);
  auto pool = kv::KvPool::create(shape, shape.block_bytes() * static_cast<size_t>(n_blocks));
  EXPECT_TRUE(pool.ok()) << pool.message();
  return std::move(*pool);
}

// A sequence being computed: its tokens so far and its block table.
struct Seq {
  std::vector<int32_t> tokens;
  std::vector<kv::BlockId> blocks;
  int64_t computed = 0;  // tokens whose K/V are in the cache

  void ensure_blocks(kv::KvPool& pool, int64_t positions) {
    while (static_cast<int64_t>(blocks.size()) * pool.shape().block_tokens < positions) {
      auto b = pool.blocks().allocate();
      ASSERT_TRUE(b.has_value()) << "KV pool exhausted";
      blocks.push_back(*b);
    }
  }
  // The next chunk of at most N uncomputed tokens, as a batch entry.
  SequenceBatch next(kv::KvPool& pool, int64_t n, SequenceBatch::Logits logits = SequenceBatch::Logits::kLast) {
    n = std::min<int64_t>(n, static_cast<int64_t>(tokens.size()) - computed);
    ensure_blocks(pool, computed + n);
    SequenceBatch sb;
    sb.tokens = std::span<const int32_t>(tokens).subspan(static_cast<size_t>(computed), static_cast<size_t>(n));
    sb.start_pos = computed;
    sb.blocks = blocks;
    sb.logits = logits;
    computed += n;
    return sb;
  }
  void release(kv::KvPool& pool) {
    for (auto b : blocks) pool.blocks().release(b);
    blocks.clear();
  }
};

inline int argmax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

// Feeds PROMPT in chunks of CHUNK tokens, then generates N_NEW tokens
// greedily. FIRST_LOGITS (optional) receives the logits that chose the
// first generated token.
inline std::vector<int32_t> greedy(Model& m, kv::KvPool& pool, const std::vector<int32_t>& prompt, int n_new,
                                   int64_t chunk = 1 << 30, std::vector<float>* first_logits = nullptr) {
  Seq s;
  s.tokens = prompt;
  std::vector<float> logits;
  std::vector<int32_t> out;
  const int vocab = m.config().vocab;
  while (s.computed < static_cast<int64_t>(s.tokens.size())) {
    SequenceBatch sb = s.next(pool, chunk);
    auto r = m.forward(std::span<const SequenceBatch>(&sb, 1), pool, logits);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return out;
  }
  if (first_logits) first_logits->assign(logits.begin(), logits.begin() + vocab);
  for (int i = 0; i < n_new; ++i) {
    const int next = argmax(logits.data(), vocab);
    out.push_back(next);
    if (i + 1 == n_new) break;
    s.tokens.push_back(next);
    SequenceBatch sb = s.next(pool, 1);
    auto r = m.forward(std::span<const SequenceBatch>(&sb, 1), pool, logits);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) break;
  }
  s.release(pool);
  return out;
}

}  // namespace tandem::model::test

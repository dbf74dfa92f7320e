// The batched forward pass. All sequences' new tokens are flattened into
// rows of one activation matrix; matmuls run once per layer for every row
// (each weight streamed once per step), while RoPE, the KV write and
// attention use each row's own position and block table.
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "gguf/quant.h"
#include "model/model.h"
#include "model/moe.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <cmath>
#include <cstring>

namespace tandem::model {

struct Model::State {
  int max_rows = 0;
  std::vector<float> x, xb, q, k, v, att, gate, up;                 // [rows][width]
  std::vector<float> cos_global, sin_global, cos_local, sin_local;  // [rows][n_rot/2]
  std::vector<int64_t> row_pos;
  std::vector<int> row_seq;
  std::vector<float> final_rows;               // rows that need logits, normalized
  std::vector<const uint8_t*> k_ptrs, v_ptrs;  // per layer: every sequence's blocks
  std::vector<size_t> seq_ptr_offset;
  std::vector<int64_t> seq_row_begin;  // first activation row of each sequence
  std::vector<float> att_scratch;      // per thread: attention_scratch_floats()
  std::vector<int64_t> att_work;       // attention work of the items before each (sequence, KV head) item
  size_t att_scratch_per_thread = 0;
  kernels::MatmulScratch mm;
  MoeScratch moe;  // mixture-of-experts layers only
};

Model::Model() = default;

Model::MoeCounters Model::moe_counters() const { return {state_->moe.routed_total, state_->moe.expert_reads_total}; }
Model::~Model() = default;

void Model::init_state() {
  const ModelConfig& c = config_;
  const ForwardLimits& lim = limits_;
  const int n_threads = pool_->size();
  state_ = std::make_unique<State>();
  State* s = state_.get();
  const size_t T = static_cast<size_t>(lim.max_tokens);
  s->max_rows = lim.max_tokens;
  s->x.resize(T * c.dim);
  s->xb.resize(T * c.dim);
  s->q.resize(T * c.q_dim());
  s->att.resize(T * c.q_dim());
  s->k.resize(T * c.kv_dim());
  s->v.resize(T * c.kv_dim());
  const int ffn = c.moe() ? c.expert_ffn_dim : c.ffn_dim;
  if (c.moe()) {
    s->moe.reserve(c, lim.max_tokens, n_threads);
    // For A/B benchmarks (docs/BENCHMARKS.md): TANDEM_MOE_SPLIT=rows|experts.
    if (const char* split = std::getenv("TANDEM_MOE_SPLIT")) {
      if (std::string_view(split) == "rows") s->moe.split = MoeSplit::kRows;
      if (std::string_view(split) == "experts") s->moe.split = MoeSplit::kExperts;
    }
  } else {
    s->gate.resize(T * static_cast<size_t>(ffn));
    s->up.resize(T * static_cast<size_t>(ffn));
  }
  const size_t half = static_cast<size_t>(c.n_rot / 2);
  s->cos_global.resize(T * half);
  s->sin_global.resize(T * half);
  s->cos_local.resize(T * half);
  s->sin_local.resize(T * half);
  s->row_pos.resize(T);
  s->row_seq.resize(T);
  s->final_rows.resize(T * c.dim);
  s->seq_ptr_offset.resize(static_cast<size_t>(lim.max_sequences) + 1);
  const size_t max_blocks = static_cast<size_t>(lim.max_sequences) * static_cast<size_t>(c.ctx / 16 + 2);
  s->k_ptrs.resize(max_blocks);
  s->v_ptrs.resize(max_blocks);
  s->seq_row_begin.resize(static_cast<size_t>(lim.max_sequences));
  s->att_work.resize(static_cast<size_t>(lim.max_sequences) * static_cast<size_t>(c.n_kv_heads) + 1);
  // KV blocks of up to 1024 tokens (forward() checks the pool's block size).
  s->att_scratch_per_thread =
      kernels::attention_scratch_floats(1024, c.head_dim, lim.max_tokens, c.n_heads / c.n_kv_heads);
  s->att_scratch.resize(static_cast<size_t>(n_threads) * s->att_scratch_per_thread);
  s->mm.reserve(lim.max_tokens, std::max(ffn, std::max(c.dim, c.q_dim())), n_threads);
}

namespace {

// WORK[i] = the attention work of items 0..i-1, item = sequence * n_kv_heads
// + head, work = query rows x keys each visits (+ a per-block overhead).
void attention_work_prefix(std::span<const SequenceBatch> batch, int n_kv_heads, std::vector<int64_t>& work) {
  size_t i = 0;
  work[0] = 0;
  for (const SequenceBatch& sb : batch) {
    const int64_t n = static_cast<int64_t>(sb.tokens.size());
    const int64_t cost = n * (sb.start_pos + n / 2 + 32);
    for (int h = 0; h < n_kv_heads; ++h, ++i) work[i + 1] = work[i] + cost;
  }
}

// The items of thread T of NT: a contiguous range holding ~1/NT of the work
// (contiguous keeps each thread on neighbouring heads of the same blocks).
void split_by_work(const std::vector<int64_t>& work, int64_t items, int t, int nt, int64_t* begin, int64_t* end) {
  const int64_t total = work[static_cast<size_t>(items)];
  auto first_reaching = [&](int64_t target) {
    return static_cast<int64_t>(std::lower_bound(work.begin(), work.begin() + items, target) - work.begin());
  };
  *begin = t == 0 ? 0 : first_reaching((total * t + nt - 1) / nt);
  *end = t + 1 == nt ? items : first_reaching((total * (t + 1) + nt - 1) / nt);
}

}  // namespace

Result<int> Model::forward(std::span<const SequenceBatch> batch, kv::KvPool& kv, std::vector<float>& logits) {
  const auto rows = flatten_rows(batch, kv);
  if (!rows) return rows.status();
  if (rows->rows == 0) return 0;
  embed_rows(batch, rows->rows);
  for (int l = 0; l < config_.n_layers; ++l) {
    attention_block(l, batch, kv, rows->rows);
    ffn_block(l, rows->rows);
  }
  return output_logits(batch, rows->logit_rows, logits);
}

// Validates the batch against the model, the pool and the limits, and lays
// its tokens out as rows (position, sequence, first row and KV pointers of
// each sequence).
Result<Model::Rows> Model::flatten_rows(std::span<const SequenceBatch> batch, const kv::KvPool& kv) {
  const ModelConfig& c = config_;
  State& s = *state_;
  const kv::KvShape& ks = kv.shape();
  if (ks.n_layers != c.n_layers || ks.n_kv_heads != c.n_kv_heads || ks.head_dim != c.head_dim) {
    return Status::error("KV pool shape does not match the model");
  }
  if (ks.block_tokens > 1024) return Status::error("KV blocks larger than 1024 tokens are not supported");
  if (batch.empty()) return Rows{};
  if (batch.size() > static_cast<size_t>(limits_.max_sequences)) {
    return Status::errorf("batch of {} sequences exceeds the limit of {}", batch.size(), limits_.max_sequences);
  }
  Rows out;
  size_t n_ptrs = 0;
  for (size_t si = 0; si < batch.size(); ++si) {
    const SequenceBatch& sb = batch[si];
    const int64_t n = static_cast<int64_t>(sb.tokens.size());
    if (n == 0) return Status::errorf("sequence {} has no tokens", si);
    if (sb.start_pos < 0 || sb.start_pos + n > c.ctx) {
      return Status::errorf("sequence {}: positions {}..{} exceed the context of {}", si, sb.start_pos,
                            sb.start_pos + n - 1, c.ctx);
    }
    const int64_t need_blocks = (sb.start_pos + n + ks.block_tokens - 1) / ks.block_tokens;
    if (static_cast<int64_t>(sb.blocks.size()) < need_blocks) {
      return Status::errorf("sequence {}: {} KV blocks for {} positions", si, sb.blocks.size(), sb.start_pos + n);
    }
    for (kv::BlockId b : sb.blocks.first(static_cast<size_t>(need_blocks))) {
      if (b < 0 || b >= kv.n_blocks()) return Status::errorf("sequence {}: bad KV block id {}", si, b);
    }
    if (out.rows + n > s.max_rows) return Status::errorf("batch exceeds {} tokens", s.max_rows);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t tok = sb.tokens[static_cast<size_t>(i)];
      if (tok < 0 || tok >= c.vocab) return Status::errorf("token id {} is outside the vocabulary of {}", tok, c.vocab);
      s.row_pos[static_cast<size_t>(out.rows + i)] = sb.start_pos + i;
      s.row_seq[static_cast<size_t>(out.rows + i)] = static_cast<int>(si);
    }
    s.seq_ptr_offset[si] = n_ptrs;
    s.seq_row_begin[si] = out.rows;
    n_ptrs += static_cast<size_t>(need_blocks);
    out.rows += n;
    out.logit_rows += sb.logits == SequenceBatch::Logits::kAll ? n : sb.logits == SequenceBatch::Logits::kLast ? 1 : 0;
  }
  attention_work_prefix(batch, c.n_kv_heads, s.att_work);
  if (n_ptrs > s.k_ptrs.size()) {
    s.k_ptrs.resize(n_ptrs);
    s.v_ptrs.resize(n_ptrs);
  }
  return out;
}

// Embeddings and RoPE tables, per row.
void Model::embed_rows(std::span<const SequenceBatch> batch, int64_t n_rows) {
  const ModelConfig& c = config_;
  State& s = *state_;
  const size_t D = static_cast<size_t>(c.dim), half = static_cast<size_t>(c.n_rot / 2);
  const float* factors = weights_.rope_factors.empty() ? nullptr : weights_.rope_factors.data();
  pool_->for_each(n_rows, [&](int64_t r) {
    const size_t ri = static_cast<size_t>(r);
    const int64_t row =
        batch[static_cast<size_t>(s.row_seq[ri])]
            .tokens[static_cast<size_t>(s.row_pos[ri] - batch[static_cast<size_t>(s.row_seq[ri])].start_pos)];
    const kernels::Matrix& e = weights_.token_embd;
    float* x = s.x.data() + ri * D;
    kernels::dequantize_row(e, row, x);
    if (c.embed_scale != 1.0f) kernels::scale_inplace(x, c.embed_scale, D);
    if (c.yarn_factor > 0) {
      kernels::rope_cos_sin_yarn(s.row_pos[ri], c.n_rot, c.rope_base, {c.yarn_factor, c.yarn_original_ctx},
                                 s.cos_global.data() + ri * half, s.sin_global.data() + ri * half);
    } else {
      kernels::rope_cos_sin(s.row_pos[ri], c.n_rot, c.rope_base, factors, c.rope_linear_scale,
                            s.cos_global.data() + ri * half, s.sin_global.data() + ri * half);
    }
    if (c.local_rope) {
      kernels::rope_cos_sin(s.row_pos[ri], c.n_rot, c.rope_base_local, nullptr, 1.0f, s.cos_local.data() + ri * half,
                            s.sin_local.data() + ri * half);
    }
  });
}

// Layer L's attention: norm, Q/K/V (biases, QK norms, RoPE), the new K/V
// into the pool, paged attention of every sequence, the output projection,
// the residual; leaves the FFN's normed input in xb.
void Model::attention_block(int l, std::span<const SequenceBatch> batch, kv::KvPool& kv, int64_t n_rows) {
  const ModelConfig& c = config_;
  State& s = *state_;
  const kv::KvShape& ks = kv.shape();
  kernels::ThreadPool& pool = *pool_;
  const size_t D = static_cast<size_t>(c.dim), QD = static_cast<size_t>(c.q_dim()),
               KD = static_cast<size_t>(c.kv_dim());
  const size_t HD = static_cast<size_t>(c.head_dim), half = static_cast<size_t>(c.n_rot / 2);
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  const bool sliding = c.is_sliding(l);
  const bool local_rope = sliding && c.local_rope;
  pool.for_each(n_rows, [&](int64_t r) {
    kernels::rmsnorm(s.x.data() + r * D, L.attn_norm.data(), c.rms_eps, s.xb.data() + r * D, D);
  });
  kernels::matmul(L.wq, s.xb.data(), n_rows, c.dim, s.q.data(), c.q_dim(), pool, s.mm);
  kernels::matmul(L.wk, s.xb.data(), n_rows, c.dim, s.k.data(), c.kv_dim(), pool, s.mm);
  kernels::matmul(L.wv, s.xb.data(), n_rows, c.dim, s.v.data(), c.kv_dim(), pool, s.mm);

  pool.for_each(n_rows, [&](int64_t r) {
    const size_t ri = static_cast<size_t>(r);
    float* q = s.q.data() + ri * QD;
    float* k = s.k.data() + ri * KD;
    if (c.qkv_bias) {
      kernels::add_inplace(q, L.bq.data(), QD);
      kernels::add_inplace(k, L.bk.data(), KD);
      kernels::add_inplace(s.v.data() + ri * KD, L.bv.data(), KD);
    }
    const float* cs = (local_rope ? s.cos_local : s.cos_global).data() + ri * half;
    const float* sn = (local_rope ? s.sin_local : s.sin_global).data() + ri * half;
    for (int h = 0; h < c.n_heads; ++h) {
      float* qh = q + static_cast<size_t>(h) * HD;
      if (c.qk_norm) kernels::rmsnorm(qh, L.q_norm.data(), c.rms_eps, qh, HD);
      kernels::rope(qh, cs, sn, c.n_rot, c.rope_pairing);
    }
    for (int h = 0; h < c.n_kv_heads; ++h) {
      float* kh = k + static_cast<size_t>(h) * HD;
      if (c.qk_norm) kernels::rmsnorm(kh, L.k_norm.data(), c.rms_eps, kh, HD);
      kernels::rope(kh, cs, sn, c.n_rot, c.rope_pairing);
    }
    const SequenceBatch& sb = batch[static_cast<size_t>(s.row_seq[ri])];
    const int64_t pos = s.row_pos[ri];
    kv.write(sb.blocks[static_cast<size_t>(pos / ks.block_tokens)], l, static_cast<int>(pos % ks.block_tokens), k,
             s.v.data() + ri * KD);
  });

  // Every block of every sequence, for this layer.
  for (size_t si = 0; si < batch.size(); ++si) {
    const SequenceBatch& sb = batch[si];
    const int64_t last = sb.start_pos + static_cast<int64_t>(sb.tokens.size()) - 1;
    for (int64_t b = 0; b <= last / ks.block_tokens; ++b) {
      s.k_ptrs[s.seq_ptr_offset[si] + static_cast<size_t>(b)] = kv.k(sb.blocks[static_cast<size_t>(b)], l);
      s.v_ptrs[s.seq_ptr_offset[si] + static_cast<size_t>(b)] = kv.v(sb.blocks[static_cast<size_t>(b)], l);
    }
  }
  // One item per (sequence, KV head): the sequence's new rows and the query
  // heads sharing the KV head walk its blocks together. Threads split the
  // items by work, not count: with decodes and a prefill chunk in one step
  // a split by count put all of the chunk's heads on the last thread. An
  // item's result does not depend on the thread that computes it.
  const int group = c.n_heads / c.n_kv_heads;
  const int64_t items = static_cast<int64_t>(batch.size()) * c.n_kv_heads;
  pool.run([&](int t, int nt) {
    int64_t b, e;
    split_by_work(s.att_work, items, t, nt, &b, &e);
    kernels::AttentionArgs a;
    a.n_heads = c.n_heads;
    a.n_kv_heads = c.n_kv_heads;
    a.head_dim = c.head_dim;
    a.scale = c.attn_scale;
    a.window = sliding ? c.sliding_window : 0;
    a.block_tokens = ks.block_tokens;
    a.kv_type = ks.type;
    a.sinks = L.sinks.empty() ? nullptr : L.sinks.data();
    a.q_stride = static_cast<int64_t>(QD);
    a.out_stride = static_cast<int64_t>(QD);
    a.scratch = s.att_scratch.data() + static_cast<size_t>(t) * s.att_scratch_per_thread;
    for (int64_t item = b; item < e; ++item) {
      const size_t si = static_cast<size_t>(item / c.n_kv_heads);
      const int kvh = static_cast<int>(item % c.n_kv_heads);
      const size_t r0 = static_cast<size_t>(s.seq_row_begin[si]);
      a.q = s.q.data() + r0 * QD;
      a.out = s.att.data() + r0 * QD;
      a.pos = batch[si].start_pos;
      a.n_queries = static_cast<int>(batch[si].tokens.size());
      a.k_blocks = s.k_ptrs.data() + s.seq_ptr_offset[si];
      a.v_blocks = s.v_ptrs.data() + s.seq_ptr_offset[si];
      kernels::attention(a, kvh * group, (kvh + 1) * group);
    }
  });

  kernels::matmul(L.wo, s.att.data(), n_rows, c.q_dim(), s.xb.data(), c.dim, pool, s.mm);
  pool.for_each(n_rows, [&](int64_t r) {
    float* o = s.xb.data() + r * D;
    if (c.attn_out_bias) kernels::add_inplace(o, L.bo.data(), D);
    if (c.post_norms) kernels::rmsnorm(o, L.post_attn_norm.data(), c.rms_eps, o, D);
    kernels::add_inplace(s.x.data() + r * D, o, D);
    kernels::rmsnorm(s.x.data() + r * D, L.ffn_norm.data(), c.rms_eps, o, D);
  });
}

// Layer L's feed-forward on xb (dense SwiGLU/GeGLU or the experts), the
// post-norm and the residual into x.
void Model::ffn_block(int l, int64_t n_rows) {
  const ModelConfig& c = config_;
  State& s = *state_;
  kernels::ThreadPool& pool = *pool_;
  const size_t D = static_cast<size_t>(c.dim), F = static_cast<size_t>(c.ffn_dim);
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  if (c.moe()) {
    moe_ffn(L, c, s.xb.data(), n_rows, s.xb.data(), pool, s.mm, s.moe);
    pool.for_each(n_rows, [&](int64_t r) { kernels::add_inplace(s.x.data() + r * D, s.xb.data() + r * D, D); });
    return;
  }
  kernels::matmul(L.w_gate, s.xb.data(), n_rows, c.dim, s.gate.data(), c.ffn_dim, pool, s.mm);
  kernels::matmul(L.w_up, s.xb.data(), n_rows, c.dim, s.up.data(), c.ffn_dim, pool, s.mm);
  pool.for_each(n_rows, [&](int64_t r) {
    float* g = s.gate.data() + r * F;
    if (c.gelu) {
      kernels::gelu_tanh_mul(g, s.up.data() + r * F, g, F);
    } else {
      kernels::silu_mul(g, s.up.data() + r * F, g, F);
    }
  });
  kernels::matmul(L.w_down, s.gate.data(), n_rows, c.ffn_dim, s.xb.data(), c.dim, pool, s.mm);
  pool.for_each(n_rows, [&](int64_t r) {
    float* o = s.xb.data() + r * D;
    if (c.post_norms) kernels::rmsnorm(o, L.post_ffn_norm.data(), c.rms_eps, o, D);
    kernels::add_inplace(s.x.data() + r * D, o, D);
  });
}

// The final norm of the rows that want logits, then the output matrix;
// returns how many rows of LOGITS were written.
int Model::output_logits(std::span<const SequenceBatch> batch, int64_t n_logit_rows, std::vector<float>& logits) {
  const ModelConfig& c = config_;
  State& s = *state_;
  const size_t D = static_cast<size_t>(c.dim);
  int64_t out_row = 0, row = 0;
  for (const SequenceBatch& sb : batch) {
    const int64_t n = static_cast<int64_t>(sb.tokens.size());
    for (int64_t i = 0; i < n; ++i, ++row) {
      const bool want =
          sb.logits == SequenceBatch::Logits::kAll || (sb.logits == SequenceBatch::Logits::kLast && i == n - 1);
      if (!want) continue;
      kernels::rmsnorm(s.x.data() + static_cast<size_t>(row) * D, weights_.output_norm.data(), c.rms_eps,
                       s.final_rows.data() + static_cast<size_t>(out_row) * D, D);
      ++out_row;
    }
  }
  const size_t need = static_cast<size_t>(n_logit_rows) * static_cast<size_t>(c.vocab);
  if (logits.size() < need) logits.resize(need);
  if (n_logit_rows > 0) {
    kernels::matmul(weights_.output, s.final_rows.data(), n_logit_rows, c.dim, logits.data(), c.vocab, *pool_, s.mm);
  }
  return static_cast<int>(n_logit_rows);
}

}  // namespace tandem::model

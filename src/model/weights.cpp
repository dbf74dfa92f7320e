#include "model/weights.h"

#include "gguf/quant.h"

#include <fmt/format.h>

namespace tandem::model {
namespace {

std::string shape_str(const std::vector<uint64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

class Loader {
 public:
  explicit Loader(const gguf::GgufFile& f) : f_(f) {}

  // A 2-D matrix of OUT rows x IN columns (GGML dims [IN, OUT]).
  Status matrix(const std::string& name, int64_t in, int64_t out, kernels::Matrix* m) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) return Status::errorf("tensor {} is missing", name);
    const std::vector<uint64_t> want{static_cast<uint64_t>(in), static_cast<uint64_t>(out)};
    if (t->dims != want)
      return Status::errorf("tensor {} has shape {}, expected {}", name, t->shape_string(), shape_str(want));
    if (!kernels::matmul_supports(t->type)) {
      return Status::errorf("tensor {} has type {}, which tandem cannot compute with", name, gguf::type_name(t->type));
    }
    m->data = t->data;
    m->type = t->type;
    m->rows = out;
    m->cols = in;
    m->row_bytes = static_cast<size_t>(t->n_bytes / static_cast<uint64_t>(out));
    return offsets(name + ".offsets", in, out, m);
  }

  // The per-group offsets of an affine matrix (kernels::Matrix::offsets),
  // if the model has them: F32, GGML dims [OUT, IN / group].
  Status offsets(const std::string& name, int64_t in, int64_t out, kernels::Matrix* m) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) return {};
    const uint64_t groups = t->dims.size() == 2 ? t->dims[1] : 0;
    if (t->type != gguf::TensorType::F32 || groups == 0 || static_cast<uint64_t>(in) % groups != 0 ||
        (static_cast<uint64_t>(in) / groups) % 32 != 0 || t->dims[0] != static_cast<uint64_t>(out)) {
      return Status::errorf("tensor {} is not F32 [{}, {} / group] with groups of 32n", name, out, in);
    }
    m->offsets = reinterpret_cast<const float*>(t->data);
    m->offset_group = in / static_cast<int64_t>(groups);
    m->offset_stride = out;
    return {};
  }

  // N matrices of OUT rows x IN columns stacked in one 3-D tensor (GGML
  // dims [IN, OUT, N]): views of each, in order.
  Status experts(const std::string& name, int64_t in, int64_t out, int64_t n, std::vector<kernels::Matrix>* ms) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) return Status::errorf("tensor {} is missing", name);
    const std::vector<uint64_t> want{static_cast<uint64_t>(in), static_cast<uint64_t>(out), static_cast<uint64_t>(n)};
    if (t->dims != want)
      return Status::errorf("tensor {} has shape {}, expected {}", name, t->shape_string(), shape_str(want));
    if (!kernels::matmul_supports(t->type)) {
      return Status::errorf("tensor {} has type {}, which tandem cannot compute with", name, gguf::type_name(t->type));
    }
    const uint64_t bytes = t->n_bytes / static_cast<uint64_t>(n);
    kernels::Matrix all;  // every expert's rows, for their offsets
    TANDEM_RETURN_IF_ERROR(offsets(name + ".offsets", in, out * n, &all));
    ms->resize(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) {
      kernels::Matrix& m = (*ms)[static_cast<size_t>(e)];
      if (all.offsets != nullptr) {  // expert e's rows e * OUT.. of the group-major offsets
        m.offsets = all.offsets + e * out;
        m.offset_group = all.offset_group;
        m.offset_stride = all.offset_stride;
      }
      m.data = t->data + static_cast<uint64_t>(e) * bytes;
      m.type = t->type;
      m.rows = out;
      m.cols = in;
      m.row_bytes = static_cast<size_t>(bytes / static_cast<uint64_t>(out));
    }
    return {};
  }

  // A vector of N values, converted to f32.
  Status vector(const std::string& name, int64_t n, std::vector<float>* v) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) return Status::errorf("tensor {} is missing", name);
    if (t->dims != std::vector<uint64_t>{static_cast<uint64_t>(n)}) {
      return Status::errorf("tensor {} has shape {}, expected [{}]", name, t->shape_string(), n);
    }
    v->resize(static_cast<size_t>(n));
    Status st = gguf::dequantize(t->type, t->data, v->data(), n);
    return st.ok() ? st : st.with_context(name);
  }

  // ROWS vectors of N values (GGML dims [N, ROWS]), converted to f32.
  Status table(const std::string& name, int64_t n, int64_t rows, std::vector<float>* v) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) return Status::errorf("tensor {} is missing", name);
    const std::vector<uint64_t> want{static_cast<uint64_t>(n), static_cast<uint64_t>(rows)};
    if (t->dims != want)
      return Status::errorf("tensor {} has shape {}, expected {}", name, t->shape_string(), shape_str(want));
    v->resize(static_cast<size_t>(n * rows));
    Status st = gguf::dequantize(t->type, t->data, v->data(), n * rows);
    return st.ok() ? st : st.with_context(name);
  }

  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }

 private:
  const gguf::GgufFile& f_;
};

}  // namespace

Result<Weights> load_weights(const gguf::GgufFile& file, ModelConfig* c) {
  Loader ld(file);
  Weights w;
  const gguf::TensorInfo* emb = file.find_tensor("token_embd.weight");
  if (emb == nullptr) return Status::error("tensor token_embd.weight is missing");
  if (emb->dims.size() != 2 || emb->dims[0] != static_cast<uint64_t>(c->dim) || emb->dims[1] == 0 ||
      emb->dims[1] > (1u << 24)) {
    return Status::errorf("tensor token_embd.weight has shape {}, expected [{}, vocab]", emb->shape_string(), c->dim);
  }
  c->vocab = static_cast<int>(emb->dims[1]);
  TANDEM_RETURN_IF_ERROR(ld.matrix("token_embd.weight", c->dim, c->vocab, &w.token_embd));
  if (ld.has("output.weight")) {
    TANDEM_RETURN_IF_ERROR(ld.matrix("output.weight", c->dim, c->vocab, &w.output));
  } else {
    w.output = w.token_embd;  // tied embeddings
  }
  TANDEM_RETURN_IF_ERROR(ld.vector("output_norm.weight", c->dim, &w.output_norm));
  if (ld.has("rope_freqs.weight"))
    TANDEM_RETURN_IF_ERROR(ld.vector("rope_freqs.weight", c->n_rot / 2, &w.rope_factors));

  w.layers.resize(static_cast<size_t>(c->n_layers));
  for (int l = 0; l < c->n_layers; ++l) {
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_norm.weight", c->dim, &L.attn_norm));
    TANDEM_RETURN_IF_ERROR(ld.matrix(p + "attn_q.weight", c->dim, c->q_dim(), &L.wq));
    TANDEM_RETURN_IF_ERROR(ld.matrix(p + "attn_k.weight", c->dim, c->kv_dim(), &L.wk));
    TANDEM_RETURN_IF_ERROR(ld.matrix(p + "attn_v.weight", c->dim, c->kv_dim(), &L.wv));
    TANDEM_RETURN_IF_ERROR(ld.matrix(p + "attn_output.weight", c->q_dim(), c->dim, &L.wo));
    if (c->qkv_bias) {
      TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_q.bias", c->q_dim(), &L.bq));
      TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_k.bias", c->kv_dim(), &L.bk));
      TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_v.bias", c->kv_dim(), &L.bv));
    }
    if (c->attn_out_bias) TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_output.bias", c->dim, &L.bo));
    if (c->attn_sinks) TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_sinks.weight", c->n_heads, &L.sinks));
    if (c->qk_norm) {
      TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_q_norm.weight", c->head_dim, &L.q_norm));
      TANDEM_RETURN_IF_ERROR(ld.vector(p + "attn_k_norm.weight", c->head_dim, &L.k_norm));
    }
    if (c->post_norms) {
      TANDEM_RETURN_IF_ERROR(ld.vector(p + "post_attention_norm.weight", c->dim, &L.post_attn_norm));
      TANDEM_RETURN_IF_ERROR(ld.vector(p + "post_ffw_norm.weight", c->dim, &L.post_ffn_norm));
    }
    // gpt-oss names its FFN input norm post_attention_norm.
    TANDEM_RETURN_IF_ERROR(ld.vector(p + (c->arch == Arch::kGptOss ? "post_attention_norm.weight" : "ffn_norm.weight"),
                                     c->dim, &L.ffn_norm));
    if (c->moe()) {
      const int64_t n = c->n_experts, ef = c->expert_ffn_dim;
      TANDEM_RETURN_IF_ERROR(ld.matrix(p + "ffn_gate_inp.weight", c->dim, n, &L.router));
      TANDEM_RETURN_IF_ERROR(ld.experts(p + "ffn_gate_exps.weight", c->dim, ef, n, &L.exp_gate));
      TANDEM_RETURN_IF_ERROR(ld.experts(p + "ffn_up_exps.weight", c->dim, ef, n, &L.exp_up));
      TANDEM_RETURN_IF_ERROR(ld.experts(p + "ffn_down_exps.weight", ef, c->dim, n, &L.exp_down));
      if (c->moe_bias) {
        TANDEM_RETURN_IF_ERROR(ld.vector(p + "ffn_gate_inp.bias", n, &L.router_bias));
        TANDEM_RETURN_IF_ERROR(ld.table(p + "ffn_gate_exps.bias", ef, n, &L.exp_gate_bias));
        TANDEM_RETURN_IF_ERROR(ld.table(p + "ffn_up_exps.bias", ef, n, &L.exp_up_bias));
        TANDEM_RETURN_IF_ERROR(ld.table(p + "ffn_down_exps.bias", c->dim, n, &L.exp_down_bias));
      }
      continue;
    }
    TANDEM_RETURN_IF_ERROR(ld.matrix(p + "ffn_gate.weight", c->dim, c->ffn_dim, &L.w_gate));
    TANDEM_RETURN_IF_ERROR(ld.matrix(p + "ffn_up.weight", c->dim, c->ffn_dim, &L.w_up));
    TANDEM_RETURN_IF_ERROR(ld.matrix(p + "ffn_down.weight", c->ffn_dim, c->dim, &L.w_down));
  }
  return w;
}

}  // namespace tandem::model

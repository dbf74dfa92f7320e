#include "model/model.h"

#include "core/env.h"
#include "hf/folder.h"
#include "kernels/attention.h"
#include "kernels/dot.h"
#include "kernels/q8_pack.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace tandem::model {

Model::WeightsResidence Model::bring_weights_in(uint64_t available_bytes,
                                                const std::function<void(uint64_t done, uint64_t total)>& progress) {
  using Kind = WeightsResidence::Kind;
  const uint64_t bytes = file_.tensor_data_size();
  if (bytes > available_bytes) {
    return {Kind::kOnDemand, fmt::format("{:.1f} GiB of weights, {:.1f} GiB of memory available",
                                         static_cast<double>(bytes) / (1 << 30),
                                         static_cast<double>(available_bytes) / (1 << 30))};
  }
  std::string why = "TANDEM_MMAP_WEIGHTS is set";
  if (!env_flag("TANDEM_MMAP_WEIGHTS")) {
    Status s = file_.make_resident(progress);
    if (s.ok()) {
      const auto packed = pack_weights();
      if (!packed.ok()) return {Kind::kHugePages, "not repacked: " + packed.status().message()};
      return {Kind::kHugePages, "", *packed};
    }
    why = s.message();
  }
  file_.page_in(progress);
  return {Kind::kFilePages, why};
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const Options& options) {
  auto file = hf::open_model(path);
  if (!file) return file.status();
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(*file);
  auto config = read_config(m->file_, options.ctx);
  if (!config) return config.status().with_context(path);
  m->config_ = *config;
  auto weights = load_weights(m->file_, &m->config_);
  if (!weights) return weights.status().with_context(path);
  m->weights_ = std::move(*weights);
  if (options.limits.max_tokens <= 0 || options.limits.max_sequences <= 0) {
    return Status::error("forward limits must be positive");
  }
  m->limits_ = options.limits;
  m->pool_ = std::make_unique<kernels::ThreadPool>(options.n_threads);
  m->init_state();
  return m;
}

kv::KvShape Model::kv_shape(kernels::KvType type, int block_tokens) const {
  kv::KvShape s;
  s.n_layers = config_.n_layers;
  s.n_kv_heads = config_.n_kv_heads;
  s.head_dim = config_.head_dim;
  s.block_tokens = block_tokens;
  s.type = type;
  return s;
}

uint64_t Model::weight_bytes() const {
  auto bytes = [](const kernels::Matrix& m) {
    return static_cast<uint64_t>(m.row_bytes) * static_cast<uint64_t>(m.rows);
  };
  uint64_t total = bytes(weights_.output);
  for (const auto& L : weights_.layers) {
    total += bytes(L.wq) + bytes(L.wk) + bytes(L.wv) + bytes(L.wo);
    if (!config_.moe()) {
      total += bytes(L.w_gate) + bytes(L.w_up) + bytes(L.w_down);
      continue;
    }
    // One token reads the router and its n_experts_used experts.
    total += bytes(L.router) + static_cast<uint64_t>(config_.n_experts_used) *
                                   (bytes(L.exp_gate[0]) + bytes(L.exp_up[0]) + bytes(L.exp_down[0]));
  }
  return total;
}

Result<int> Model::pack_weights() {
  const int group = kernels::packing_group();
  if (group == 0) return 0;
  (void)fingerprint();
  std::vector<kernels::Matrix*> matrices{&weights_.output};
  for (LayerWeights& L : weights_.layers) {
    for (kernels::Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) matrices.push_back(m);
    for (auto* experts : {&L.exp_gate, &L.exp_up, &L.exp_down})
      for (kernels::Matrix& m : *experts) matrices.push_back(&m);
  }
  TANDEM_RETURN_IF_ERROR(file_.set_writable(true));
  int n = 0;
  for (kernels::Matrix* m : matrices) {
    if (!kernels::packable(m->type) || m->packed_rows > 0) continue;
    m->packed_rows = kernels::pack_rows(m->type, group, const_cast<uint8_t*>(m->data), m->rows, m->cols, pool_.get());
    m->pack_group = group;
    n += m->packed_rows > 0;
  }
  // Tied embeddings: the lookup reads the output matrix's rows (dequantize_row unpacks).
  if (weights_.token_embd.data == weights_.output.data) {
    weights_.token_embd.packed_rows = weights_.output.packed_rows;
    weights_.token_embd.pack_group = weights_.output.pack_group;
  }
  // Left writable if this fails: the weights are packed either way, and
  // nothing writes them.
  (void)file_.set_writable(false);
  return n;
}

uint64_t Model::fingerprint() const {
  if (fingerprint_) return *fingerprint_;
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  const auto header = file_.header_bytes();
  XXH3_64bits_update(st, header.data(), header.size());
  const uint64_t size = file_.file_size();
  XXH3_64bits_update(st, &size, sizeof(size));
  // Three 4 KiB windows per tensor (start, middle, end): a fine-tune or a
  // requantization changes them all.
  constexpr uint64_t kWindow = 4096;
  for (const auto& t : file_.tensors()) {
    const uint64_t n = t.n_bytes;
    for (uint64_t at : {uint64_t{0}, n / 2, n > kWindow ? n - kWindow : 0}) {
      XXH3_64bits_update(st, t.data + at, std::min(kWindow, n - at));
    }
  }
  for (const char* target :
       {kernels::matmul_target_name(), kernels::simd_target_name(), kernels::attention_path_name()}) {
    XXH3_64bits_update(st, target, std::strlen(target));
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  fingerprint_ = h;
  return h;
}

}  // namespace tandem::model

// Loading: every family runs a synthetic model without NaN/Inf; bad files
// are refused with a message naming what is wrong; bad batches too.
#include "gguf/writer.h"
#include "model/synth.h"
#include "model_test_util.h"

#include <cmath>
#include <filesystem>
#include <functional>

namespace tandem::model {
namespace {

std::string synth_tiny(const std::string& preset, gguf::TensorType type, const std::string& name) {
  ShapeOverrides o;
  o.n_layers = 2, o.dim = 256, o.n_heads = 4, o.n_kv_heads = 2, o.head_dim = 64, o.ffn_dim = 512, o.vocab = 1000;
  o.ctx = 4096;
  auto shape = make_shape(preset, o);
  EXPECT_TRUE(shape.ok()) << shape.message();
  const std::string path = tandem::test::scratch_dir("model_load_" + name) + "/m.gguf";
  Status st = write_synth(*shape, type, 3, {}, path);
  EXPECT_TRUE(st.ok()) << st.message();
  return path;
}

bool all_finite(const std::vector<float>& v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return false;
  }
  return true;
}

struct Family {
  const char* preset;
  gguf::TensorType type;
};

class FamilyTest : public ::testing::TestWithParam<Family> {};

TEST_P(FamilyTest, SynthModelRunsFinite) {
  const std::string name = std::string(GetParam().preset) + "_" + std::string(gguf::type_name(GetParam().type));
  auto m = test::load(synth_tiny(GetParam().preset, GetParam().type, name));
  ASSERT_NE(m, nullptr);
  auto pool = test::make_pool(*m, kernels::KvType::kF16);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back((i * 37 + 11) % 1000);
  std::vector<float> first;
  const auto ids = test::greedy(*m, *pool, prompt, 8, 16, &first);
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_TRUE(all_finite(first, static_cast<size_t>(m->config().vocab)));
  // Logits are not all equal (the model computes something).
  EXPECT_NE(*std::max_element(first.begin(), first.end()), *std::min_element(first.begin(), first.end()));
}

INSTANTIATE_TEST_SUITE_P(
    Families, FamilyTest,
    ::testing::Values(Family{"qwen3-0.6b", gguf::TensorType::Q8_0}, Family{"qwen3-0.6b", gguf::TensorType::Q4_K},
                      Family{"qwen2.5-0.5b", gguf::TensorType::F16}, Family{"qwen2.5-0.5b", gguf::TensorType::Q4_0},
                      Family{"llama-3.2-1b", gguf::TensorType::Q6_K}, Family{"llama-3.2-1b", gguf::TensorType::BF16},
                      Family{"gemma3-1b", gguf::TensorType::Q8_0}),
    [](const auto& info) {
      std::string n = std::string(info.param.preset) + "_" + std::string(gguf::type_name(info.param.type));
      for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

// Rewrites SRC into a new file: EDIT may change metadata and decide per
// tensor whether to keep it (return false to drop) and add others.
std::string rewrite(const std::string& src, const std::string& name,
                    const std::function<void(gguf::GgufWriter&)>& edit_metadata,
                    const std::function<bool(const gguf::TensorInfo&, gguf::GgufWriter&)>& keep) {
  auto f = gguf::GgufFile::open(src);
  EXPECT_TRUE(f.ok());
  gguf::GgufWriter w;
  for (const auto& kv : f->metadata()) w.set(kv.key, kv.value);
  edit_metadata(w);
  for (const auto& t : f->tensors()) {
    if (!keep(t, w)) continue;
    EXPECT_TRUE(w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
  }
  const std::string path = tandem::test::scratch_dir("model_bad_" + name) + "/m.gguf";
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

std::string load_error(const std::string& path) {
  Model::Options o;
  o.n_threads = 1;
  auto m = Model::load(path, o);
  return m.ok() ? "(loaded)" : m.message();
}

// The real Qwen3-0.6B shape (28 layers, 151936-row embedding, q8_0: 600 MB)
// loads and generates.
TEST(ModelLoad, RealShapedQwen3Generates) {
  auto shape = make_shape("qwen3-0.6b", {});
  ASSERT_TRUE(shape.ok());
  const std::string path = tandem::test::scratch_dir("model_real_qwen3") + "/qwen3-0.6b-q8_0.gguf";
  ASSERT_TRUE(write_synth(*shape, gguf::TensorType::Q8_0, 1, {}, path).ok());
  auto m = test::load(path, 2, 64, 1);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->config().n_layers, 28);
  EXPECT_EQ(m->config().vocab, 151936);
  auto pool = test::make_pool(*m, kernels::KvType::kF16, 4);
  std::vector<float> first;
  const auto ids = test::greedy(*m, *pool, {9707, 11, 1246, 525, 498, 30}, 4, 64, &first);
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_TRUE(all_finite(first, first.size()));
  std::filesystem::remove(path);
}

TEST(ModelLoad, RefusesBadModels) {
  const std::string good = synth_tiny("qwen3-0.6b", gguf::TensorType::Q8_0, "good");
  auto none = [](gguf::GgufWriter&) {};
  auto all = [](const gguf::TensorInfo&, gguf::GgufWriter&) { return true; };
  EXPECT_EQ(load_error(rewrite(good, "copy", none, all)), "(loaded)");

  const auto missing = load_error(rewrite(good, "missing", none, [](const gguf::TensorInfo& t, gguf::GgufWriter&) {
    return t.name != "blk.1.ffn_up.weight";
  }));
  EXPECT_NE(missing.find("tensor blk.1.ffn_up.weight is missing"), std::string::npos) << missing;

  const auto shape = load_error(rewrite(good, "shape", none, [](const gguf::TensorInfo& t, gguf::GgufWriter& w) {
    if (t.name != "blk.0.attn_k.weight") return true;
    EXPECT_TRUE(w.add_tensor(t.name, gguf::TensorType::F32, {256, 96}, std::vector<uint8_t>(256 * 96 * 4)).ok());
    return false;
  }));
  EXPECT_NE(shape.find("tensor blk.0.attn_k.weight has shape [256, 96], expected [256, 128]"), std::string::npos)
      << shape;

  const auto type = load_error(rewrite(good, "type", none, [](const gguf::TensorInfo& t, gguf::GgufWriter& w) {
    if (t.name != "blk.0.attn_q.weight") return true;
    EXPECT_TRUE(w.add_tensor(t.name, gguf::TensorType::IQ4_NL, t.dims, std::vector<uint8_t>(256 * 256 / 32 * 18)).ok());
    return false;
  }));
  EXPECT_NE(type.find("blk.0.attn_q.weight has type iq4_nl"), std::string::npos) << type;

  const auto arch = load_error(rewrite(
      good, "arch", [](gguf::GgufWriter& w) { w.set("general.architecture", gguf::Value::string("mamba")); }, all));
  EXPECT_NE(arch.find("architecture 'mamba' is not supported"), std::string::npos) << arch;

  const auto key = load_error(rewrite(
      good, "key", [](gguf::GgufWriter& w) { w.set("qwen3.block_count", gguf::Value::string("two")); }, all));
  EXPECT_NE(key.find("qwen3.block_count"), std::string::npos) << key;

  EXPECT_NE(load_error("/nonexistent.gguf").find("cannot open"), std::string::npos);
}

TEST(ModelLoad, RefusesBadBatches) {
  auto m = test::load(synth_tiny("qwen3-0.6b", gguf::TensorType::Q8_0, "batch"), 1, 64, 2);
  ASSERT_NE(m, nullptr);
  auto pool = test::make_pool(*m, kernels::KvType::kF16, 8);
  std::vector<float> logits;
  const std::vector<int32_t> tokens{1, 2, 3};
  const std::vector<kv::BlockId> blocks{0};
  auto run = [&](SequenceBatch sb) {
    auto r = m->forward(std::span<const SequenceBatch>(&sb, 1), *pool, logits);
    return r.ok() ? std::string("(ok)") : r.message();
  };
  SequenceBatch sb{tokens, 0, blocks};
  EXPECT_EQ(run(sb), "(ok)");
  const std::vector<int32_t> bad_token{1, 1000};
  EXPECT_NE(run({bad_token, 0, blocks}).find("token id 1000 is outside the vocabulary"), std::string::npos);
  EXPECT_NE(run({tokens, 30, blocks}).find("1 KV blocks for 33 positions"), std::string::npos);
  const std::vector<kv::BlockId> bad_block{999};
  EXPECT_NE(run({tokens, 0, bad_block}).find("bad KV block id 999"), std::string::npos);
  const std::vector<int32_t> many(65, 1);
  const std::vector<kv::BlockId> three{0, 1, 2};
  EXPECT_NE(run({many, 0, three}).find("exceeds 64 tokens"), std::string::npos);
  EXPECT_NE(run({tokens, 4094, blocks}).find("exceed the context"), std::string::npos);
  EXPECT_NE(run({std::span<const int32_t>(), 0, blocks}).find("no tokens"), std::string::npos);
}

}  // namespace
}  // namespace tandem::model

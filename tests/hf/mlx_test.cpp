// MLX-quantized folders written by tandem's own writer from known models.
#include "core/fp16.h"
#include "hf/convert.h"
#include "hf/folder.h"
#include "hf/folder_writer.h"
#include "hf/hf_config.h"
#include "hf/mlx.h"
#include "kernels/matmul.h"
#include "model/model_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace tandem::hf {
namespace {

using tandem::test::data_path;

std::string write_mlx(const std::string& model, int bits, int group) {
  auto src = gguf::GgufFile::open(data_path(model));
  EXPECT_TRUE(src.ok()) << src.message();
  const std::string dir = tandem::test::scratch_dir(fmt::format("hf_mlx_{}_{}_{}", model, bits, group));
  FolderWriteOptions o;
  o.mlx_bits = bits;
  o.mlx_group = group;
  EXPECT_TRUE(write_folder(*src, dir, o).ok());
  return dir;
}

// Every element of the converted matrices equals scale * q + bias as the
// writer stored them (q, BF16 scale and bias read back from the folder),
// but for the one f32 rounding of the offset; llama's Q/K rows land
// interleaved.
TEST(Mlx, DequantizedWeightsEqualTheWritersQuantization) {
  for (const char* model : {"qwen3-tiny-random.gguf", "stories260K.gguf"}) {
    for (auto [bits, group] : {std::pair{4, 64}, {8, 32}, {4, 32}, {8, 128}}) {
      const std::string dir = write_mlx(model, bits, group);
      auto folder = open_model(dir);
      ASSERT_TRUE(folder.ok()) << folder.message();
      auto st = SafetensorsFile::open(dir + "/model.safetensors");
      ASSERT_TRUE(st.ok()) << st.message();
      const bool llama = std::string(model) == "stories260K.gguf";
      for (auto [hf, gg, heads] : {std::tuple{"model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight", 8},
                                  {"model.layers.1.self_attn.k_proj", "blk.1.attn_k.weight", 4},
                                  {"model.layers.1.mlp.down_proj", "blk.1.ffn_down.weight", 0},
                                  {"model.embed_tokens", "token_embd.weight", 0}}) {
        if (!llama && std::string(gg).find("attn_") != std::string::npos) heads = 0;
        if (st->find(std::string(hf) + ".scales") == nullptr) {  // not whole groups: left as floats, as mlx-lm does
          EXPECT_EQ(folder->find_tensor(std::string(gg) + ".offsets"), nullptr);
          continue;
        }
        MlxMatrix mm{st->find(std::string(hf) + ".weight"), st->find(std::string(hf) + ".scales"),
                     st->find(std::string(hf) + ".biases"), {bits, group}};
        ASSERT_TRUE(check_mlx_matrix(&mm).ok()) << hf;
        const gguf::TensorInfo* info = folder->find_tensor(gg);
        ASSERT_NE(info, nullptr);
        const kernels::Matrix m = matrix_view(*folder, *info).value();
        ASSERT_NE(m.offsets, nullptr);
        ASSERT_EQ(m.rows, mm.rows);
        ASSERT_EQ(m.type, bits == 4 ? gguf::TensorType::Q4_0 : gguf::TensorType::Q8_0);
        std::vector<float> row(static_cast<size_t>(m.cols));
        const int64_t groups = mm.cols / group, per_word = 32 / bits;
        double worst = 0;
        for (int64_t r = 0; r < mm.rows; ++r) {
          const int64_t to = heads > 0 ? static_cast<int64_t>(interleaved_row(static_cast<uint64_t>(r),
                                                                              static_cast<uint64_t>(mm.rows),
                                                                              static_cast<uint64_t>(heads)))
                                       : r;
          kernels::dequantize_row(m, to, row.data());
          for (int64_t i = 0; i < mm.cols; ++i) {
            uint32_t word;
            std::memcpy(&word, mm.weight->data.data() + 4 * (r * mm.cols / per_word + i / per_word), 4);
            const auto q = static_cast<float>((word >> ((i % per_word) * bits)) & ((1u << bits) - 1));
            const float s = element_f32(*mm.scales, static_cast<uint64_t>(r * groups + i / group));
            const float b = element_f32(*mm.biases, static_cast<uint64_t>(r * groups + i / group));
            const float want = s * q + b;
            // One rounding of bias + shift * scale: half an ulp of its size.
            const double ulp = std::ldexp(std::fabs(b) + (bits == 4 ? 8 : 128) * std::fabs(s), -23);
            worst = std::max(worst, std::fabs(row[static_cast<size_t>(i)] - want) / ulp);
            ASSERT_LE(std::fabs(row[static_cast<size_t>(i)] - want), ulp) << model << " " << gg << " r=" << r << " i=" << i;
          }
        }
        std::printf("  %s %d-bit g%d %s: worst error %.2f ulp of the offset\n", model, bits, group, gg, worst);
      }
    }
  }
}

// Greedy decoding of the trained stories260K model from its MLX folders
// against the unquantized reference ids (f16 KV): 8-bit keeps nearly every
// id, 4-bit drifts later (measured bounds, printed).
TEST(Mlx, GreedyStaysCloseToTheUnquantizedModel) {
  const auto ref = nlohmann::json::parse(read_file(data_path("reference/stories260K_greedy.json")).value());
  for (int bits : {8, 4}) {
    auto m = model::test::load(write_mlx("stories260K.gguf", bits, 32));
    ASSERT_NE(m, nullptr);
    auto pool = model::test::make_pool(*m, kernels::KvType::kF16);
    size_t same = 0, total = 0, first_sum = 0;
    for (const auto& r : ref["results"]) {
      const auto want = r["generated_ids"].get<std::vector<int32_t>>();
      const auto got = model::test::greedy(*m, *pool, r["prompt_ids"].get<std::vector<int32_t>>(),
                                           static_cast<int>(want.size()));
      size_t first = 0;
      while (first < want.size() && got[first] == want[first]) ++first;
      first_sum += first;
      for (size_t i = 0; i < want.size(); ++i) same += got[i] == want[i];
      total += want.size();
    }
    std::printf("  stories260K MLX %d-bit: %zu of %zu ids as unquantized, first divergence after %.1f on average\n",
                bits, same, total, static_cast<double>(first_sum) / static_cast<double>(ref["results"].size()));
    EXPECT_GE(same * 100, total * (bits == 8 ? 90 : 25)) << bits;
  }
}

// mlx-lm's stacked experts (switch_mlp, [experts, out, in] codes): the
// loaded experts' weights equal the codes', and the whole mixture computes
// what its dequantized f32 twin computes. (Greedy ids against the
// unquantized reference say little here: the random router's logit gaps
// are 2e-4, so 8-bit weights flip expert choices; Q8_0 of the same model
// keeps 114 of 192 ids, this MLX 8-bit folder 67.)
TEST(Mlx, StackedExpertsOfAMixture) {
  const std::string dir = write_mlx("qwen3moe-tiny-random.gguf", 8, 32);
  auto st = SafetensorsFile::open(dir + "/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.message();
  const StTensor* w = st->find("model.layers.1.mlp.switch_mlp.down_proj.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape_string(), "[8, 64, 8]");  // 8 experts, 64 rows, 32 codes of 8 bits in 8 words
  auto folder = open_model(dir);
  ASSERT_TRUE(folder.ok()) << folder.message();
  const gguf::TensorInfo* info = folder->find_tensor("blk.1.ffn_down_exps.weight");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->shape_string(), "[32, 64, 8]");
  MlxMatrix mm{w, st->find("model.layers.1.mlp.switch_mlp.down_proj.scales"),
               st->find("model.layers.1.mlp.switch_mlp.down_proj.biases"), {8, 32}};
  ASSERT_TRUE(check_mlx_matrix(&mm).ok());
  const kernels::Matrix all = matrix_view(*folder, *info).value();
  std::vector<float> row(32);
  for (int64_t r : {0, 63, 64, 300, 511}) {  // rows of experts 0, 0, 1, 4, 7
    kernels::dequantize_row(all, r, row.data());
    uint8_t codes[32];
    std::memcpy(codes, w->data.data() + r * 32, 32);
    for (int i = 0; i < 32; ++i) {
      const float want = element_f32(*mm.scales, static_cast<uint64_t>(r)) * codes[i] +
                         element_f32(*mm.biases, static_cast<uint64_t>(r));
      ASSERT_NEAR(row[static_cast<size_t>(i)], want, 1e-6) << r << " " << i;
    }
  }
  // The whole model against its own f32 GGUF conversion (the same weights,
  // dequantized): with f32 activations both compute the same function, so
  // the first logits of every prompt agree to f32 rounding.
  const std::string gguf_path = dir + "/../qwen3moe-mlx8-f32.gguf";
  GgufConvertOptions co;
  co.type = gguf::TensorType::F32;
  ASSERT_TRUE(convert_to_gguf(*folder, gguf_path, co).ok());
  auto a = model::test::load(dir);
  auto b = model::test::load(gguf_path);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  auto pa = model::test::make_pool(*a, kernels::KvType::kF32);
  auto pb = model::test::make_pool(*b, kernels::KvType::kF32);
  const auto ref = nlohmann::json::parse(read_file(data_path("reference/qwen3moe_tiny_greedy.json")).value());
  kernels::set_f32_activations(true);
  double worst = 0;
  for (const auto& r : ref["results"]) {
    std::vector<float> la, lb;
    const auto prompt = r["prompt_ids"].get<std::vector<int32_t>>();
    model::test::greedy(*a, *pa, prompt, 1, 1 << 30, &la);
    model::test::greedy(*b, *pb, prompt, 1, 1 << 30, &lb);
    for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(la[i]) - lb[i]));
  }
  kernels::set_f32_activations(false);
  std::printf("  qwen3moe MLX 8-bit vs its f32 GGUF: max first-logit difference %.2e\n", worst);
  EXPECT_LT(worst, 1e-3);
}

TEST(Mlx, UnsupportedQuantizationSaysSoInOneLine) {
  const std::string dir = write_mlx("qwen3-tiny-random.gguf", 4, 64);
  auto cfg = nlohmann::json::parse(read_file(dir + "/config.json").value());
  for (auto [key, value, message] :
       {std::tuple{"bits", 3, "3-bit MLX quantization is not supported (4 and 8)"},
        {"group_size", 48, "MLX group size 48 is not supported (32, 64, 128)"}}) {
    auto c = cfg;
    c["quantization"][key] = value;
    c.erase("quantization_config");
    const std::string text = c.dump();
    ASSERT_TRUE(write_text_atomic(dir + "/config.json", text).ok());
    auto f = open_model(dir);
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.message().find(message), std::string::npos) << f.message();
    EXPECT_EQ(f.message().find('\n'), std::string::npos);
  }
  cfg.erase("quantization");
  cfg.erase("quantization_config");
  const std::string text = cfg.dump();
  ASSERT_TRUE(write_text_atomic(dir + "/config.json", text).ok());
  auto f = open_model(dir);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("is U32 but config.json has no quantization for it"), std::string::npos) << f.message();
}

}  // namespace
}  // namespace tandem::hf

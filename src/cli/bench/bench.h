// tandem bench: what the scenarios (throughput, resume, memory) share.
//
// A Driver runs one generation request to its end and times it from the
// client's side, so the in-process engine and any server over HTTP are
// measured the same way: time to the first generated text (TTFT) and to
// the last byte.
#pragma once

#include "core/status.h"
#include "engine/engine.h"
#include "model/model.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tandem::bench {

using json = nlohmann::ordered_json;

struct Job {
  std::string prompt;   // text; the engine driver tokenizes it
  int max_tokens = 64;  // generated exactly (EOS ignored) where the server allows
  std::string session;  // "" = none
};

struct Outcome {
  bool ok = false;
  std::string error;
  double ttft_ms = 0, total_ms = 0;
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;
  // Runs JOB to its end. Thread-safe: scenarios call it from many threads.
  virtual Outcome run(const Job& job) = 0;
  // Tokens of TEXT as a prompt, when the driver can tell.
  virtual std::optional<int64_t> count_tokens(const std::string& text) = 0;
  // What is measured, for reports ("tandem engine, qwen3-0.6b ...").
  virtual json describe() const = 0;
  // Waits until the server has finished the background work of earlier
  // requests (disk writes), where the driver can tell: an agent's next
  // turn comes after its tool ran, not the instant its last one ended.
  virtual Status settle() { return {}; }
  // Sequences preempted so far (KV blocks ran out), where the driver can tell.
  virtual std::optional<int64_t> preemptions() { return std::nullopt; }
};

// The in-process driver: model, tokenizer and an Engine.
struct EngineSetup {
  std::string model_path;
  int64_t ctx = 0;
  int threads = 0;
  std::string kv_type = "auto";  // --kv-type: sets engine.kv_type once the model is loaded
  engine::EngineOptions engine;
};

class EngineDriver : public Driver {
 public:
  static Result<std::unique_ptr<EngineDriver>> create(const EngineSetup& setup);
  Outcome run(const Job& job) override;
  std::optional<int64_t> count_tokens(const std::string& text) override;
  json describe() const override;
  // Waits for the disk tier's writes (Engine::flush).
  Status settle() override;
  std::optional<int64_t> preemptions() override { return engine_->metrics().preemptions; }

  // Flushes the disk tier, destroys the engine and makes a new one on the
  // same options: what a restart keeps is what the disk tier kept.
  Status restart();
  engine::Engine& engine() { return *engine_; }
  const model::Model& model() const { return *model_; }
  const EngineSetup& setup() const { return setup_; }

 private:
  EngineDriver() = default;
  EngineSetup setup_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  std::unique_ptr<engine::Engine> engine_;
};

// Any OpenAI- or Anthropic-compatible server: /v1/completions (OpenAI,
// with ignore_eos, which llama.cpp's and vLLM's servers also take) or
// /v1/messages (Anthropic), streamed.
struct HttpSetup {
  std::string url;  // http://host:port
  std::string api = "openai";
  std::string model = "default";
  std::string api_key;
};
Result<std::unique_ptr<Driver>> make_http_driver(const HttpSetup& setup);

// ---- prompts ----

// N built-in prompts, a third each short (~40 words), medium (~250) and
// long (~800): made-up stories from a fixed word list and seed.
std::vector<std::string> builtin_prompts(int n);
// Prompts from a file: JSON lines with a "prompt" field (.jsonl), else
// blocks of text separated by blank lines.
Result<std::vector<std::string>> load_prompts(const std::string& path);
// A prompt of about TOKENS tokens (exactly, when the driver counts) made of
// made-up text starting with TAG, so prompts with different tags share no
// prefix.
std::string sized_prompt(Driver& d, int64_t tokens, const std::string& tag);

// ---- reporting ----

struct Stats {
  double avg = 0, p50 = 0, p99 = 0, min = 0, max = 0;
};
Stats stats_of(std::vector<double> v);
json stats_json(const Stats& s);

// A progress bar on stderr (only when it is a terminal).
class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  void tick(int64_t n = 1);

 private:
  void draw();
  std::string label_;
  int64_t total_, done_ = 0;
  bool tty_;
};

// CPU, cores, SIMD targets, memory: where the figures come from.
json machine_json();

// An SVG line chart: one or more series of (x, y) points.
struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
};
struct Chart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  bool log_y = false;
};
// Charts side by side in one SVG file.
Status write_svg(const std::string& path, const std::vector<Chart>& charts);

// ---- scenarios (each prints its table and returns its JSON) ----

struct ThroughputOptions {
  std::vector<std::string> prompts;
  int max_tokens = 64;
  std::vector<int> concurrency{1, 2, 4, 5, 8, 16};
};
Result<json> bench_throughput(Driver& d, const ThroughputOptions& o, std::vector<Chart>* charts);

struct ResumeOptions {
  std::vector<int64_t> lengths{50, 3500, 30000};
  int new_tokens = 32;  // the follow-up adds this many tokens to the cached prefix
  bool drop_page_cache = false;
};
// RESTART_DRIVER (may be null: --url) gives the disk-after-restart column.
Result<json> bench_resume(Driver& d, EngineDriver* restart_driver, const ResumeOptions& o, std::vector<Chart>* charts);

struct MemoryOptions {
  int agents = 10;
  int64_t shared_tokens = 20000;
  int64_t private_tokens = 256;
  int64_t session_tokens = 4096;
};
Result<json> bench_memory(EngineDriver& d, const MemoryOptions& o);

}  // namespace tandem::bench

// tandem serve: the HTTP server (Anthropic Messages + OpenAI APIs) over
// one model, with continuous batching and the prefix cache.
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/memory_budget.h"
#include "model/model.h"
#include "server/server.h"
#include "server/service.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <thread>

namespace tandem::cli {
namespace {

struct ServeOptions {
  std::string model, model_name, kv_type = "f16";
  std::string host = "127.0.0.1";
  int port = 8000;
  std::vector<std::string> api_keys, aliases, logit_bias;
  int64_t ctx = 0;
  int threads = 0;
  int max_tokens_cap = 0;
  int max_queue = 256;
  double kv_memory_mb = 0, kv_memory_percent = 0.20;
  double max_body_mb = 64;
  int http_threads = 64;
  bool quiet = false;
  engine::EngineOptions engine;
};

// "TOKEN=BIAS": TOKEN is an id or a token's text ("<|im_end|>=4").
Result<std::pair<int32_t, float>> parse_logit_bias(const std::string& spec, const tokenizer::Vocab& vocab) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0) return Status::errorf("--logit-bias '{}': expected TOKEN=BIAS", spec);
  const std::string token = spec.substr(0, eq);
  char* end = nullptr;
  const float bias = std::strtof(spec.c_str() + eq + 1, &end);
  if (*end != '\0' || end == spec.c_str() + eq + 1) return Status::errorf("--logit-bias '{}': BIAS is not a number", spec);
  int32_t id = vocab.find(token);
  if (id < 0 && token.find_first_not_of("0123456789") == std::string::npos) id = std::atoi(token.c_str());
  if (id < 0 || static_cast<size_t>(id) >= vocab.size()) {
    return Status::errorf("--logit-bias '{}': no token '{}' in the vocabulary", spec, token);
  }
  return std::make_pair(id, bias);
}

int serve(ServeOptions o) {
  // SIGINT / SIGTERM stop the server from a thread of their own (nothing
  // async-signal-unsafe runs in a handler). Blocked before any thread
  // starts, so every thread inherits the mask and only sigwait() sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!o.quiet) spdlog::set_level(spdlog::level::info);
  else spdlog::set_level(spdlog::level::warn);
  const auto kv_type = kernels::parse_kv_type(o.kv_type);
  if (!kv_type) return fail(fmt::format("unknown --kv-type '{}' ({})", o.kv_type, kernels::kv_type_names()));
  o.engine.kv_type = *kv_type;
  std::vector<server::ApiKey> keys;
  for (const auto& spec : o.api_keys) {
    auto k = server::parse_api_key(spec);
    if (!k) return fail(k.message());
    keys.push_back(*k);
  }
  auto budget = engine::kv_budget_bytes(o.kv_memory_mb, o.kv_memory_percent);
  if (!budget) return fail(budget.message());
  o.engine.kv_bytes = *budget;

  model::Model::Options mo;
  mo.ctx = o.ctx;
  mo.n_threads = o.threads;
  mo.limits.max_tokens = o.engine.max_batch_tokens;
  mo.limits.max_sequences = o.engine.max_batch_size;
  auto loaded = model::Model::load(o.model, mo);
  if (!loaded) return fail(loaded.message());
  model::Model& m = **loaded;
  auto tok = tokenizer::Tokenizer::from_gguf(m.file());
  if (!tok) return fail(tok.message());
  auto engine = engine::Engine::create(m, *tok, o.engine);
  if (!engine) return fail(engine.message());

  server::ServiceOptions so;
  for (const auto& spec : o.logit_bias) {
    auto bias = parse_logit_bias(spec, tok->vocab());
    if (!bias) return fail(bias.message());
    so.logit_bias.push_back(*bias);
  }
  so.model_name = o.model_name.empty() ? std::filesystem::path(o.model).stem().string() : o.model_name;
  so.max_tokens_cap = o.max_tokens_cap;
  so.max_queue = o.max_queue;
  auto service = server::Service::create(**engine, *tok, so);
  if (!service) return fail(service.message());

  server::ServerOptions sopt;
  sopt.host = o.host;
  sopt.port = o.port;
  sopt.api_keys = keys;
  sopt.model_aliases = o.aliases;
  sopt.max_body_bytes = static_cast<size_t>(o.max_body_mb * 1024 * 1024);
  sopt.http_threads = o.http_threads;
  server::Server srv(**service, sopt);
  if (auto st = srv.bind(); !st.ok()) return fail(st.message());

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("stopping (signal {})", sig);
    srv.stop();
  });
  waiter.detach();

  const auto& c = m.config();
  const std::string url = fmt::format("http://{}:{}", o.host == "0.0.0.0" ? "127.0.0.1" : o.host, srv.port());
  fmt::print("tandem: serving {} ({}, {} layers, context {}) at {}\n", so.model_name, c.arch_name, c.n_layers, c.ctx, url);
  const kv::KvShape kv_shape = m.kv_shape(o.engine.kv_type, o.engine.block_tokens);
  fmt::print("tandem: KV cache {:.0f} MiB {} ({} tokens), batch up to {} sequences / {} tokens per step{}\n",
             static_cast<double>(o.engine.kv_bytes) / (1 << 20), kernels::kv_type_name(o.engine.kv_type),
             o.engine.kv_bytes / kv_shape.block_bytes() * static_cast<size_t>(kv_shape.block_tokens),
             o.engine.max_batch_size, o.engine.max_batch_tokens,
             (*service)->uses_fallback_template() ? "; no chat template in the model: using ChatML" : "");
  fmt::print("tandem: use it from Claude Code with:\n  ANTHROPIC_BASE_URL={} claude\n", url);
  fmt::print("tandem: or any OpenAI client with base URL {}/v1\n", url);
  std::fflush(stdout);
  srv.run();
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("serve", "Serve a model over the Anthropic Messages and OpenAI APIs");
  auto o = std::make_shared<ServeOptions>();
  o->model = default_model_path();
  cmd->add_option("-m,--model", o->model, "GGUF model (default: the model shipped in models/)");
  cmd->add_option("--model-name", o->model_name, "Name reported to clients (default: the file name)");
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0: any free port)")->capture_default_str();
  cmd->add_option("--api-key", o->api_keys, "Accepted key, KEY or KEY:high|normal|low (repeatable; none: no auth)");
  cmd->add_option("--model-alias", o->aliases,
                  "Model name clients may ask for (repeatable; none: any name maps to the loaded model)");
  cmd->add_option("--ctx", o->ctx, "Context length (default: the model's)");
  cmd->add_option("-t,--threads", o->threads, "Compute threads (default: one per core)");
  cmd->add_option("--max-tokens-cap", o->max_tokens_cap, "Upper bound on a request's max_tokens (0: the context)")
      ->capture_default_str();
  cmd->add_option("--max-queue", o->max_queue, "Requests queued or running at once; more get 529/503")
      ->capture_default_str();
  cmd->add_option("--kv-memory-mb", o->kv_memory_mb, "KV cache budget in MiB (default: --kv-memory-percent)");
  cmd->add_option("--kv-memory-percent", o->kv_memory_percent, "KV cache budget as a fraction of available RAM")
      ->capture_default_str();
  cmd->add_option("--kv-type", o->kv_type, std::string("KV cache type: ") + kernels::kv_type_names())
      ->capture_default_str();
  cmd->add_option("--max-batch-tokens", o->engine.max_batch_tokens, "Tokens per engine step")->capture_default_str();
  cmd->add_option("--max-batch-size", o->engine.max_batch_size, "Sequences per engine step")->capture_default_str();
  cmd->add_option("--batch-wait-ms", o->engine.batch_wait_ms, "Wait for near-simultaneous requests to start together")
      ->capture_default_str();
  cmd->add_option("--aging", o->engine.aging_per_s, "Priority levels a waiting request gains per second")
      ->capture_default_str();
  cmd->add_option("--stream-interval", o->engine.stream_interval, "Tokens per streamed delta")->capture_default_str();
  cmd->add_option("--max-sessions", o->engine.max_sessions, "Sessions active at once (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--max-tokens-per-session", o->engine.max_tokens_per_session,
                  "Prompt + generated tokens of one request (0: the context)")
      ->capture_default_str();
  cmd->add_option("--max-body-mb", o->max_body_mb, "Largest request body (larger: 413)")->capture_default_str();
  cmd->add_option("--http-threads", o->http_threads, "Connections served at once")->capture_default_str();
  cmd->add_option("--logit-bias", o->logit_bias,
                  "TOKEN=BIAS added to every request's logits; TOKEN is an id or a token's text (repeatable)");
  cmd->add_flag("--quiet", o->quiet, "Log warnings only (not every request)");
  cmd->callback([=, &action] { action = [=] { return serve(*o); }; });
}

}  // namespace tandem::cli

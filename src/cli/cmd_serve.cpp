// tandem serve: the HTTP server (Anthropic Messages + OpenAI APIs) over
// one model, with continuous batching and the prefix cache.
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/model_options.h"
#include "engine/memory_budget.h"
#include "hf/folder.h"
#include "kernels/attention.h"
#include "kernels/kv_type.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "server/log.h"
#include "server/server.h"
#include "server/service.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

namespace tandem::cli {
namespace {

struct ServeOptions {
  std::string model, model_name, kv_type = "auto";
  std::string host = "127.0.0.1";
  int port = 8000;
  std::vector<std::string> api_keys, aliases, logit_bias;
  std::string cache_scope;              // "": key with API keys, else shared
  std::vector<std::string> a2a_agents;  // NAME=SYSTEM_PROMPT_FILE
  std::string node_id;
  int64_t ctx = 0;
  int threads = 0;
  int max_tokens_cap = 0;
  int max_queue = 256;
  double kv_memory_mb = 0, kv_memory_percent = 0.20;
  double max_body_mb = 64;
  int http_threads = 64;
  bool quiet = false;
  std::string log_format = "text", log_file, chat_template, dump_dir;
  std::string cache_dir, admin_key;
  double cache_disk_mb = 0;  // 0: 20% of the free space, at most 50 GiB
  bool no_disk_cache = false;
  double shutdown_grace_s = 10;
  engine::EngineOptions engine;
};

// The default disk tier folder: $XDG_CACHE_HOME/tandem or ~/.cache/tandem.
std::string default_cache_base() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') return std::string(x) + "/tandem";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h == '/') return std::string(h) + "/.cache/tandem";
  return "/tmp/tandem-cache";
}

// The model file's stem as cache folders name it: [A-Za-z0-9._-], at most 64.
std::string cache_stem(const std::string& model_path) {
  std::string stem = std::filesystem::path(model_path).stem().string();
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  if (stem.empty() || stem[0] == '.') stem = "model" + stem;
  return stem.substr(0, 64);
}

// One folder per model and KV type under BASE, so switching models keeps
// each one's blocks: "<file stem>-<fingerprint>-<kv type>".
std::string model_cache_dir(const std::string& base, const std::string& model_path, uint64_t fingerprint,
                            const std::string& kv_type) {
  return fmt::format("{}/{}-{:016x}-{}", base, cache_stem(model_path), fingerprint, kv_type);
}

// The other folders of this model's stem under BASE ("<stem>-<16 hex>-<kv
// type>" but CURRENT: another build's fingerprint, another file of that
// name, another KV type) and the bytes of their files. Nothing removes
// them (another tandem may still use one), so start-up reports them.
struct OtherCaches {
  int folders = 0;
  uint64_t bytes = 0;
};
OtherCaches other_cache_dirs(const std::string& base, const std::string& model_path, const std::string& current) {
  namespace fs = std::filesystem;
  OtherCaches out;
  const std::string prefix = cache_stem(model_path) + "-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec) || fs::path(current).filename() == name || name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // <16 hex>-<kv type>
    if (rest.size() < 18 || rest[16] != '-' || !kernels::parse_kv_type(rest.substr(17))) continue;
    if (!std::all_of(rest.begin(), rest.begin() + 16,
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
      continue;
    ++out.folders;
    for (const auto& f : fs::recursive_directory_iterator(entry.path(), ec)) {
      if (f.is_regular_file(ec)) out.bytes += f.file_size(ec);
    }
  }
  return out;
}

// 20% of the free space where the tier lives, at most 50 GiB.
uint64_t default_disk_budget(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p(dir);
  while (!p.empty() && !std::filesystem::exists(p, ec)) p = p.parent_path();
  const auto space = std::filesystem::space(p.empty() ? std::filesystem::path("/") : p, ec);
  if (ec) return 4ull << 30;
  return std::min<uint64_t>(space.available / 5, 50ull << 30);
}

// "TOKEN=BIAS": TOKEN is an id or a token's text ("<|im_end|>=4").
Result<std::pair<int32_t, float>> parse_logit_bias(const std::string& spec, const tokenizer::Vocab& vocab) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0) return Status::errorf("--logit-bias '{}': expected TOKEN=BIAS", spec);
  const std::string token = spec.substr(0, eq);
  char* end = nullptr;
  const float bias = std::strtof(spec.c_str() + eq + 1, &end);
  if (*end != '\0' || end == spec.c_str() + eq + 1)
    return Status::errorf("--logit-bias '{}': BIAS is not a number", spec);
  int32_t id = vocab.find(token);
  if (id < 0 && token.find_first_not_of("0123456789") == std::string::npos) id = std::atoi(token.c_str());
  if (id < 0 || static_cast<size_t>(id) >= vocab.size()) {
    return Status::errorf("--logit-bias '{}': no token '{}' in the vocabulary", spec, token);
  }
  return std::make_pair(id, bias);
}

// The engine over M with its disk tier when it can open one; a server
// without its disk tier still serves (e.g. another tandem has this model's
// folder): said loudly, and DISK_NOTE says why for the banner.
Result<std::unique_ptr<engine::Engine>> open_engine(ServeOptions& o, model::Model& m, const tokenizer::Tokenizer& tok,
                                                    std::string* disk_note) {
  *disk_note = "off (--no-disk-cache)";
  if (!o.no_disk_cache) {
    const std::string base = o.cache_dir.empty() ? default_cache_base() : o.cache_dir;
    o.engine.cache_dir = model_cache_dir(base, o.model, m.fingerprint(), kernels::kv_type_name(o.engine.kv_type));
    o.engine.cache_disk_bytes = o.cache_disk_mb > 0 ? static_cast<uint64_t>(o.cache_disk_mb * 1024 * 1024)
                                                    : default_disk_budget(o.engine.cache_dir);
  }
  auto engine = engine::Engine::create(m, tok, o.engine);
  if (!engine && !o.engine.cache_dir.empty()) {
    spdlog::warn("disk tier disabled: {}", engine.message());
    *disk_note = fmt::format("off ({})", engine.message());
    o.engine.cache_dir.clear();
    engine = engine::Engine::create(m, tok, o.engine);
  } else if (engine && !o.engine.cache_dir.empty()) {
    const auto em = (*engine)->metrics();
    *disk_note = fmt::format("{} ({:.1f} of {:.0f} MiB used, {} blocks, {} sessions)", o.engine.cache_dir,
                             static_cast<double>(em.disk_bytes) / (1 << 20),
                             static_cast<double>(o.engine.cache_disk_bytes) / (1 << 20), em.disk_blocks,
                             (*engine)->sessions().size());
  }
  return engine;
}

Result<server::ServiceOptions> service_options(const ServeOptions& o, const tokenizer::Vocab& vocab) {
  server::ServiceOptions so;
  for (const auto& spec : o.logit_bias) {
    auto bias = parse_logit_bias(spec, vocab);
    if (!bias) return bias.status();
    so.logit_bias.push_back(*bias);
  }
  so.model_name = o.model_name.empty() ? std::filesystem::path(o.model).stem().string() : o.model_name;
  so.max_tokens_cap = o.max_tokens_cap;
  so.max_queue = o.max_queue;
  auto chat_template = read_chat_template(o.chat_template);
  if (!chat_template) return chat_template.status();
  so.chat_template = std::move(*chat_template);
  return so;
}

// 1-64 letters, digits, '_', '.' or '-': names that go into URLs, headers and metric labels as they are.
bool is_plain_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == std::string::npos;
}

// NAME=SYSTEM_PROMPT_FILE: an A2A agent; its description is the prompt's first line.
Result<server::a2a::Agent> read_a2a_agent(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::errorf("--a2a-agent '{}': expected NAME=SYSTEM_PROMPT_FILE", spec);
  }
  server::a2a::Agent a;
  a.name = spec.substr(0, eq);
  if (!is_plain_name(a.name)) {
    return Status::errorf("--a2a-agent '{}': a name is 1-64 letters, digits, '_', '.' or '-'", a.name);
  }
  const std::string path = spec.substr(eq + 1);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("--a2a-agent {}: cannot read {}", a.name, path);
  a.system_prompt.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (a.system_prompt.size() > (1u << 20)) return Status::errorf("--a2a-agent {}: {} is over 1 MiB", a.name, path);
  a.description = a.system_prompt.substr(0, a.system_prompt.find('\n'));
  if (a.description.size() > 200) a.description = a.description.substr(0, 197) + "...";
  if (a.description.empty()) a.description = "Agent " + a.name;
  return a;
}

Result<server::ServerOptions> server_options(const ServeOptions& o) {
  server::ServerOptions sopt;
  for (const auto& spec : o.api_keys) {
    auto k = server::parse_api_key(spec);
    if (!k) return k.status();
    sopt.api_keys.push_back(*k);
  }
  sopt.host = o.host;
  sopt.port = o.port;
  sopt.model_aliases = o.aliases;
  sopt.max_body_bytes = static_cast<size_t>(o.max_body_mb * 1024 * 1024);
  sopt.http_threads = o.http_threads;
  sopt.admin_key = o.admin_key;
  if (!o.node_id.empty() && !is_plain_name(o.node_id)) {
    return Status::errorf("--node-id '{}': up to 64 letters, digits, '_', '.' or '-'", o.node_id);
  }
  sopt.node_id = o.node_id;
  sopt.cache_scope = sopt.api_keys.empty() ? server::CacheScope::kShared : server::CacheScope::kKey;
  if (!o.cache_scope.empty()) {
    auto scope = server::parse_cache_scope(o.cache_scope);
    if (!scope) return Status::errorf("--cache-scope: expected shared or key, got '{}'", o.cache_scope);
    if (*scope == server::CacheScope::kKey && sopt.api_keys.empty()) {
      return Status::error("--cache-scope key needs API keys (--api-key)");
    }
    sopt.cache_scope = *scope;
  }
  for (const auto& spec : o.a2a_agents) {
    auto agent = read_a2a_agent(spec);
    if (!agent) return agent.status();
    for (const auto& other : sopt.a2a_agents) {
      if (other.name == agent->name) return Status::errorf("--a2a-agent: '{}' is given twice", agent->name);
    }
    sopt.a2a_agents.push_back(std::move(*agent));
  }
  if (!o.dump_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.dump_dir, ec);
    if (ec) return Status::errorf("--dump-requests {}: {}", o.dump_dir, ec.message());
    sopt.dump_dir = o.dump_dir;
  }
  return sopt;
}

// Shutdown on the first of SIGNALS: refuse new work, let running requests
// finish within GRACE_S (a second signal cuts it short), cancel the rest,
// stop listening; serve() then flushes the disk tier. SRV and ENG outlive
// the thread (serve() returns after srv.run(), which returns after stop()).
void start_shutdown_waiter(const sigset_t& signals, server::Server& srv, engine::Engine& eng, double grace_s) {
  std::thread waiter([&srv, &eng, grace_s, set = signals] {
    int sig = 0;
    sigwait(&set, &sig);
    spdlog::info("stopping (signal {}): finishing running requests for up to {} s", sig, grace_s);
    srv.begin_shutdown();
    // The second waiter may outlive this frame (a second signal during the
    // disk flush, or none at all): it owns what it touches.
    auto cut = std::make_shared<std::atomic<bool>>(false);
    std::thread second([cut, set] {
      int again = 0;
      sigwait(&set, &again);
      cut->store(true);
    });
    second.detach();
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
    while (!cut->load() && std::chrono::steady_clock::now() < until && !eng.wait_idle(std::chrono::milliseconds(100))) {
    }
    eng.cancel_all();
    eng.wait_idle(std::chrono::seconds(10));
    srv.stop();
  });
  waiter.detach();
}

// The start-up lines: stdout for people; with --log-format json they are
// log records too.
void print_banner(const ServeOptions& o, model::Model& m, const server::Service& service, int port,
                  const std::string& disk_note, bool json_log) {
  auto say = [json_log](const std::string& line) {
    fmt::print("tandem: {}\n", line);
    if (json_log) spdlog::info("{}", line);
  };
  const auto& c = m.config();
  const std::string url = fmt::format("http://{}:{}", o.host == "0.0.0.0" ? "127.0.0.1" : o.host, port);
  say(fmt::format("serving {} ({}, {} layers, context {}) at {}", service.options().model_name, c.arch_name, c.n_layers,
                  c.ctx, url));
  if (auto source = m.file().get_string(hf::kSourceKey)) say("weights: " + *source);
  say(fmt::format("compute: {} threads, {}", m.pool().size(), kernels::compute_path_summary()));
  const kv::KvShape kv_shape = m.kv_shape(o.engine.kv_type, o.engine.block_tokens);
  say(fmt::format(
      "KV cache {:.0f} MiB {} ({} tokens, attention on {}), batch up to {} sequences / {} tokens per step{}",
      static_cast<double>(o.engine.kv_bytes) / (1 << 20), kernels::kv_type_name(o.engine.kv_type),
      o.engine.kv_bytes / kv_shape.block_bytes() * static_cast<size_t>(kv_shape.block_tokens),
      kernels::attention_runs_on_tiles(o.engine.kv_type, c.head_dim, o.engine.block_tokens) ? "AMX tiles" : "f32 SIMD",
      o.engine.max_batch_size, o.engine.max_batch_tokens,
      service.uses_fallback_template() ? "; no chat template in the model: using ChatML"
      : o.chat_template.empty()        ? ""
                                       : "; chat template: " + o.chat_template));
  say(fmt::format("KV disk tier: {}", disk_note));
  if (!o.engine.redis_url.empty())
    say(fmt::format("KV Redis tier: {} (shared by every node of this model)", o.engine.redis_url));
  if (!o.api_keys.empty()) {
    say(o.cache_scope == "shared" ? "cached prefixes: shared by every API key (--cache-scope shared)"
                                  : "cached prefixes: shared only among requests of one API key (--cache-scope key)");
  }
  if (!o.engine.cache_dir.empty()) {
    const std::string base = std::filesystem::path(o.engine.cache_dir).parent_path().string();
    if (const OtherCaches other = other_cache_dirs(base, o.model, o.engine.cache_dir); other.folders > 0) {
      say(
          fmt::format("other cache folders of this model in {} (other builds or KV types, not read now): {}, "
                      "{:.1f} MiB; delete them to free the space",
                      base, other.folders, static_cast<double>(other.bytes) / (1 << 20)));
    }
  }
  if (!o.log_file.empty()) say(fmt::format("log: {} ({})", o.log_file, o.log_format));
  if (!o.dump_dir.empty()) say(fmt::format("request bodies are written to {}", o.dump_dir));
  fmt::print("tandem: use it from Claude Code with:\n  ANTHROPIC_BASE_URL={} claude\n", url);
  fmt::print("tandem: or any OpenAI client with base URL {}/v1\n", url);
  fmt::print("tandem: A2A agents: {}/.well-known/agent-card.json{}\n", url,
             o.a2a_agents.empty() ? " (one agent, 'default'; --a2a-agent NAME=FILE adds named ones)" : "");
  std::fflush(stdout);
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
  const auto log_format = server::parse_log_format(o.log_format);
  if (!log_format) return fail(fmt::format("--log-format '{}': expected text or json", o.log_format));
  if (auto st = server::configure_logging({*log_format, o.log_file, o.quiet}); !st.ok()) return fail(st.message());
  if (std::string why = check_kv_type_option(o.kv_type); !why.empty()) return fail(why);
  auto sopt = server_options(o);
  if (!sopt) return fail(sopt.message());
  auto budget = engine::kv_budget_bytes(o.kv_memory_mb, o.kv_memory_percent);
  if (!budget) return fail(budget.message());
  o.engine.kv_bytes = *budget;

  auto loaded = model::Model::load(o.model, engine::model_options_for(o.engine, o.ctx, o.threads));
  if (!loaded) return fail(loaded.message());
  model::Model& m = **loaded;
  page_in_weights(m);
  auto tok = tokenizer::Tokenizer::from_gguf(m.file());
  if (!tok) return fail(tok.message());
  o.engine.kv_type = resolve_kv_type_option(o.kv_type, m.config().head_dim, o.engine.block_tokens);
  std::string disk_note;
  auto engine = open_engine(o, m, *tok, &disk_note);
  if (!engine) return fail(engine.message());
  auto so = service_options(o, tok->vocab());
  if (!so) return fail(so.message());
  auto service = server::Service::create(**engine, *tok, *so);
  if (!service) return fail(service.message());
  server::Server srv(**service, *sopt);
  if (auto st = srv.bind(); !st.ok()) return fail(st.message());

  engine::Engine& eng = **engine;
  start_shutdown_waiter(signals, srv, eng, o.shutdown_grace_s);
  print_banner(o, m, **service, srv.port(), disk_note, *log_format == server::LogFormat::kJson);
  srv.run();
  if (eng.has_disk_tier()) {
    auto flushed = eng.flush(std::chrono::seconds(60));
    if (!flushed) {
      spdlog::warn("disk tier flush: {}", flushed.message());
    } else {
      spdlog::info("disk tier flushed: {} blocks written in {:.0f} ms", flushed->written, flushed->ms);
    }
  }
  return 0;
}

}  // namespace

// Weights read before the first request, or paged on demand: see commands.h.
void page_in_weights(model::Model& m) {
  const uint64_t bytes = m.file().tensor_data_size();
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  const auto memory = engine::available_memory_bytes();
  const bool show = bytes >= kGiB;
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  int shown = 0;
  const auto r = m.bring_weights_in(memory.ok() ? *memory : 0, [&](uint64_t done, uint64_t total) {
    const int percent = static_cast<int>(done * 100 / total);
    if (!show || (percent < shown + 10 && done < total)) return;
    shown = percent;
    fmt::print("tandem: loading weights {}% ({:.1f} of {:.1f} GiB, {:.1f} s)\n", percent,
               static_cast<double>(done) / kGiB, static_cast<double>(total) / kGiB, seconds());
    std::fflush(stdout);
  });
  using Kind = model::Model::WeightsResidence::Kind;
  const std::string size = bytes >= kGiB ? fmt::format("{:.2f} GiB", static_cast<double>(bytes) / kGiB)
                                         : fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  switch (r.kind) {
    case Kind::kHugePages:
      spdlog::debug("weights: {} in memory on 2 MiB pages, {} Q8_0/Q4_0 matrices repacked ({:.1f} s){}", size,
                    r.packed_matrices, seconds(), r.note.empty() ? "" : "; " + r.note);
      break;
    case Kind::kFilePages:
      spdlog::warn("weights: {} on the file's pages ({:.1f} s; not on 2 MiB pages: {})", size, seconds(), r.note);
      break;
    case Kind::kOnDemand: spdlog::info("weights: read from disk as used ({})", r.note); break;
  }
}

void register_serve(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("serve", "Serve a model over the Anthropic Messages and OpenAI APIs");
  auto o = std::make_shared<ServeOptions>();
  o->model = default_model_path();
  cmd->add_option("-m,--model", o->model, "GGUF file or Hugging Face model folder (default: the model shipped in models/)");
  cmd->add_option("--model-name", o->model_name, "Name reported to clients (default: the file name)");
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0: any free port)")->capture_default_str();
  cmd->add_option("--api-key", o->api_keys, "Accepted key, KEY or KEY:high|normal|low (repeatable; none: no auth)");
  cmd->add_option("--redis", o->engine.redis_url,
                  "Shared KV block tier in Redis behind the disk tier: redis://host[:port][/db] or "
                  "unix:///path.sock (docs/SCALING.md)");
  cmd->add_option("--node-id", o->node_id,
                  "This node's name behind a load balancer: x-tandem-node header, log lines, /metrics label");
  cmd->add_option("--a2a-agent", o->a2a_agents,
                  "An A2A agent: NAME=SYSTEM_PROMPT_FILE (repeatable; none: one agent 'default' without a system "
                  "prompt). Cards at /.well-known/agent-card.json and /a2a/NAME/.well-known/agent-card.json");
  cmd->add_option("--cache-scope", o->cache_scope,
                  "Who shares cached prefixes: shared (every client) or key (requests of one API key; the default "
                  "when --api-key is given)");
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
  cmd->add_option("--kv-type", o->kv_type, kv_type_option_help())->capture_default_str();
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
  cmd->add_option("--chat-template", o->chat_template,
                  "Jinja file replacing the model's chat template (same variables: messages, tools, "
                  "add_generation_prompt, bos_token, eos_token, enable_thinking)");
  cmd->add_option("--logit-bias", o->logit_bias,
                  "TOKEN=BIAS added to every request's logits; TOKEN is an id or a token's text (repeatable)");
  cmd->add_flag("--quiet", o->quiet, "Log warnings only (not every request)");
  cmd->add_option("--log-format", o->log_format, "Log lines as text, or json (one object per line, for log shippers)")
      ->capture_default_str();
  cmd->add_option("--log-file", o->log_file, "Also append the log to this file");
  cmd->add_option("--dump-requests", o->dump_dir,
                  "Write every generation request's body to this folder (for tandem render --diff; holds prompts)");
  cmd->add_option("--cache-dir", o->cache_dir,
                  "Disk tier of the KV cache: one folder per model under it (default: ~/.cache/tandem)");
  cmd->add_option("--cache-disk-mb", o->cache_disk_mb,
                  "Disk tier budget in MiB (default: 20% of the free space, at most 50 GiB)");
  cmd->add_flag("--no-disk-cache", o->no_disk_cache, "No disk tier: KV lives in RAM only and is lost at exit");
  cmd->add_option("--admin-key", o->admin_key, "Key for the /admin/ routes (needed when --api-key is given)");
  cmd->add_option("--shutdown-grace", o->shutdown_grace_s,
                  "Seconds running requests get to finish after SIGTERM/SIGINT before they are cancelled")
      ->capture_default_str();
  cmd->callback([=, &action] { action = [=] { return serve(*o); }; });
}

}  // namespace tandem::cli

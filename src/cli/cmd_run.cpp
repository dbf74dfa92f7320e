// tandem run: generate text from a prompt with one sequence through the
// engine, streaming it as it comes, then report prompt and generation speed.
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/model_options.h"
#include "kernels/attention.h"
#include "model/model.h"
#include "server/prompt.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

namespace tandem::cli {
namespace {

struct RunOptions {
  std::string model, prompt, kv_type = "auto", system, chat_template;
  bool chat = false;  // the prompt is a user turn rendered with the chat template
  int n_predict = 128;
  int64_t ctx = 0;
  int threads = 0;
  bool json = false, special = false, ignore_eos = false;
  engine::SamplingParams sampling;
  int64_t seed = -1;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The prompt's ids: its text as is, or (--chat) a user turn (after an
// optional system turn) rendered by the chat template as the server does.
Result<std::vector<int32_t>> prompt_ids_for(const RunOptions& o, const tokenizer::Tokenizer& tok) {
  if (!o.chat && o.chat_template.empty()) {
    tokenizer::EncodeOptions enc;
    enc.add_bos = tok.adds_bos();
    enc.special = o.special ? tokenizer::SpecialTokens::kParse : tokenizer::SpecialTokens::kAsText;
    return tok.encode(o.prompt, enc);
  }
  auto source = read_chat_template(o.chat_template);
  if (!source) return source.status();
  auto prompts = server::PromptBuilder::create(tok, *source);
  if (!prompts) return prompts.status();
  server::ChatRequest chat;
  if (!o.system.empty()) chat.messages.push_back({{"role", "system"}, {"content", o.system}});
  chat.messages.push_back({{"role", "user"}, {"content", o.prompt}});
  auto text = prompts->render(chat);
  if (auto* e = std::get_if<server::ApiError>(&text)) return Status::errorf("the chat template: {}", e->message);
  return prompts->tokenize(std::get<std::string>(text));
}

// Runs the prompt through the engine (the same path as the server), one
// sequence, streaming the text as it comes.
int run_generate(RunOptions o) {
  if (o.n_predict < 0) return fail("-n must be >= 0");
  if (std::string why = check_kv_type_option(o.kv_type); !why.empty()) return fail(why);
  engine::EngineOptions eo;
  eo.max_batch_size = 1;
  eo.max_batch_tokens = 512;
  eo.batch_wait_ms = 0;
  const model::Model::Options mo = engine::model_options_for(eo, o.ctx, o.threads);
  auto loaded = model::Model::load(o.model, mo);
  if (!loaded) return fail(loaded.message());
  model::Model& m = **loaded;
  page_in_weights(m);  // as tandem serve: decode streams the weights from 2 MiB pages
  auto tok = tokenizer::Tokenizer::from_gguf(m.file());
  if (!tok) return fail(tok.message());
  eo.kv_type = resolve_kv_type_option(o.kv_type, m.config().head_dim, eo.block_tokens);

  auto prompt = prompt_ids_for(o, *tok);
  if (!prompt) return fail(prompt.message());
  const std::vector<int32_t> prompt_ids = std::move(*prompt);
  if (prompt_ids.empty()) return fail("the prompt is empty (and the model adds no BOS token)");
  const int64_t total = static_cast<int64_t>(prompt_ids.size()) + o.n_predict;
  if (total > m.config().ctx) {
    return fail(fmt::format("prompt ({} tokens) + {} new tokens exceeds the context of {}", prompt_ids.size(),
                            o.n_predict, m.config().ctx));
  }
  // KV for exactly this sequence (plus one block of slack for the last token).
  const auto shape = m.kv_shape(eo.kv_type, eo.block_tokens);
  eo.kv_bytes = shape.block_bytes() * static_cast<size_t>((total + shape.block_tokens) / shape.block_tokens + 1);
  auto engine = engine::Engine::create(m, *tok, eo);
  if (!engine) return fail(engine.message());

  o.sampling.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  std::vector<int32_t> generated;
  std::string text;
  engine::Usage usage;
  const auto t0 = std::chrono::steady_clock::now();
  if (o.n_predict > 0) {
    engine::Request req;
    req.prompt = prompt_ids;
    req.sampling = o.sampling;
    req.max_tokens = o.n_predict;
    req.ignore_eos = o.ignore_eos;
    auto stream = (*engine)->submit(std::move(req));
    const bool tty = isatty(fileno(stdout));
    for (;;) {
      auto ev = stream->next();
      if (!ev) break;
      generated.insert(generated.end(), ev->tokens.begin(), ev->tokens.end());
      text += ev->text;
      if (!o.json && !ev->text.empty()) {
        std::fwrite(ev->text.data(), 1, ev->text.size(), stdout);
        if (tty) std::fflush(stdout);
      }
      if (ev->done) {
        if (engine::failed(ev->stop)) return fail(ev->error);
        usage = ev->usage;
        break;
      }
    }
  }
  const double total_s = seconds_since(t0);
  // The first token's time covers the prompt; the rest is generation.
  const double prefill_s = o.n_predict > 0 ? usage.ttft_ms / 1000 : 0.0;
  const double gen_s = std::max(total_s - prefill_s, 0.0);
  if (o.json) {
    nlohmann::json j{{"prompt_ids", prompt_ids}, {"ids", generated}, {"text", text}, {"seed", o.sampling.seed}};
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("\n");
  }
  std::fflush(stdout);
  fmt::print(stderr, "\nprompt: {} tokens in {:.3f} s ({:.1f} tokens/s)\n", prompt_ids.size(), prefill_s,
             static_cast<double>(prompt_ids.size()) / std::max(prefill_s, 1e-9));
  fmt::print(stderr, "generation: {} tokens in {:.3f} s ({:.1f} tokens/s)\n", generated.size(), gen_s,
             static_cast<double>(generated.size()) / std::max(gen_s, 1e-9));
  return 0;
}

}  // namespace

// The model shipped in the repository: models/ next to the build folder.
std::string kv_type_option_help() {
  return std::string("KV cache type: auto (bf16 where attention runs on AMX tiles, else f16), ") +
         kernels::kv_type_names();
}

std::string check_kv_type_option(const std::string& name) {
  if (name == "auto" || kernels::parse_kv_type(name)) return "";
  return fmt::format("unknown --kv-type '{}' (auto, {})", name, kernels::kv_type_names());
}

kernels::KvType resolve_kv_type_option(const std::string& name, int head_dim, int block_tokens) {
  if (name == "auto") return kernels::auto_kv_type(head_dim, block_tokens);
  return kernels::parse_kv_type(name).value_or(kernels::KvType::kF16);
}

std::string default_model_path() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      const auto candidate = dir / "models" / "stories260K.gguf";
      if (std::filesystem::exists(candidate, ec)) return candidate.string();
    }
  }
  return "models/stories260K.gguf";
}

void register_run(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt, streaming it");
  auto o = std::make_shared<RunOptions>();
  o->model = default_model_path();
  o->sampling.temperature = 0.8f;
  o->sampling.top_k = 40;
  o->sampling.top_p = 0.95f;
  o->sampling.min_p = 0.05f;
  cmd->add_option("-m,--model", o->model, "GGUF file or Hugging Face model folder (default: the model shipped in models/)");
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repetition_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Frequency penalty")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (default: random)");
  cmd->add_option("--ctx", o->ctx, "Context length (default: the model's)");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: one per core)");
  cmd->add_option("--kv-type", o->kv_type, kv_type_option_help())->capture_default_str();
  cmd->add_flag("--special", o->special, "Recognize special tokens written in the prompt");
  cmd->add_flag("--chat", o->chat, "Send the prompt as a user turn through the model's chat template");
  cmd->add_option("--system", o->system, "With --chat: a system turn before the prompt");
  cmd->add_option("--chat-template", o->chat_template,
                  "Jinja file replacing the model's chat template (implies --chat)");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating after an end-of-generation token");
  cmd->add_flag("--json", o->json,
                "Print {\"prompt_ids\":[...],\"ids\":[...],\"text\":\"...\"} (generated part) at the end");
  cmd->callback([=, &action] { action = [=] { return run_generate(*o); }; });
}

}  // namespace tandem::cli

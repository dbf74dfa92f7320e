// tandem: a local LLM inference server for many agents at once.
#include "cli/commands.h"
#include "core/mapped_file.h"
#include "gguf/reader.h"
#include "hf/folder.h"
#include "kernels/simd_limit.h"

#include <cstdio>

namespace tandem::cli {

int fail(const std::string& message) {
  std::fprintf(stderr, "tandem: error: %s\n", message.c_str());
  return 1;
}

Result<tokenizer::Tokenizer> load_tokenizer(const std::string& path) {
  auto file = hf::open_model(path);
  if (!file) return file.status();
  auto tok = tokenizer::Tokenizer::from_gguf(*file);
  if (!tok) return tok.status().with_context(path);
  return tok;
}

Result<std::string> read_chat_template(const std::string& path) {
  if (path.empty()) return std::string();
  auto text = read_file(path);
  if (!text) return Status::errorf("--chat-template {}: {}", path, text.message());
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::errorf("--chat-template {}: the file is empty", path);
  }
  if (text->size() > (1u << 20))
    return Status::errorf("--chat-template {}: larger than 1 MiB, not a chat template", path);
  return text;
}

}  // namespace tandem::cli

int main(int argc, char** argv) {
  if (tandem::Status s = tandem::kernels::limit_simd_from_env(); !s.ok()) {
    std::fprintf(stderr, "tandem: %s\n", s.message().c_str());
    return 2;
  }
  CLI::App app{"tandem: local LLM inference for many agents at once", "tandem"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tandem 0.1.0");
  tandem::cli::Action action;
  tandem::cli::register_inspect(app, action);
  tandem::cli::register_tokenize(app, action);
  tandem::cli::register_detokenize(app, action);
  tandem::cli::register_synth(app, action);
  tandem::cli::register_run(app, action);
  tandem::cli::register_serve(app, action);
  tandem::cli::register_bench(app, action);
  tandem::cli::register_render(app, action);
  tandem::cli::register_convert(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tandem: error: %s (see tandem --help)\n", e.what());
    return 2;
  }
  return action ? action() : 0;
}

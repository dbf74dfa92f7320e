// tandem tokenize / detokenize: the model's tokenizer from the command line.
#include "cli/commands.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <iostream>
#include <iterator>

namespace tandem::cli {
namespace {

using json = nlohmann::json;

int run_tokenize(const std::string& model, std::string text, bool as_json, bool no_bos, bool special) {
  if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  auto tok = load_tokenizer(model);
  if (!tok) return fail(tok.message());
  tokenizer::EncodeOptions opts;
  opts.add_bos = tok->adds_bos() && !no_bos;
  opts.special = special ? tokenizer::SpecialTokens::kParse : tokenizer::SpecialTokens::kAsText;
  const auto ids = tok->encode(text, opts);
  const auto& tokens = tok->vocab().tokens;
  if (as_json) {
    json pieces = json::array();
    for (auto id : ids) pieces.push_back(tokens[static_cast<size_t>(id)]);
    // Pieces may hold partial UTF-8 (byte-level tokens never do; SPM byte tokens are ASCII).
    fmt::print("{}\n", json{{"ids", ids}, {"pieces", pieces}}.dump(-1, ' ', false, json::error_handler_t::replace));
    return 0;
  }
  for (auto id : ids)
    fmt::print("{:>8}  {}\n", id,
               json(tokens[static_cast<size_t>(id)]).dump(-1, ' ', false, json::error_handler_t::replace));
  fmt::print("{} tokens\n", ids.size());
  return 0;
}

int run_detokenize(const std::string& model, const std::vector<std::string>& args) {
  auto tok = load_tokenizer(model);
  if (!tok) return fail(tok.message());
  std::vector<tokenizer::TokenId> ids;
  for (const auto& arg : args) {
    // Accept "1 2 3", "1,2,3" and "[1, 2, 3]" alike.
    size_t pos = 0;
    while (pos < arg.size()) {
      while (pos < arg.size() && (arg[pos] == ',' || arg[pos] == ' ' || arg[pos] == '[' || arg[pos] == ']')) ++pos;
      if (pos >= arg.size()) break;
      int64_t id = 0;
      auto [end, ec] = std::from_chars(arg.data() + pos, arg.data() + arg.size(), id);
      if (ec != std::errc() || end == arg.data() + pos) return fail(fmt::format("'{}' is not a token id", arg));
      if (id < 0 || static_cast<uint64_t>(id) >= tok->vocab().size()) {
        return fail(fmt::format("token id {} is outside the vocabulary (0..{})", id, tok->vocab().size() - 1));
      }
      ids.push_back(static_cast<tokenizer::TokenId>(id));
      pos = static_cast<size_t>(end - arg.data());
    }
  }
  tokenizer::DecodeOptions opts;
  opts.strip_leading_space = true;
  fmt::print("{}\n", tok->decode(ids, opts));
  return 0;
}

}  // namespace

void register_tokenize(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("tokenize", "Turn text into token ids with a model's tokenizer");
  struct Opts {
    std::string model, text;
    bool json = false, no_bos = false, special = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-m,--model", o->model, "GGUF file or Hugging Face model folder")->required();
  cmd->add_option("text", o->text, "Text to tokenize ('-' reads stdin)")->required();
  cmd->add_flag("--json", o->json, "Print {\"ids\":[...],\"pieces\":[...]}");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token even if the model adds one");
  cmd->add_flag("--special", o->special,
                "Recognize special tokens written in the text (as in a chat template); "
                "by default they are plain text");
  cmd->callback(
      [=, &action] { action = [=] { return run_tokenize(o->model, o->text, o->json, o->no_bos, o->special); }; });
}

void register_detokenize(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("detokenize", "Turn token ids back into text");
  auto model = std::make_shared<std::string>();
  auto ids = std::make_shared<std::vector<std::string>>();
  cmd->add_option("-m,--model", *model, "GGUF file or Hugging Face model folder")->required();
  cmd->add_option("ids", *ids, "Token ids (space or comma separated)")->required();
  cmd->callback([=, &action] { action = [=] { return run_detokenize(*model, *ids); }; });
}

}  // namespace tandem::cli

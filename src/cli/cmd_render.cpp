// tandem render: the exact prompt a request body becomes (the server's own
// parsing, chat template and tokenizer), and where two bodies' prompts
// part, which is where the prefix cache stops serving a turn.
#include "cli/commands.h"
#include "server/render.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace tandem::cli {
namespace {

struct RenderOptions {
  std::string model, api, chat_template, input = "-", diff;
  bool ids = false, json = false;
};

Result<server::json> read_body(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::errorf("cannot read {}", path);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  try {
    return server::json::parse(text);
  } catch (const server::json::parse_error& e) {
    return Status::errorf("{}: the body is not valid JSON: {}", path == "-" ? "stdin" : path, e.what());
  }
}

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "<text before>[A: <a's text> | B: <b's text>]" around the first differing byte.
void print_difference(const server::RenderedPrompt& a, const server::RenderedPrompt& b,
                      const tokenizer::Tokenizer& tok) {
  const size_t shared = server::shared_prefix(a.ids, b.ids);
  fmt::print("A: {} tokens, B: {} tokens; they share the first {} tokens ({:.1f}% of A)\n", a.ids.size(), b.ids.size(),
             shared, a.ids.empty() ? 100.0 : 100.0 * static_cast<double>(shared) / static_cast<double>(a.ids.size()));
  if (shared == a.ids.size() && shared == b.ids.size()) {
    fmt::print("the prompts are identical: B is served from the cache after A\n");
    return;
  }
  size_t at = 0;
  while (at < a.text.size() && at < b.text.size() && a.text[at] == b.text[at]) ++at;
  const size_t from = at > 160 ? at - 160 : 0;
  fmt::print("first different token: #{} (A: {}, B: {}); first different byte of the text: {}\n", shared,
             shared < a.ids.size() ? quoted(tok.vocab().tokens[static_cast<size_t>(a.ids[shared])]) : "end",
             shared < b.ids.size() ? quoted(tok.vocab().tokens[static_cast<size_t>(b.ids[shared])]) : "end", at);
  fmt::print("before: {}\nA then: {}\nB then: {}\n", quoted(a.text.substr(from, at - from)),
             quoted(a.text.substr(at, 160)), quoted(b.text.substr(at, 160)));
}

int run_render(const RenderOptions& o) {
  std::optional<server::BodyApi> api;
  if (!o.api.empty()) {
    api = server::parse_body_api(o.api);
    if (!api) return fail(fmt::format("--api '{}': expected anthropic, openai, completions or responses", o.api));
  }
  auto tok = load_tokenizer(o.model);
  if (!tok) return fail(tok.message());
  auto source = read_chat_template(o.chat_template);
  if (!source) return fail(source.message());
  auto prompts = server::PromptBuilder::create(*tok, *source);
  if (!prompts) return fail(prompts.message());

  server::BodyApi used = server::BodyApi::kOpenAiChat;  // of the last body rendered
  auto render = [&](const std::string& path) -> Result<server::RenderedPrompt> {
    auto body = read_body(path);
    if (!body) return body.status();
    used = api ? *api : server::guess_body_api(*body);
    auto r = server::render_body(*prompts, used, *body);
    if (auto* e = std::get_if<server::ApiError>(&r)) {
      return Status::errorf("{}: {}", path == "-" ? "stdin" : path, e->message);
    }
    return std::get<server::RenderedPrompt>(std::move(r));
  };
  auto a = render(o.input);
  if (!a) return fail(a.message());
  if (!o.diff.empty()) {
    auto b = render(o.diff);
    if (!b) return fail(b.message());
    print_difference(*a, *b, *tok);
    return 0;
  }
  if (o.json) {
    fmt::print(
        "{}\n",
        nlohmann::ordered_json{
            {"api", server::body_api_name(used)}, {"prompt", a->text}, {"tokens", a->ids.size()}, {"ids", a->ids}}
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (o.ids) {
    // One token a line, "id<TAB>piece": two prompts diff line by line.
    for (int32_t id : a->ids) fmt::print("{}\t{}\n", id, quoted(tok->vocab().tokens[static_cast<size_t>(id)]));
  } else {
    fmt::print("{}", a->text);
  }
  return 0;
}

}  // namespace

void register_render(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("render", "Print the prompt a request body becomes (chat template + tokenizer)");
  auto o = std::make_shared<RenderOptions>();
  o->model = default_model_path();
  cmd->add_option("body", o->input, "Request body: a JSON file, or - for stdin")->capture_default_str();
  cmd->add_option("-m,--model", o->model, "GGUF model whose template and tokenizer render (default: models/)");
  cmd->add_option("--api", o->api,
                  "The body's API: anthropic (/v1/messages), openai (/v1/chat/completions), completions, responses "
                  "(default: guessed from the body)");
  cmd->add_option("--chat-template", o->chat_template, "Jinja file replacing the model's chat template");
  cmd->add_flag("--ids", o->ids, "Print the token ids, one per line with its piece");
  cmd->add_flag("--json", o->json, "Print {api, prompt, tokens, ids}");
  cmd->add_option("--diff", o->diff, "Another body: where its prompt parts from this one's (first different token)");
  cmd->callback([=, &action] { action = [=] { return run_render(*o); }; });
}

}  // namespace tandem::cli

#include "server/service.h"

#include "server/fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace tandem::server {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> return_markers(chat::ToolCallFormat f) {
  switch (f) {
    case chat::ToolCallFormat::kHermes:
    case chat::ToolCallFormat::kQwen3Coder: return {"<tool_call>"};
    case chat::ToolCallFormat::kLlama3: return {"<|python_tag|>", "{\"name\""};
    case chat::ToolCallFormat::kMistral: return {"[TOOL_CALLS]"};
    case chat::ToolCallFormat::kHarmony: return {"to=functions."};
    case chat::ToolCallFormat::kNone: break;
  }
  return {};
}

// True when the rendered prompt leaves the model inside a <think> block
// (templates that open it for the model).
bool ends_in_open_think(const std::string& prompt) {
  const size_t open = prompt.rfind("<think>");
  if (open == std::string::npos) return false;
  if (prompt.find("</think>", open) != std::string::npos) return false;
  return prompt.find_first_not_of(" \n", open + 7) == std::string::npos;
}

}  // namespace

ApiError completion_error(const Completion& c) {
  if (c.stop == engine::StopReason::kRefused) return {ErrorKind::kRateLimit, c.error};
  return {ErrorKind::kInternal, c.error};
}

int http_status(ErrorKind kind, bool anthropic) {
  switch (kind) {
    case ErrorKind::kInvalidRequest: return 400;
    case ErrorKind::kAuthentication: return 401;
    case ErrorKind::kPermission: return 403;
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kConflict: return 409;
    case ErrorKind::kTooLarge: return 413;
    case ErrorKind::kRateLimit: return 429;
    case ErrorKind::kInternal: return 500;
    case ErrorKind::kOverloaded: return anthropic ? 529 : 503;
  }
  return 500;
}

Result<std::unique_ptr<Service>> Service::create(engine::Engine& engine, const tokenizer::Tokenizer& tokenizer,
                                                 const ServiceOptions& options) {
  auto prompts = PromptBuilder::create(tokenizer, options.chat_template);
  if (!prompts) return prompts.status();
  return std::unique_ptr<Service>(new Service(engine, std::move(*prompts), options));
}

ApiResult<Prepared> Service::prepare(const ChatRequest& chat, const std::string& tool_id_prefix) const {
  auto text = prompts_.render(chat);
  if (auto* e = std::get_if<ApiError>(&text)) return *e;
  Prepared p;
  p.prompt_text = std::move(std::get<std::string>(text));
  auto& r = p.request;
  r.prompt = prompts_.tokenize(p.prompt_text);
  r.session = chat.session;
  r.cache_namespace = chat.cache_namespace;
  r.priority = chat.priority;
  r.sampling = chat.sampling;
  r.ignore_eos = chat.ignore_eos;
  r.sampling.logit_bias.insert(r.sampling.logit_bias.end(), opt_.logit_bias.begin(), opt_.logit_bias.end());
  r.stop = chat.stop;
  r.return_markers = return_markers(prompts_.tool_format());
  const int64_t room = context_length() - static_cast<int64_t>(r.prompt.size());
  int64_t max_tokens =
      chat.max_tokens ? *chat.max_tokens : (opt_.default_max_tokens > 0 ? opt_.default_max_tokens : room);
  if (opt_.max_tokens_cap > 0) max_tokens = std::min<int64_t>(max_tokens, opt_.max_tokens_cap);
  r.max_tokens = static_cast<int>(std::clamp<int64_t>(std::min(max_tokens, room), 1, 1 << 30));
  if (chat.max_tokens && *chat.max_tokens <= 0) {
    return ApiError{ErrorKind::kInvalidRequest, "max_tokens must be at least 1", "max_tokens"};
  }
  if (std::string error = engine_.check(r); !error.empty())
    return ApiError{ErrorKind::kInvalidRequest, error, "messages"};
  const bool harmony = !chat.raw_prompt && prompts_.tool_format() == chat::ToolCallFormat::kHarmony;
  p.parser.format = harmony                                 ? chat::ToolCallFormat::kHarmony
                    : chat.raw_prompt || chat.tools.empty() ? chat::ToolCallFormat::kNone
                                                            : prompts_.tool_format();
  r.render_special = harmony;
  p.parser.reasoning = !chat.raw_prompt;
  p.parser.starts_in_reasoning = !chat.raw_prompt && ends_in_open_think(p.prompt_text);
  p.parser.tool_id_prefix = tool_id_prefix;
  if (p.parser.format == chat::ToolCallFormat::kQwen3Coder) {
    // Qwen3-Coder writes parameters as text; their JSON types come from the schemas.
    p.parser.param_type = [tools = chat.tools](std::string_view tool, std::string_view param) -> std::string {
      for (const auto& t : tools) {
        const json& fn = t.contains("function") ? t["function"] : t;
        if (string_or_empty(fn, "name") != tool || !fn.contains("parameters")) continue;
        const json& params = fn["parameters"];
        if (!params.is_object() || !params.contains("properties") || !params["properties"].is_object()) continue;
        auto it = params["properties"].find(std::string(param));
        if (it != params["properties"].end()) return string_or_empty(*it, "type");
      }
      return "";
    };
  }
  return p;
}

ApiResult<int64_t> Service::count_tokens(const ChatRequest& chat) const {
  auto text = prompts_.render(chat);
  if (auto* e = std::get_if<ApiError>(&text)) return *e;
  return static_cast<int64_t>(prompts_.tokenize(std::get<std::string>(text)).size());
}

ApiResult<Completion> Service::run(Prepared prepared, const StreamCallbacks* callbacks) {
  if (in_flight_.fetch_add(1) >= opt_.max_queue) {
    in_flight_.fetch_sub(1);
    return ApiError{ErrorKind::kOverloaded,
                    fmt::format("tandem is overloaded: {} requests are already queued or running", opt_.max_queue)};
  }
  struct Release {
    std::atomic<int64_t>& n;
    ~Release() { n.fetch_sub(1); }
  } release{in_flight_};

  chat::OutputParser parser(prepared.parser);
  auto stream = engine_.submit(std::move(prepared.request));
  Completion c;
  bool client_gone = false;
  auto last_sent = Clock::now();
  auto cancel = [&] {
    if (!client_gone) engine_.cancel(stream->id());
    client_gone = true;
  };
  for (;;) {
    auto ev = stream->next(std::min<std::chrono::milliseconds>(opt_.ping_interval, std::chrono::milliseconds(250)));
    if (callbacks && callbacks->should_stop && !client_gone && callbacks->should_stop()) cancel();
    if (!ev) {
      if (callbacks && !client_gone && Clock::now() - last_sent >= opt_.ping_interval) {
        if (!callbacks->on_idle()) cancel();
        last_sent = Clock::now();
      }
      continue;
    }
    std::vector<chat::OutputEvent> events = parser.feed(ev->text);
    if (ev->done) {
      auto rest = parser.finish();
      events.insert(events.end(), rest.begin(), rest.end());
    }
    for (auto& e : events) {
      switch (e.kind) {
        case chat::OutputEvent::kText: c.text += e.text; break;
        case chat::OutputEvent::kReasoning: c.reasoning += e.text; break;
        case chat::OutputEvent::kToolCallStart:  // the parser names every call (chat::OutputParserOptions)
          c.tool_calls.push_back({e.id, e.name, ""});
          break;
        case chat::OutputEvent::kToolCallArguments:
          if (!c.tool_calls.empty()) c.tool_calls.back().arguments += e.text;
          break;
        case chat::OutputEvent::kToolCallEnd: break;
      }
    }
    if (callbacks && !client_gone && !events.empty()) {
      if (!callbacks->on_events(events)) cancel();
      last_sent = Clock::now();
    }
    if (ev->done) {
      c.stop = ev->stop;
      c.stop_string = ev->stop_string;
      c.usage = ev->usage;
      c.error = ev->error;
      break;
    }
  }
  return c;
}

}  // namespace tandem::server

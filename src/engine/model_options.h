// The model options an engine needs, apart from engine.h so that the
// server compiles against the engine without the model's headers.
#pragma once

#include "engine/engine.h"
#include "model/model.h"

namespace tandem::engine {

// Forward limits as large as OPTIONS' batches, and the caller's context
// length and thread count.
inline model::Model::Options model_options_for(const EngineOptions& options, int64_t ctx, int threads) {
  model::Model::Options mo;
  mo.ctx = ctx;
  mo.n_threads = threads;
  mo.limits.max_tokens = options.max_batch_tokens;
  mo.limits.max_sequences = options.max_batch_size;
  return mo;
}

}  // namespace tandem::engine

// Synthetic models for tests and benchmarks: a GGUF with the exact tensor
// names, shapes and metadata of a real model family (synth_presets.h) and
// seeded random weights, N(0, 1/fan_in) for matrices so activations stay
// finite through every layer. Same seed, same bytes.
#pragma once

#include "core/status.h"
#include "gguf/value.h"
#include "gguf/writer.h"
#include "model/synth_presets.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace tandem::model {

using SynthMetadata = std::vector<std::pair<std::string, gguf::Value>>;
// Called before each tensor is generated: (index, count, name).
using SynthProgress = std::function<void(size_t, size_t, const std::string&)>;

// The matrix types write_synth() can produce.
bool synth_supports(gguf::TensorType type);

// Writes the model to PATH. TYPE: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k for
// matrices (1-D tensors stay f32; rows that do not fit the type's block fall
// back to q8_0, then f16). EXTRA (e.g. tokenizer metadata) is added last.
Status write_synth(const ModelShape& shape, gguf::TensorType type, uint64_t seed, const SynthMetadata& extra,
                   const std::string& path, const SynthProgress& progress = {});

// The general.* and <arch>.* keys of SHAPE.
void set_synth_metadata(gguf::GgufWriter& w, const ModelShape& shape, gguf::TensorType type, uint64_t seed);

}  // namespace tandem::model

// Import of a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json)
// into GGUF tokenizer metadata (tokenizer.ggml.*), in the conventions
// llama.cpp's converter uses, so synthetic models carry a real tokenizer and
// chat template.
//
// Supported: byte-level BPE tokenizers (GPT-2, Llama 3, Qwen 2/3 style) and
// SentencePiece-style BPE ones (spaces as U+2581, merges over characters,
// byte fallback: Llama 2, Mistral, TinyStories), imported as
// tokenizer.ggml.model "llama" with the merge list.
#pragma once

#include "core/status.h"
#include "gguf/value.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tandem::tokenizer {

struct HfImportOptions {
  // Pad the token list to this many entries with "[PAD<id>]" tokens of type
  // UNUSED (real models have more embedding rows than tokenizer entries,
  // e.g. Qwen3: 151936 rows, 151669 tokens). 0: no padding.
  uint32_t pad_vocab_to = 0;
};

using Metadata = std::vector<std::pair<std::string, gguf::Value>>;

// Reads DIR/tokenizer.json and DIR/tokenizer_config.json (optional), and
// DIR/chat_template.jinja when the config has no chat template.
Result<Metadata> import_hf_tokenizer(const std::string& dir, const HfImportOptions& options = {});

// The same from JSON texts (for tests).
Result<Metadata> import_hf_tokenizer_json(const std::string& tokenizer_json, const std::string& config_json,
                                          const HfImportOptions& options = {});

}  // namespace tandem::tokenizer

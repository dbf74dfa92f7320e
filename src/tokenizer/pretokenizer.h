// Regex pre-tokenizers of byte-level BPE tokenizers, chosen by
// tokenizer.ggml.pre. Text is split into pieces before BPE runs on each.
//
// A pre-tokenizer is a list of regexes applied in sequence, each with the
// "isolated" behaviour of Hugging Face's Split: matches become pieces, and
// so do the gaps between them; the next regex splits every piece again.
#pragma once

#include "core/status.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::tokenizer {

class PreTokenizer {
 public:
  // Known names: "default"/"gpt2", "llama-bpe"/"llama3", "qwen2", "deepseek-v3"
  // and a few aliases; an error lists them for anything else.
  static Result<std::unique_ptr<PreTokenizer>> create(const std::string& name);
  // From explicit patterns (PCRE2 syntax, UTF + Unicode properties).
  static Result<std::unique_ptr<PreTokenizer>> from_patterns(const std::vector<std::string>& patterns);
  ~PreTokenizer();

  // Appends the pieces of TEXT (views into TEXT) to OUT. Safe to call from
  // several threads at once.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  // The regexes of a known pre-tokenizer name (empty if unknown).
  static std::vector<std::string> patterns_for(const std::string& name);

 private:
  struct Regex;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace tandem::tokenizer

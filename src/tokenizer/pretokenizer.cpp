#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <fmt/format.h>

namespace tandem::tokenizer {
namespace {

// Patterns as the models' tokenizer.json files define them (Split
// pre-tokenizers, behaviour "Isolated"). GPT-2's original pattern, then the
// Llama 3 and Qwen 2 variants, which differ in digit grouping (\p{N}{1,3}
// vs single \p{N}).
constexpr const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
constexpr const char* kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// o200k (gpt-oss, GPT-4o): words split at case changes (an upper-case run,
// then lower case), contractions attached, digits in groups of three.
constexpr const char* kO200k =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|"
    "'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|"
    "'d)?|"
    "\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|"
    "\\s+";
// DeepSeek V3: digits in groups of three, then CJK runs, then words.
constexpr const char* kDeepseekV3[] = {
    "\\p{N}{1,3}",
    "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",  // literal characters, as tokenizer.json has them
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

// Per-thread match state: match data and a JIT stack big enough for long
// whitespace runs (the lookahead in \s+(?!\S) backtracks over the run).
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::patterns_for(const std::string& name) {
  if (name == "default" || name == "gpt2" || name == "gpt-2") return {kGpt2};
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3" || name == "smaug-bpe") return {kLlama3};
  if (name == "qwen2" || name == "qwen3" || name == "deepseek-r1-qwen") return {kQwen2};
  if (name == "deepseek-v3") return {kDeepseekV3[0], kDeepseekV3[1], kDeepseekV3[2]};
  if (name == "gpt-4o" || name == "o200k" || name == "gpt-oss") return {kO200k};
  return {};
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::create(const std::string& name) {
  auto patterns = patterns_for(name);
  if (patterns.empty()) {
    return Status::errorf(
        "pre-tokenizer '{}' is not supported (supported: default, gpt2, llama-bpe, qwen2, "
        "deepseek-v3, gpt-4o)",
        name);
  }
  return from_patterns(patterns);
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::from_patterns(const std::vector<std::string>& patterns) {
  std::unique_ptr<PreTokenizer> pt(new PreTokenizer());
  for (const auto& p : patterns) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    auto re = std::make_unique<Regex>();
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &offset, nullptr);
    if (re->code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      return Status::errorf("bad pre-tokenizer regex at offset {}: {}", offset, reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    pt->regexes_.push_back(std::move(re));
  }
  return pt;
}

namespace {

// Splits TEXT by RE: each match and each gap between matches is a piece.
void split_isolated(const pcre2_code* re, std::string_view text, std::vector<std::string_view>& out) {
  MatchState& ms = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  size_t gap_start = 0;
  while (pos < text.size()) {
    // NO_UTF_CHECK: the caller guarantees valid UTF-8 (invalid bytes are
    // never passed to the regex; see Tokenizer).
    const int rc = pcre2_match(re, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, ms.data, ms.context);
    // No more matches. A match error (the JIT stack limit, reached only by
    // single runs of several million characters, e.g. 10M spaces; 1M work)
    // also ends here: the rest becomes one piece, still lossless, but not
    // split as Hugging Face would split it.
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ms.data);
    const size_t start = ov[0], end = ov[1];
    if (end == start) {  // empty match: step one character forward
      pos = start + 1;
      while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (start > gap_start) out.push_back(text.substr(gap_start, start - gap_start));
    out.push_back(text.substr(start, end - start));
    pos = gap_start = end;
  }
  if (gap_start < text.size()) out.push_back(text.substr(gap_start));
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  if (regexes_.size() == 1) {
    split_isolated(regexes_[0]->code, text, out);
    return;
  }
  std::vector<std::string_view> current{text}, next;
  for (const auto& re : regexes_) {
    next.clear();
    for (std::string_view piece : current) split_isolated(re->code, piece, next);
    current.swap(next);
  }
  out.insert(out.end(), current.begin(), current.end());
}

}  // namespace tandem::tokenizer

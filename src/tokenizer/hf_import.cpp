#include "tokenizer/hf_import.h"

#include "core/mapped_file.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <unordered_map>

namespace tandem::tokenizer {
namespace {

using json = nlohmann::json;

// A special-token entry of tokenizer_config.json: a string, an object with
// "content", or null.
std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

// Collects the regexes of Split pre-tokenizers, and whether a ByteLevel
// pre-tokenizer with its own (GPT-2) regex is present.
void collect_pre(const json& pre, std::vector<std::string>& regexes, bool& byte_level, bool& byte_level_regex) {
  if (!pre.is_object()) return;
  const std::string type = pre.value("type", "");
  if (type == "Sequence" && pre.contains("pretokenizers")) {
    for (const auto& p : pre["pretokenizers"]) collect_pre(p, regexes, byte_level, byte_level_regex);
  } else if (type == "Split" && pre.contains("pattern") && pre["pattern"].contains("Regex")) {
    // Some files write CR and LF as literal characters inside the regex:
    // spell them as escapes so patterns compare equal to ours.
    std::string re;
    for (char c : pre["pattern"]["Regex"].get<std::string>()) {
      re += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
    }
    regexes.push_back(re);
  } else if (type == "ByteLevel") {
    byte_level = true;
    byte_level_regex = byte_level_regex || pre.value("use_regex", true);
  }
}

// Maps the pre-tokenizer of tokenizer.json to a tokenizer.ggml.pre name.
Result<std::string> detect_pre(const json& tok) {
  std::vector<std::string> regexes;
  bool byte_level = false, byte_level_regex = false;
  collect_pre(tok.value("pre_tokenizer", json()), regexes, byte_level, byte_level_regex);
  if (!byte_level)
    return Status::error("tokenizer.json has no ByteLevel pre-tokenizer (only byte-level BPE is supported)");
  if (regexes.empty() && byte_level_regex) return std::string("gpt2");
  for (const char* name : {"qwen2", "llama-bpe", "deepseek-v3", "gpt-4o", "gpt2"}) {
    if (PreTokenizer::patterns_for(name) == regexes) return std::string(name);
  }
  std::string shown = regexes.empty() ? "(none)" : regexes[0];
  return Status::errorf("unsupported pre-tokenizer regex {} (known: gpt2, llama-bpe, qwen2, deepseek-v3)", shown);
}

// SentencePiece-style BPE (Llama 2, Mistral, TinyStories): no ByteLevel
// pre-tokenizer; spaces become U+2581 by a Replace normalizer (with a
// Prepend of one at the start) or by a Metaspace pre-tokenizer.
bool is_spm_style(const json& tok, bool* prepend) {
  const std::string kSpace = "\xE2\x96\x81";
  bool replaces = false;
  *prepend = false;
  auto visit = [&](const json& n, auto& self) -> void {
    if (!n.is_object()) return;
    const std::string type = n.value("type", "");
    for (const char* list : {"normalizers", "pretokenizers"}) {
      if (n.contains(list) && n[list].is_array())
        for (const auto& c : n[list]) self(c, self);
    }
    if (type == "Prepend" && n.value("prepend", "") == kSpace) *prepend = true;
    if (type == "Replace" && n.contains("pattern") && n["pattern"].value("String", "") == " " &&
        n.value("content", "") == kSpace)
      replaces = true;
    if (type == "Metaspace" && n.value("replacement", "") == kSpace) {
      replaces = true;
      *prepend = n.value("prepend_scheme", "always") != "never" && n.value("add_prefix_space", true);
    }
  };
  visit(tok.value("normalizer", json()), visit);
  visit(tok.value("pre_tokenizer", json()), visit);
  return replaces;
}

// Does the post-processor prepend BOS (TemplateProcessing starting with a special token)?
bool post_processor_adds(const json& pp, const std::string& token) {
  if (!pp.is_object()) return false;
  if (pp.value("type", "") == "Sequence" && pp.contains("processors")) {
    for (const auto& p : pp["processors"]) {
      if (post_processor_adds(p, token)) return true;
    }
    return false;
  }
  if (pp.value("type", "") != "TemplateProcessing" || !pp.contains("single") || pp["single"].empty()) return false;
  const json& first = pp["single"][0];
  return first.contains("SpecialToken") && first["SpecialToken"].value("id", "") == token;
}

Result<Metadata> import_impl(const json& tok, const json& cfg, const HfImportOptions& options) {
  if (!tok.contains("model") || tok["model"].value("type", "") != "BPE") {
    return Status::error("tokenizer.json model type is not BPE");
  }
  const json& model = tok["model"];
  bool prepend_space = false;
  const bool spm = is_spm_style(tok, &prepend_space);
  auto pre = spm ? Result<std::string>(std::string("default")) : detect_pre(tok);
  if (!pre) return pre.status();
  const std::string unk_text = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";

  // Tokens by id: the BPE vocab plus added tokens (which may extend it).
  std::map<int64_t, std::pair<std::string, TokenType>> by_id;
  for (const auto& [text, id] : model["vocab"].items()) by_id[id.get<int64_t>()] = {text, TokenType::kNormal};
  if (tok.contains("added_tokens")) {
    for (const auto& a : tok["added_tokens"]) {
      const bool special = a.value("special", false);
      by_id[a["id"].get<int64_t>()] = {a["content"].get<std::string>(),
                                       special ? TokenType::kControl : TokenType::kUserDefined};
    }
  }
  if (by_id.empty() || by_id.begin()->first < 0)
    return Status::error("tokenizer.json has no vocabulary or a negative id");
  const int64_t n_tokens = std::max<int64_t>(by_id.rbegin()->first + 1, options.pad_vocab_to);
  if (options.pad_vocab_to != 0 && by_id.rbegin()->first >= options.pad_vocab_to) {
    return Status::errorf("tokenizer has {} tokens, more than the model's vocabulary of {}", by_id.rbegin()->first + 1,
                          options.pad_vocab_to);
  }
  std::vector<std::string> tokens(static_cast<size_t>(n_tokens));
  std::vector<int64_t> types(static_cast<size_t>(n_tokens));
  for (int64_t i = 0; i < n_tokens; ++i) {
    auto it = by_id.find(i);
    if (it == by_id.end()) {
      tokens[static_cast<size_t>(i)] = "[PAD" + std::to_string(i) + "]";
      types[static_cast<size_t>(i)] = static_cast<int64_t>(TokenType::kUnused);
    } else {
      tokens[static_cast<size_t>(i)] = it->second.first;
      types[static_cast<size_t>(i)] = static_cast<int64_t>(it->second.second);
    }
  }
  std::vector<std::string> merges;
  for (const auto& m : model["merges"]) {
    if (m.is_string()) {
      merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2) {
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      return Status::error("tokenizer.json has a merge that is neither \"a b\" nor [a, b]");
    }
  }

  Metadata md;
  md.emplace_back("tokenizer.ggml.model", gguf::Value::string(spm ? "llama" : "gpt2"));
  md.emplace_back("tokenizer.ggml.pre", gguf::Value::string(*pre));
  if (spm) {
    // SentencePiece metadata for other readers (scores: minus the rank of the
    // merge that makes a token; byte-fallback and unknown tokens typed);
    // tandem merges by the merge list itself (spm.cpp).
    std::unordered_map<std::string, size_t> id_of_text;
    for (size_t i = 0; i < tokens.size(); ++i) id_of_text.emplace(tokens[i], i);
    std::vector<double> scores(tokens.size(), 0.0);
    for (size_t r = merges.size(); r-- > 0;) {
      std::string joined = merges[r];
      const size_t space = joined.find(' ');
      if (space != std::string::npos) joined.erase(space, 1);
      if (auto it = id_of_text.find(joined); it != id_of_text.end()) scores[it->second] = -static_cast<double>(r);
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string& t = tokens[i];
      if (types[i] != static_cast<int64_t>(TokenType::kNormal)) continue;
      if (t == unk_text) types[i] = static_cast<int64_t>(TokenType::kUnknown);
      if (t.size() == 6 && t.starts_with("<0x") && t.back() == '>') types[i] = static_cast<int64_t>(TokenType::kByte);
    }
    md.emplace_back("tokenizer.ggml.scores", gguf::Value::array(gguf::Array::of_floats(gguf::ValueType::FLOAT32, std::move(scores))));
    md.emplace_back("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(prepend_space));
  }
  md.emplace_back("tokenizer.ggml.tokens", gguf::Value::array(gguf::Array::of_strings(tokens)));
  md.emplace_back("tokenizer.ggml.token_type", gguf::Value::array(gguf::Array::of_ints(gguf::ValueType::INT32, types)));
  md.emplace_back("tokenizer.ggml.merges", gguf::Value::array(gguf::Array::of_strings(std::move(merges))));

  auto id_of = [&](const std::string& text) -> int64_t {
    for (const auto& [id, entry] : by_id) {
      if (entry.first == text) return id;
    }
    return -1;
  };
  const std::string bos = token_content(cfg.value("bos_token", json()));
  const std::string eos = token_content(cfg.value("eos_token", json()));
  const std::string pad = token_content(cfg.value("pad_token", json()));
  const std::string unk = token_content(cfg.value("unk_token", json()));
  for (const auto& [key, text] : {std::pair<const char*, std::string>{"tokenizer.ggml.bos_token_id", bos},
                                  {"tokenizer.ggml.eos_token_id", eos},
                                  {"tokenizer.ggml.padding_token_id", pad},
                                  {"tokenizer.ggml.unknown_token_id", unk}}) {
    if (text.empty()) continue;
    const int64_t id = id_of(text);
    if (id < 0) return Status::errorf("tokenizer_config.json names token '{}', which is not in the vocabulary", text);
    md.emplace_back(key, gguf::Value::u32(static_cast<uint32_t>(id)));
  }
  // add_bos: stated in the config, else implied by the post-processor; Llama 3
  // configs state neither although the models need <|begin_of_text|>.
  bool add_bos = false;
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) {
    add_bos = cfg["add_bos_token"].get<bool>();
  } else {
    add_bos =
        !bos.empty() && (post_processor_adds(tok.value("post_processor", json()), bos) || bos == "<|begin_of_text|>");
  }
  md.emplace_back("tokenizer.ggml.add_bos_token", gguf::Value::boolean(add_bos));
  md.emplace_back("tokenizer.ggml.add_eos_token",
                  gguf::Value::boolean(cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean() &&
                                       cfg["add_eos_token"].get<bool>()));

  const json tmpl = cfg.value("chat_template", json());
  if (tmpl.is_string()) {
    md.emplace_back("tokenizer.chat_template", gguf::Value::string(tmpl.get<std::string>()));
  } else if (tmpl.is_array()) {  // [{name, template}, ...]: the "default" one
    for (const auto& t : tmpl) {
      if (t.value("name", "") == "default" && t.contains("template")) {
        md.emplace_back("tokenizer.chat_template", gguf::Value::string(t["template"].get<std::string>()));
      }
    }
  }
  return md;
}

}  // namespace

Result<Metadata> import_hf_tokenizer_json(const std::string& tokenizer_json, const std::string& config_json,
                                          const HfImportOptions& options) {
  json tok, cfg;
  try {
    tok = json::parse(tokenizer_json);
    cfg = config_json.empty() ? json::object() : json::parse(config_json);
    return import_impl(tok, cfg, options);
  } catch (const json::exception& e) {
    return Status::errorf("bad tokenizer JSON: {}", e.what());
  }
}

Result<Metadata> import_hf_tokenizer(const std::string& dir, const HfImportOptions& options) {
  auto tok = read_file(dir + "/tokenizer.json");
  if (!tok) return tok.status();
  // tokenizer_config.json (special tokens, chat template) is optional.
  auto cfg = read_file(dir + "/tokenizer_config.json");
  auto md = import_hf_tokenizer_json(*tok, cfg.ok() ? *cfg : std::string(), options);
  if (!md) return md.status().with_context(dir);
  // Newer folders keep the template in its own file (transformers >= 4.43).
  const bool has_template = std::any_of(md->begin(), md->end(), [](const auto& kv) {
    return kv.first == "tokenizer.chat_template";
  });
  if (auto jinja = read_file(dir + "/chat_template.jinja"); !has_template && jinja.ok())
    md->emplace_back("tokenizer.chat_template", gguf::Value::string(*jinja));
  return md;
}

}  // namespace tandem::tokenizer

// tandem inspect MODEL [--json]: what a GGUF file holds.
#include "cli/commands.h"
#include "gguf/reader.h"
#include "hf/folder.h"
#include "tokenizer/vocab.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>

namespace tandem::cli {
namespace {

using json = nlohmann::json;

json value_to_json(const gguf::Value& v, size_t max_items) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::STRING: return v.str;
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: return v.f;
    case ValueType::BOOL: return v.i != 0;
    case ValueType::UINT64: return static_cast<uint64_t>(v.i);
    case ValueType::ARRAY: {
      const gguf::Array& a = *v.arr;
      if (a.size() > max_items) {
        return json{{"type", "array"}, {"element_type", gguf::value_type_name(a.elem_type)}, {"length", a.size()}};
      }
      json out = json::array();
      for (size_t k = 0; k < a.size(); ++k) {
        switch (a.elem_type) {
          case ValueType::STRING: out.push_back(a.strings[k]); break;
          case ValueType::FLOAT32:
          case ValueType::FLOAT64: out.push_back(a.floats[k]); break;
          case ValueType::ARRAY: out.push_back(value_to_json(a.arrays[k], max_items)); break;
          case ValueType::UINT64: out.push_back(static_cast<uint64_t>(a.ints[k])); break;
          default: out.push_back(a.ints[k]); break;
        }
      }
      return out;
    }
    default: return v.i;
  }
}

// Hyperparameters: the "<arch>." keys, with the prefix dropped.
std::map<std::string, const gguf::Value*> hyperparameters(const gguf::GgufFile& f, const std::string& arch) {
  std::map<std::string, const gguf::Value*> out;
  const std::string prefix = arch + ".";
  for (const auto& kv : f.metadata()) {
    if (!arch.empty() && kv.key.starts_with(prefix)) out[kv.key.substr(prefix.size())] = &kv.value;
  }
  return out;
}

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(b) / (1ull << 10));
  return fmt::format("{} B", b);
}

int run_inspect(const std::string& path, bool as_json, bool all_metadata) {
  auto file = hf::open_model(path);
  if (!file) return fail(file.message());
  const gguf::GgufFile& f = *file;
  const std::string arch = f.get_string("general.architecture").value_or("");
  auto vocab = tokenizer::load_vocab(f);

  uint64_t params = 0, bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // name -> (count, bytes)
  for (const auto& t : f.tensors()) {
    params += t.n_elements;
    bytes += t.n_bytes;
    auto& e = by_type[std::string(gguf::type_name(t.type))];
    e.first += 1;
    e.second += t.n_bytes;
  }

  if (as_json) {
    json j;
    j["path"] = path;
    j["gguf_version"] = f.version();
    j["architecture"] = arch;
    j["name"] = f.get_string("general.name").value_or("");
    json hp = json::object();
    for (const auto& [k, v] : hyperparameters(f, arch)) hp[k] = value_to_json(*v, 64);
    j["hyperparameters"] = hp;
    if (vocab) {
      j["tokenizer"] = {{"model", vocab->model},     {"pre", vocab->pre},
                        {"tokens", vocab->size()},   {"merges", vocab->merges.size()},
                        {"bos", vocab->bos},         {"eos", vocab->eos},
                        {"add_bos", vocab->add_bos}, {"chat_template", !vocab->chat_template.empty()}};
    } else {
      j["tokenizer"] = {{"error", vocab.message()}};
    }
    j["chat_template"] = f.get_string("tokenizer.chat_template").has_value();
    json tensors = json::array();
    for (const auto& t : f.tensors()) {
      tensors.push_back({{"name", t.name},
                         {"type", gguf::type_name(t.type)},
                         {"shape", t.dims},
                         {"elements", t.n_elements},
                         {"bytes", t.n_bytes},
                         {"offset", t.offset}});
    }
    j["tensors"] = tensors;
    json types = json::object();
    for (const auto& [name, e] : by_type) types[name] = {{"tensors", e.first}, {"bytes", e.second}};
    j["totals"] = {{"tensors", f.tensors().size()},
                   {"parameters", params},
                   {"tensor_bytes", bytes},
                   {"file_bytes", f.file_size()},
                   {"by_type", types}};
    if (all_metadata) {
      json md = json::object();
      for (const auto& kv : f.metadata()) md[kv.key] = value_to_json(kv.value, 16);
      j["metadata"] = md;
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }

  fmt::print("file          {} ({}, {})\n", path, f.assembled() ? "Hugging Face folder" : fmt::format("GGUF v{}", f.version()), human_bytes(f.file_size()));
  fmt::print("architecture  {}\n", arch.empty() ? "(none)" : arch);
  if (auto name = f.get_string("general.name")) fmt::print("name          {}\n", *name);
  if (auto source = f.get_string(hf::kSourceKey)) fmt::print("weights       {}\n", *source);
  fmt::print("\nhyperparameters\n");
  for (const auto& [k, v] : hyperparameters(f, arch)) fmt::print("  {:<36} {}\n", k, v->describe());
  fmt::print("\ntokenizer\n");
  if (vocab) {
    fmt::print("  {:<36} {}\n", "model", vocab->model);
    if (vocab->kind == tokenizer::VocabKind::kBpe) fmt::print("  {:<36} {}\n", "pre-tokenizer", vocab->pre);
    fmt::print("  {:<36} {}\n", "tokens", vocab->size());
    if (!vocab->merges.empty()) fmt::print("  {:<36} {}\n", "merges", vocab->merges.size());
    auto show_id = [&](const char* what, tokenizer::TokenId id) {
      if (id != tokenizer::kNoToken) fmt::print("  {:<36} {} {}\n", what, id, vocab->tokens[static_cast<size_t>(id)]);
    };
    show_id("bos", vocab->bos);
    show_id("eos", vocab->eos);
    fmt::print("  {:<36} {}\n", "add_bos", vocab->add_bos);
    fmt::print("  {:<36} {}\n", "chat template",
               vocab->chat_template.empty() ? "none" : fmt::format("yes ({} bytes)", vocab->chat_template.size()));
  } else {
    fmt::print("  {}\n", vocab.message());
  }
  if (all_metadata) {
    fmt::print("\nmetadata\n");
    for (const auto& kv : f.metadata()) fmt::print("  {:<44} {}\n", kv.key, kv.value.describe());
  }
  fmt::print("\ntensors\n");
  for (const auto& t : f.tensors()) {
    fmt::print("  {:<40} {:<6} {:<20} {:>12}\n", t.name, gguf::type_name(t.type), t.shape_string(),
               human_bytes(t.n_bytes));
  }
  fmt::print("\ntotals\n  {} tensors, {} parameters, {}\n", f.tensors().size(), params, human_bytes(bytes));
  for (const auto& [name, e] : by_type) {
    fmt::print("  {:<6} {:>5} tensors {:>12}\n", name, e.first, human_bytes(e.second));
  }
  return 0;
}

}  // namespace

void register_inspect(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("inspect", "Describe a GGUF model: architecture, tokenizer, tensors");
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto all = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "GGUF file or Hugging Face model folder")->required();
  cmd->add_flag("--json", *as_json, "Machine-readable JSON output");
  cmd->add_flag("--metadata", *all, "Also list every metadata key");
  cmd->callback([=, &action] { action = [=] { return run_inspect(*path, *as_json, *all); }; });
}

}  // namespace tandem::cli

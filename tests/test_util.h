// Helpers shared by tests: paths to test data and scratch folders.
#pragma once

#include <filesystem>
#include <string>

namespace tandem::test {

// A file under tests/data (tiny real models and reference outputs; its
// README names each file's origin and license).
inline std::string data_path(const std::string& name) { return std::string(TANDEM_SOURCE_DIR) + "/tests/data/" + name; }

// A file in the source tree (fixtures, node_modules).
inline std::string source_path(const std::string& rel) { return std::string(TANDEM_SOURCE_DIR) + "/" + rel; }

// A fresh empty folder under the build tree, removed and recreated per call.
inline std::string scratch_dir(const std::string& name) {
  auto dir = std::filesystem::path(TANDEM_BINARY_DIR) / "test-scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace tandem::test

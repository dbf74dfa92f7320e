// Typed reads of a JSON request body's fields that keep the first error
// ("max_tokens: expected an integer, got a string"), so adapters can read
// every field and check once. Missing optional fields read as nullopt.
#pragma once

#include "server/api.h"

#include <optional>
#include <string>

namespace tandem::server {

class Fields {
 public:
  // WHERE names the object in messages ("" for the body, "messages[2]" ...).
  Fields(const json& object, std::string where) : obj_(object), where_(std::move(where)) {}

  std::optional<std::string> string(const char* key, bool required = false);
  std::optional<double> number(const char* key, double lo, double hi, bool required = false);
  std::optional<int64_t> integer(const char* key, int64_t lo, int64_t hi, bool required = false);
  std::optional<bool> boolean(const char* key);
  const json* array(const char* key, bool required = false);
  const json* object(const char* key, bool required = false);
  // A field that may hold several types: present and not null.
  const json* any(const char* key, bool required = false);

  bool ok() const { return !error_; }
  const ApiError& error() const { return *error_; }
  void fail(const std::string& key, const std::string& message);

 private:
  const json* find(const char* key, bool required);
  std::string path(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }

  const json& obj_;
  std::string where_;
  std::optional<ApiError> error_;
};

// OBJECT[KEY] when OBJECT is an object holding a string (or a boolean) there;
// else "" (false). For optional hints that are never an error.
std::string string_or_empty(const json& object, const char* key);
bool true_at(const json& object, const char* key);

// "a string", "an array" ... for error messages.
const char* json_type_name(const json& v);

}  // namespace tandem::server

#include "server/fields.h"

#include <fmt/format.h>

#include <cmath>

namespace tandem::server {

const char* json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

std::string string_or_empty(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

bool true_at(const json& object, const char* key) {
  if (!object.is_object()) return false;
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

void Fields::fail(const std::string& key, const std::string& message) {
  if (!error_) error_ = ApiError{ErrorKind::kInvalidRequest, fmt::format("{}: {}", path(key), message), path(key)};
}

const json* Fields::find(const char* key, bool required) {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) {
    if (required) fail(key, "field required");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> Fields::string(const char* key, bool required) {
  const json* v = find(key, required);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail(key, fmt::format("expected a string, got {}", json_type_name(*v)));
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<double> Fields::number(const char* key, double lo, double hi, bool required) {
  const json* v = find(key, required);
  if (!v) return std::nullopt;
  if (!v->is_number()) {
    fail(key, fmt::format("expected a number, got {}", json_type_name(*v)));
    return std::nullopt;
  }
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    fail(key, fmt::format("must be between {} and {}, got {}", lo, hi, d));
    return std::nullopt;
  }
  return d;
}

std::optional<int64_t> Fields::integer(const char* key, int64_t lo, int64_t hi, bool required) {
  const json* v = find(key, required);
  if (!v) return std::nullopt;
  if (!v->is_number_integer() && !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>())) {
    fail(key, fmt::format("expected an integer, got {}", json_type_name(*v)));
    return std::nullopt;
  }
  const double d = v->get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    fail(key, fmt::format("must be between {} and {}, got {}", lo, hi, v->dump()));
    return std::nullopt;
  }
  return static_cast<int64_t>(d);
}

std::optional<bool> Fields::boolean(const char* key) {
  const json* v = find(key, false);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    fail(key, fmt::format("expected a boolean, got {}", json_type_name(*v)));
    return std::nullopt;
  }
  return v->get<bool>();
}

const json* Fields::array(const char* key, bool required) {
  const json* v = find(key, required);
  if (v && !v->is_array()) {
    fail(key, fmt::format("expected an array, got {}", json_type_name(*v)));
    return nullptr;
  }
  return v;
}

const json* Fields::object(const char* key, bool required) {
  const json* v = find(key, required);
  if (v && !v->is_object()) {
    fail(key, fmt::format("expected an object, got {}", json_type_name(*v)));
    return nullptr;
  }
  return v;
}

const json* Fields::any(const char* key, bool required) { return find(key, required); }

}  // namespace tandem::server

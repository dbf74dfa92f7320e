// Value <-> text: printing, string conversion and tojson, as the reference
// does them (JS number formatting, JSON.stringify escaping, insertion order).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "chat/template_interp.h"

namespace tandem::chat::detail {
namespace {

constexpr int kMaxValueDepth = 512;

// Approximates String.prototype.localeCompare (ICU root collation) for
// tojson(sort_keys=true): punctuation < digits < letters, letters compared
// case-insensitively first, then lower case before upper case.
int locale_compare(const std::string& a, const std::string& b) {
  auto weight = [](unsigned char c) -> int {
    if (c >= 'a' && c <= 'z') return 300 + (c - 'a') * 2;
    if (c >= 'A' && c <= 'Z') return 300 + (c - 'A') * 2;
    if (c >= '0' && c <= '9') return 200 + (c - '0');
    if (c < 0x80) return 100 + c / 2;
    return 1000 + c;
  };
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    int wa = weight(static_cast<unsigned char>(a[i])), wb = weight(static_cast<unsigned char>(b[i]));
    if (wa != wb) return wa < wb ? -1 : 1;
  }
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return a[i] > b[i] ? -1 : 1;  // 'a' (0x61) sorts before 'A' (0x41)
  }
  return 0;
}

void append_string_json(std::string& out, const std::string& s, bool ensure_ascii) {
  if (!ensure_ascii) {
    append_json_string(out, s);
    return;
  }
  std::string tmp;
  append_json_string(tmp, s);
  out += make_ascii_safe(tmp);
}

}  // namespace

std::string Interp::display(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:  // the reference's none holds JS undefined
      return "undefined";
    case Kind::kBool: return v.as_bool() ? "true" : "false";
    case Kind::kInt: return std::to_string(v.as_int());
    case Kind::kFloat: return float_repr(v.as_float());
    case Kind::kString: return v.str();
    case Kind::kArray:
    case Kind::kObject:
    case Kind::kNamespace: {
      std::string out;
      to_json(v, JsonOptions{}, 0, false, out);
      check_size(out.size());
      return out;
    }
    case Kind::kFunction: break;
  }
  fail("cannot print a function");
}

std::string Interp::raw_string(const Value& v) {
  switch (v.kind()) {
    case Kind::kString: return v.str();
    case Kind::kInt: return std::to_string(v.as_int());
    case Kind::kFloat: return js_number(v.as_float());
    case Kind::kBool: return v.as_bool() ? "true" : "false";
    case Kind::kArray: {
      std::string out;
      bool first = true;
      for (const Value& item : v.arr()) {
        if (!first) out += ',';
        first = false;
        out += display(item);
        check_size(out.size());
      }
      return out;
    }
    case Kind::kNone:
    case Kind::kUndefined: return "undefined";
    default:
      // The reference would produce "[object Map]" or a JS function's source.
      fail(std::string("cannot convert ") + v.type_name() + " to a string");
  }
}

void Interp::to_json(const Value& v, const JsonOptions& o, int depth, bool undefined_as_null, std::string& out) {
  if (depth > kMaxValueDepth) fail("value is nested too deeply for tojson");
  switch (v.kind()) {
    case Kind::kNone: out += "null"; return;
    case Kind::kUndefined: out += undefined_as_null ? "null" : "undefined"; return;
    case Kind::kInt: out += std::to_string(v.as_int()); return;
    case Kind::kFloat: out += std::isfinite(v.as_float()) ? js_number(v.as_float()) : "null"; return;
    case Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Kind::kString: append_string_json(out, v.str(), o.ensure_ascii); return;
    case Kind::kArray:
    case Kind::kObject:
    case Kind::kNamespace:
      if (v.is_tuple()) break;
      {
        const std::string item_sep = o.custom_separators ? o.item_sep : (o.indent > 0 ? "," : ", ");
        const std::string key_sep = o.custom_separators ? o.key_sep : ": ";
        const std::string unit(static_cast<size_t>(o.indent), ' ');
        std::string base = "\n";
        for (int i = 0; i < depth; ++i) base += unit;
        const std::string child = base + unit;
        if (v.is_array()) {
          const Array& items = v.arr();
          out += '[';
          for (size_t i = 0; i < items.size(); ++i) {
            if (i > 0) out += item_sep;
            if (o.indent > 0) out += child;
            to_json(items[i], o, depth + 1, undefined_as_null, out);
          }
          if (o.indent > 0 && !items.empty()) out += base;
          out += ']';
        } else {
          std::vector<const std::pair<std::string, Value>*> entries;
          for (const auto& e : v.obj().entries()) entries.push_back(&e);
          if (o.sort_keys) {
            std::stable_sort(entries.begin(), entries.end(),
                             [](const auto* x, const auto* y) { return locale_compare(x->first, y->first) < 0; });
          }
          out += '{';
          for (size_t i = 0; i < entries.size(); ++i) {
            if (i > 0) out += item_sep;
            if (o.indent > 0) out += child;
            append_string_json(out, entries[i]->first, o.ensure_ascii);
            out += key_sep;
            to_json(entries[i]->second, o, depth + 1, undefined_as_null, out);
          }
          if (o.indent > 0 && !entries.empty()) out += base;
          out += '}';
        }
        check_size(out.size());
        return;
      }
    case Kind::kFunction: break;
  }
  fail(std::string("Cannot convert to JSON: ") + v.type_name());
}

template <typename Json>
Value Interp::from_json(const Json& j, int depth) {
  if (depth > kMaxValueDepth) fail("chat template context is nested too deeply");
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case Json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::number(static_cast<double>(u));
    }
    case Json::value_t::number_float: {
      // JS has one number type: an integral value is an integer there, so
      // 2.0 in the context prints as "2", as the reference prints it.
      double d = j.template get<double>();
      if (std::isfinite(d) && std::fabs(d) <= 9007199254740992.0 && std::floor(d) == d) {
        return Value::integer(static_cast<int64_t>(d));
      }
      return Value::number(d);
    }
    case Json::value_t::string: return Value::string(j.template get<std::string>());
    case Json::value_t::array: {
      Array items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json(item, depth + 1));
      return Value::array(std::move(items));
    }
    case Json::value_t::object: {
      Object obj;
      for (auto it = j.begin(); it != j.end(); ++it) obj.set(it.key(), from_json(it.value(), depth + 1));
      return Value::object(std::move(obj));
    }
    default: fail("chat template context holds a value JSON cannot express");
  }
}

template Value Interp::from_json<nlohmann::json>(const nlohmann::json&, int);
template Value Interp::from_json<nlohmann::ordered_json>(const nlohmann::ordered_json&, int);

}  // namespace tandem::chat::detail

#include "chat/output_formats.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>

namespace tandem::chat::output_detail {
namespace {

// ordered_json keeps the model's key order in the arguments it re-serializes.
using Json = nlohmann::ordered_json;

// dump() recurses once per nesting level; tool arguments nest a few levels,
// so anything deeper than this is treated as malformed rather than risking
// the stack on hostile output.
constexpr int kMaxJsonDepth = 256;

bool nesting_ok(std::string_view text) {
  JsonExtent ext;
  for (char c : text) {
    ext.step(c);
    if (ext.depth > kMaxJsonDepth) return false;
  }
  return true;
}

// Parses TEXT as one JSON value; nullopt when it is not exactly that.
std::optional<Json> parse_json(std::string_view text) {
  if (!nesting_ok(text)) return std::nullopt;
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// Compact, UTF-8 as is; invalid UTF-8 (which parse() already rejects inside
// JSON text, but raw Qwen3-Coder values may hold) becomes U+FFFD.
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

size_t skip_space(std::string_view s, size_t pos) {
  while (pos < s.size() && is_space(s[pos])) ++pos;
  return pos;
}

std::optional<ToolCallParts> call_from_json(const Json& j, bool require_arguments = false) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return std::nullopt;
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  if (args == j.end()) {
    if (require_arguments) return std::nullopt;
    return ToolCallParts{name->get<std::string>(), "{}"};
  }
  if (args->is_object()) return ToolCallParts{name->get<std::string>(), dump(*args)};
  if (args->is_string()) {
    auto inner = parse_json(args->get_ref<const std::string&>());
    if (inner && inner->is_object()) return ToolCallParts{name->get<std::string>(), dump(*inner)};
  }
  return std::nullopt;
}

// The kinds of JSON Schema "type" names the Qwen3-Coder reference parser
// recognizes (it also accepts C-ish spellings such as "int32" or "varchar").
enum class ParamKind { kUnknown, kString, kInteger, kNumber, kBoolean, kJson };

ParamKind param_kind(std::string_view type_name) {
  std::string t = lower(trim(type_name));
  auto starts = [&](std::string_view p) { return std::string_view(t).starts_with(p); };
  if (t.empty()) return ParamKind::kUnknown;
  if (t == "string" || t == "str" || t == "text" || t == "varchar" || t == "char" || t == "enum") {
    return ParamKind::kString;
  }
  if (starts("int") || starts("uint") || starts("long") || starts("short") || starts("unsigned")) {
    return ParamKind::kInteger;
  }
  if (starts("num") || starts("float")) return ParamKind::kNumber;
  if (t == "boolean" || t == "bool" || t == "binary") return ParamKind::kBoolean;
  if (t == "object" || t == "array" || t == "arr" || starts("dict") || starts("list")) return ParamKind::kJson;
  return ParamKind::kUnknown;
}

}  // namespace

Match match_at(std::string_view s, size_t pos, std::string_view tag) {
  if (pos >= s.size()) return tag.empty() ? Match::kYes : Match::kPartial;
  size_t n = std::min(tag.size(), s.size() - pos);
  if (s.substr(pos, n) != tag.substr(0, n)) return Match::kNo;
  return n == tag.size() ? Match::kYes : Match::kPartial;
}

size_t partial_suffix(std::string_view s, std::string_view tag) {
  if (tag.empty()) return 0;
  for (size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k) {
    if (s.substr(s.size() - k) == tag.substr(0, k)) return k;
  }
  return 0;
}

bool JsonExtent::step(char c) {
  if (in_string) {
    if (escape) {
      escape = false;
    } else if (c == '\\') {
      escape = true;
    } else if (c == '"') {
      in_string = false;
    }
    return false;
  }
  switch (c) {
    case '"': in_string = true; return false;
    case '{':
    case '[': ++depth; return false;
    case '}':
    case ']': return depth > 0 && --depth == 0;
    default: return false;
  }
}

std::optional<ToolCallParts> parse_json_call(std::string_view json, bool require_arguments) {
  auto j = parse_json(json);
  if (!j) return std::nullopt;
  return call_from_json(*j, require_arguments);
}

std::optional<std::vector<ToolCallParts>> parse_json_calls(std::string_view json) {
  auto j = parse_json(json);
  if (!j) return std::nullopt;
  std::vector<ToolCallParts> calls;
  if (j->is_array()) {
    for (const Json& item : *j) {
      auto call = call_from_json(item);
      if (!call) return std::nullopt;
      calls.push_back(std::move(*call));
    }
  } else if (auto call = call_from_json(*j)) {
    calls.push_back(std::move(*call));
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

std::optional<ToolCallParts> parse_named_arguments(std::string name, std::string_view json) {
  auto j = parse_json(json);
  if (name.empty() || !j || !j->is_object()) return std::nullopt;
  return ToolCallParts{std::move(name), dump(*j)};
}

std::string qwen3_coder_value_json(std::string_view value, std::string_view type) {
  if (lower(value) == "null") return "null";
  const Json as_string = std::string(value);
  switch (param_kind(type)) {
    case ParamKind::kString: return dump(as_string);
    case ParamKind::kInteger: {
      std::string_view t = trim(value);
      if (!t.empty() && t.front() == '+') t.remove_prefix(1);
      int64_t v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size()) return dump(as_string);
      return std::to_string(v);
    }
    case ParamKind::kNumber: {
      auto j = parse_json(value);
      if (!j || !j->is_number()) return dump(as_string);
      // As the reference: a float with no fraction becomes an integer (3.0 -> 3).
      if (j->is_number_float()) {
        double d = j->get<double>();
        if (d > -9.2e18 && d < 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
          return std::to_string(static_cast<int64_t>(d));
        }
      }
      return dump(*j);
    }
    case ParamKind::kBoolean: {
      std::string t = lower(trim(value));
      if (t == "true" || t == "false") return t;
      return dump(as_string);
    }
    case ParamKind::kJson: {
      auto j = parse_json(value);
      return j ? dump(*j) : dump(as_string);
    }
    case ParamKind::kUnknown: {
      auto j = parse_json(value);
      return j && !j->is_string() ? dump(*j) : dump(as_string);
    }
  }
  return dump(as_string);
}

std::optional<ToolCallParts> parse_qwen3_coder_call(std::string_view body, const ParamTypeFn& param_type) {
  constexpr std::string_view kFunction = "<function=", kFunctionEnd = "</function>";
  constexpr std::string_view kParam = "<parameter=", kParamEnd = "</parameter>";
  size_t pos = skip_space(body, 0);
  if (match_at(body, pos, kFunction) != Match::kYes) return std::nullopt;
  pos += kFunction.size();
  size_t gt = body.find('>', pos);
  if (gt == std::string_view::npos) return std::nullopt;
  std::string_view name = trim(body.substr(pos, gt - pos));
  if (name.empty() || name.find_first_of("<\n") != std::string_view::npos) return std::nullopt;
  pos = gt + 1;

  // Arguments are assembled as text so each value keeps the JSON chosen by
  // qwen3_coder_value_json; a repeated parameter keeps its last value (as
  // the reference's dict does), in the position of its first appearance.
  std::vector<std::pair<std::string, std::string>> args;
  for (;;) {
    pos = skip_space(body, pos);
    if (pos == body.size()) break;  // no </function>: accepted, as the reference does
    if (match_at(body, pos, kFunctionEnd) == Match::kYes) {
      if (skip_space(body, pos + kFunctionEnd.size()) != body.size()) return std::nullopt;
      break;
    }
    if (match_at(body, pos, kParam) != Match::kYes) return std::nullopt;
    pos += kParam.size();
    gt = body.find('>', pos);
    if (gt == std::string_view::npos) return std::nullopt;
    std::string_view param = trim(body.substr(pos, gt - pos));
    if (param.empty() || param.find_first_of("<\n") != std::string_view::npos) return std::nullopt;
    size_t value_begin = gt + 1;
    size_t value_end = body.find(kParamEnd, value_begin);
    if (value_end == std::string_view::npos) return std::nullopt;
    std::string_view value = body.substr(value_begin, value_end - value_begin);
    if (value.starts_with('\n')) value.remove_prefix(1);
    if (value.ends_with('\n')) value.remove_suffix(1);
    std::string type = param_type ? param_type(name, param) : std::string();
    std::string json = qwen3_coder_value_json(value, type);
    auto same = [&](const auto& kv) { return kv.first == param; };
    if (auto it = std::find_if(args.begin(), args.end(), same); it != args.end()) {
      it->second = std::move(json);
    } else {
      args.emplace_back(std::string(param), std::move(json));
    }
    pos = value_end + kParamEnd.size();
  }
  std::string out = "{";
  for (const auto& [key, json] : args) {
    if (out.size() > 1) out += ',';
    out += dump(Json(key));
    out += ':';
    out += json;
  }
  out += '}';
  return ToolCallParts{std::string(name), std::move(out)};
}

MistralHeader scan_mistral_header(std::string_view body, bool at_end) {
  constexpr std::string_view kCallId = "[CALL_ID]", kArgs = "[ARGS]";
  // A function name is short; past this the text is not a call header.
  constexpr size_t kMaxHeader = 256;
  const MistralHeader need_more{at_end ? MistralHeader::kBad : MistralHeader::kNeedMore};
  const MistralHeader bad{MistralHeader::kBad};
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  };
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };

  size_t pos = skip_space(body, 0);
  if (pos == body.size()) return need_more;
  if (body[pos] == '[' || body[pos] == '{') return {MistralHeader::kJson, "", pos};
  size_t name_begin = pos;
  while (pos < body.size() && name_char(body[pos])) ++pos;
  if (pos - name_begin > kMaxHeader) return bad;
  if (pos == body.size()) return need_more;
  if (pos == name_begin) return bad;
  std::string name(body.substr(name_begin, pos - name_begin));

  Match call_id = match_at(body, pos, kCallId);
  if (call_id == Match::kPartial) return need_more;
  if (call_id == Match::kYes) {
    pos += kCallId.size();
    size_t id_begin = pos;
    while (pos < body.size() && alnum(body[pos])) ++pos;
    if (pos - id_begin > kMaxHeader) return bad;
    if (pos == body.size()) return need_more;
  }
  Match args = match_at(body, pos, kArgs);
  if (args == Match::kPartial) return need_more;
  if (args == Match::kYes) pos += kArgs.size();
  pos = skip_space(body, pos);
  if (pos == body.size()) return need_more;
  if (body[pos] != '{') return bad;
  return {MistralHeader::kJson, std::move(name), pos};
}

}  // namespace tandem::chat::output_detail

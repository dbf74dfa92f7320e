#include "chat/template_value.h"

#include <cmath>

namespace tandem::chat::detail {

const Value* Object::find(std::string_view key) const {
  // Small objects (message dicts) are scanned; the index serves large ones.
  if (entries_.size() <= 8) {
    for (const auto& [k, v] : entries_) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void Object::set(std::string key, Value value) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.ptr_ = std::make_shared<std::string>(std::move(s));
  return v;
}

Value Value::array(Array items, bool tuple) {
  Value v;
  v.kind_ = Kind::kArray;
  v.tuple_ = tuple;
  v.ptr_ = std::make_shared<Array>(std::move(items));
  return v;
}

Value Value::object(Object obj) {
  Value v;
  v.kind_ = Kind::kObject;
  v.ptr_ = std::make_shared<Object>(std::move(obj));
  return v;
}

Value Value::ns(Object attrs) {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.ptr_ = std::make_shared<Object>(std::move(attrs));
  return v;
}

Value Value::function(std::shared_ptr<const Callable> fn) {
  Value v;
  v.kind_ = Kind::kFunction;
  v.ptr_ = std::const_pointer_cast<Callable>(std::move(fn));
  return v;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::kInt: return static_cast<double>(i_);
    case Kind::kFloat: return f_;
    case Kind::kBool: return b_ ? 1.0 : 0.0;
    default: return std::nan("");
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0.0 && !std::isnan(f_);
    case Kind::kString: return !str().empty();
    case Kind::kArray: return !arr().empty();
    case Kind::kObject: return !obj().empty();
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "UndefinedValue";
    case Kind::kNone: return "NullValue";
    case Kind::kBool: return "BooleanValue";
    case Kind::kInt: return "IntegerValue";
    case Kind::kFloat: return "FloatValue";
    case Kind::kString: return "StringValue";
    case Kind::kArray: return tuple_ ? "TupleValue" : "ArrayValue";
    case Kind::kObject: return "ObjectValue";
    case Kind::kNamespace: return "NamespaceValue";
    case Kind::kFunction: return "FunctionValue";
  }
  return "?";
}

}  // namespace tandem::chat::detail

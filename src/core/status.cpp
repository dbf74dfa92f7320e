#include "core/status.h"

namespace tandem {

Status Status::with_context(const std::string& context) const {
  if (ok()) return *this;
  return Status(context + ": " + message_);
}

}  // namespace tandem

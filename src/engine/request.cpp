#include "engine/request.h"

namespace tandem::engine {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kNone: return "none";
    case StopReason::kEndOfText: return "end_of_text";
    case StopReason::kMaxTokens: return "max_tokens";
    case StopReason::kStopString: return "stop_string";
    case StopReason::kCancelled: return "cancelled";
    case StopReason::kRefused: return "refused";
    case StopReason::kError: return "error";
  }
  return "?";
}

void Stream::push(Event e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

std::optional<Event> Stream::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty() || finished_; })) return std::nullopt;
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  if (e.done) finished_ = true;
  return e;
}

Event Stream::wait() {
  Event all;
  for (;;) {
    auto e = next();
    if (!e) return all;
    all.text += e->text;
    all.tokens.insert(all.tokens.end(), e->tokens.begin(), e->tokens.end());
    if (e->done) {
      all.done = true;
      all.stop = e->stop;
      all.stop_string = e->stop_string;
      all.error = e->error;
      all.usage = e->usage;
      return all;
    }
  }
}

}  // namespace tandem::engine

// What a client asks of the engine and what it gets back. Plain structs:
// the engine never sees JSON, the server never sees the model.
#pragma once

#include "engine/sampler.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tandem::engine {

enum class Priority : int { kLow = 0, kNormal = 1, kHigh = 2 };

enum class StopReason {
  kNone,        // still running
  kEndOfText,   // the model's EOS/EOT token
  kMaxTokens,   // max_tokens reached, or the context is full
  kStopString,  // one of Request::stop matched (its text is not emitted)
  kCancelled,
  kRefused,  // not started: the engine's rules (Engine::check, --max-sessions); Event::error says why
  kError,    // an internal failure (the forward pass): Event::error says what
};

// kRefused or kError: the request ended with an error message, not output.
inline bool failed(StopReason r) { return r == StopReason::kRefused || r == StopReason::kError; }

const char* stop_reason_name(StopReason r);

struct Request {
  std::vector<int32_t> prompt;  // token ids (chat template already applied)
  std::string session;          // requests of one session run in order; "" = none
  Priority priority = Priority::kNormal;
  SamplingParams sampling;
  int max_tokens = 256;
  std::vector<std::string> stop;  // stop strings, matched across token boundaries
  bool ignore_eos = false;
  uint64_t cache_namespace = 0;  // blocks are shared only within a namespace
  bool expect_return = false;    // the turn ends in a tool call: keep its blocks longer
  // Generated text containing one of these (e.g. "<tool_call>") means the
  // turn ends in a tool call: the agent comes back soon, so its blocks are
  // kept longer, as with expect_return.
  std::vector<std::string> return_markers;
  // Control tokens' text stays in the output (gpt-oss harmony: its channel
  // markers are the structure the output parser reads); end-of-generation
  // tokens never do.
  bool render_special = false;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t disk_tokens = 0;    // of those, loaded from the disk tier
  int64_t generated_tokens = 0;
  double queue_ms = 0;  // submit -> first scheduled
  double ttft_ms = 0;   // submit -> first token
  double decode_tokens_per_s = 0;
};

struct Event {
  std::string text;             // UTF-8 delta (complete characters only)
  std::vector<int32_t> tokens;  // tokens behind this delta
  bool done = false;
  StopReason stop = StopReason::kNone;
  std::string stop_string;  // the matched stop string (kStopString)
  std::string error;        // kRefused, kError
  Usage usage;              // with done
};

// The events of one request, in order. Filled by the engine thread, read
// by the client's thread.
class Stream {
 public:
  explicit Stream(uint64_t id) : id_(id) {}
  uint64_t id() const { return id_; }

  // The next event; nullopt on timeout. After the done event, nullopt.
  std::optional<Event> next(std::chrono::milliseconds timeout = std::chrono::hours(24));
  // Waits for the end; returns the concatenated text and the final event.
  Event wait();

  void push(Event e);  // engine side

 private:
  uint64_t id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool finished_ = false;
};

}  // namespace tandem::engine

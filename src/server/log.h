// tandem serve's log: one line per event on stderr (and in --log-file), as
// text for people or as one JSON object per line for log shippers. Every
// finished HTTP request gets one line (RequestRecord) saying who asked,
// what was served from cache and how fast.
#pragma once

#include "core/status.h"
#include "engine/request.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace tandem::server {

enum class LogFormat { kText, kJson };

std::optional<LogFormat> parse_log_format(std::string_view name);  // "text" | "json"

struct LogOptions {
  LogFormat format = LogFormat::kText;
  std::string file;    // appended to besides stderr; "" for none
  bool quiet = false;  // warnings and errors only
};

// Replaces spdlog's default logger (and the request logger) with ones that
// write in OPTIONS.format to stderr and OPTIONS.file. An error when the file
// cannot be opened.
Status configure_logging(const LogOptions& options);
LogFormat log_format();

// One finished HTTP request. Generation routes fill every field; others
// leave id, stop and usage empty.
struct RequestRecord {
  std::string method, path;
  int status = 0;
  std::string id;       // the response id (msg_..., chatcmpl-..., resp_...)
  std::string session;  // session key, shortened
  std::string key;      // which API key: "key2:normal" (never the key itself); "" without keys
  std::string node;     // tandem serve --node-id; "" without one
  bool stream = false;
  std::string stop;  // engine stop reason ("end_of_text", "max_tokens", ...); "" when none ran
  engine::Usage usage;
  double total_ms = 0;  // request received -> response written
  std::string error;    // the error message an error response carried
};

// "POST /v1/messages 200 id=msg_.. session=1a2b3c4d key=key1:normal stop=end_of_text
// prompt=19140 cached=19136 ..." (fields of a non-generation request left out).
std::string request_text(const RequestRecord& r);
nlohmann::ordered_json request_json(const RequestRecord& r);

// Writes R through the request logger (/health and /metrics at debug level,
// so scrapers do not flood the log).
void log_request(const RequestRecord& r);

// The first 12 characters of a session key ("" stays "").
std::string short_session(const std::string& session);

}  // namespace tandem::server

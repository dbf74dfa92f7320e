#include "server/log.h"

#include <fmt/format.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <ctime>
#include <memory>
#include <vector>

namespace tandem::server {
namespace {

constexpr const char* kRequestLogger = "request";
std::atomic<LogFormat> g_format{LogFormat::kText};

void append(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

// "2026-12-06 11:48:59.123" in local time (text) or "2026-12-06T11:48:59.123Z" (json).
std::string timestamp(spdlog::log_clock::time_point t, bool iso_utc) {
  const auto since = t.time_since_epoch();
  const std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(since).count();
  const int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000);
  std::tm tm{};
  if (iso_utc) gmtime_r(&secs, &tm);
  else localtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}.{:03}{}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     iso_utc ? 'T' : ' ', tm.tm_hour, tm.tm_min, tm.tm_sec, ms, iso_utc ? "Z" : "");
}

// One line per message. JSON: {"time", "level", "msg"}; the request logger's
// messages are already JSON objects whose fields join time and level.
class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const auto level = spdlog::level::to_string_view(msg.level);
    if (format_ == LogFormat::kText) {
      append(dest, fmt::format("{} {:<5} ", timestamp(msg.time, false), std::string_view(level.data(), level.size())));
      append(dest, payload);
    } else {
      append(dest, fmt::format(R"({{"time":"{}","level":"{}",)", timestamp(msg.time, true),
                               std::string_view(level.data(), level.size())));
      const std::string_view name(msg.logger_name.data(), msg.logger_name.size());
      if (name == kRequestLogger && payload.size() >= 2 && payload.front() == '{') {
        append(dest, payload.substr(1));
      } else {
        append(dest, "\"msg\":");
        append(dest,
               nlohmann::json(std::string(payload)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        append(dest, "}");
      }
    }
    append(dest, "\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LineFormatter>(format_); }

 private:
  LogFormat format_;
};

std::shared_ptr<spdlog::logger> request_logger() {
  auto l = spdlog::get(kRequestLogger);
  return l ? l : spdlog::default_logger();
}

double round1(double v) { return std::round(v * 10) / 10; }

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

LogFormat log_format() { return g_format.load(); }

Status configure_logging(const LogOptions& options) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_sink_mt>()};
  if (!options.file.empty()) {
    // spdlog would create missing folders; a typo in the path should be an error instead.
    std::FILE* probe = std::fopen(options.file.c_str(), "a");
    if (probe == nullptr) return Status::errorf("--log-file {}: {}", options.file, std::strerror(errno));
    std::fclose(probe);
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file, /*truncate=*/false));
    } catch (const spdlog::spdlog_ex& e) {
      return Status::errorf("--log-file {}: {}", options.file, e.what());
    }
  }
  for (auto& s : sinks) s->set_formatter(std::make_unique<LineFormatter>(options.format));
  const auto level = options.quiet ? spdlog::level::warn : spdlog::level::info;
  auto main = std::make_shared<spdlog::logger>("tandem", sinks.begin(), sinks.end());
  auto requests = std::make_shared<spdlog::logger>(kRequestLogger, sinks.begin(), sinks.end());
  for (auto& l : {main, requests}) {
    l->set_level(level);
    l->flush_on(spdlog::level::info);  // a line is in the file as soon as it is logged (tail -f)
  }
  spdlog::drop(kRequestLogger);
  spdlog::register_logger(requests);
  spdlog::set_default_logger(main);
  g_format.store(options.format);
  return {};
}

std::string short_session(const std::string& session) { return session.substr(0, 12); }

std::string request_text(const RequestRecord& r) {
  std::string s = fmt::format("{} {} {}", r.method, r.path, r.status);
  if (!r.id.empty()) s += fmt::format(" id={}", r.id);
  if (!r.node.empty()) s += fmt::format(" node={}", r.node);
  if (!r.session.empty()) s += fmt::format(" session={}", r.session);
  if (!r.key.empty()) s += fmt::format(" key={}", r.key);
  if (!r.stop.empty()) {
    const engine::Usage& u = r.usage;
    s += fmt::format(" {}stop={} prompt={} cached={} disk={} generated={} queue_ms={:.0f} ttft_ms={:.0f} tok/s={:.1f}",
                     r.stream ? "stream " : "", r.stop, u.prompt_tokens, u.cached_tokens, u.disk_tokens,
                     u.generated_tokens, u.queue_ms, u.ttft_ms, u.decode_tokens_per_s);
  }
  s += fmt::format(" ms={:.0f}", r.total_ms);
  if (!r.error.empty())
    s += fmt::format(" error={}",
                     nlohmann::json(r.error).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return s;
}

nlohmann::ordered_json request_json(const RequestRecord& r) {
  nlohmann::ordered_json j{{"event", "request"}, {"method", r.method}, {"path", r.path}, {"status", r.status}};
  if (!r.id.empty()) j["id"] = r.id;
  if (!r.node.empty()) j["node"] = r.node;
  if (!r.session.empty()) j["session"] = r.session;
  if (!r.key.empty()) j["key"] = r.key;
  if (!r.stop.empty()) {
    const engine::Usage& u = r.usage;
    j["stream"] = r.stream;
    j["stop"] = r.stop;
    j["prompt_tokens"] = u.prompt_tokens;
    j["cached_tokens"] = u.cached_tokens;
    j["disk_tokens"] = u.disk_tokens;
    j["generated_tokens"] = u.generated_tokens;
    j["queue_ms"] = round1(u.queue_ms);
    j["ttft_ms"] = round1(u.ttft_ms);
    j["decode_tokens_per_s"] = round1(u.decode_tokens_per_s);
  }
  j["total_ms"] = round1(r.total_ms);
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

void log_request(const RequestRecord& r) {
  const bool scrape = r.path == "/health" || r.path == "/metrics";
  const auto level = scrape ? spdlog::level::debug : spdlog::level::info;
  auto logger = request_logger();
  if (!logger->should_log(level)) return;
  const std::string line = log_format() == LogFormat::kJson
                               ? request_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                               : request_text(r);
  logger->log(level, "{}", line);
}

}  // namespace tandem::server

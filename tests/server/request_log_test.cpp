// The request log (server/log.h) and the prompt render route
// (/v1/render, server/render.h), against a live server.
#include "server/log.h"
#include "server/render.h"
#include "core/mapped_file.h"
#include "server_fixture.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <string>
#include <vector>

namespace tandem {
namespace {

using server::json;
using test::post_json;
using test::user_turn;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// The log's lines once it holds N (a request's line is written after its
// response went out, so the client can be faster than the log), or after 10 s.
std::vector<std::string> read_lines_when(const std::string& path, size_t n) {
  for (int i = 0; i < 1000 && read_lines(path).size() < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return read_lines(path);
}

// Logs to FILE in FORMAT for the life of the object, then back to warnings on stderr.
struct LogToFile {
  std::string file;
  LogToFile(const std::string& name, server::LogFormat format) : file(test::scratch_dir(name) + "/tandem.log") {
    Status st = server::configure_logging({format, file, false});
    EXPECT_TRUE(st.ok()) << st.message();
  }
  ~LogToFile() { (void)server::configure_logging({server::LogFormat::kText, "", /*quiet=*/true}); }
};

TEST(RequestLog, TextLineNamesEveryField) {
  server::RequestRecord r;
  r.method = "POST";
  r.path = "/v1/messages";
  r.status = 200;
  r.id = "msg_1";
  r.session = server::short_session("0123456789abcdef-session");
  r.key = "key2:low";
  r.stream = true;
  r.stop = "end_of_text";
  r.usage = {.prompt_tokens = 19140,
             .cached_tokens = 19136,
             .disk_tokens = 64,
             .generated_tokens = 12,
             .queue_ms = 3.2,
             .ttft_ms = 85.4,
             .decode_tokens_per_s = 31.25};
  r.total_ms = 460.6;
  EXPECT_EQ(server::request_text(r),
            "POST /v1/messages 200 id=msg_1 session=0123456789ab key=key2:low stream stop=end_of_text prompt=19140 "
            "cached=19136 disk=64 generated=12 queue_ms=3 ttft_ms=85 tok/s=31.2 ms=461");
  const auto j = server::request_json(r);
  EXPECT_EQ(j["cached_tokens"], 19136);
  EXPECT_EQ(j["session"], "0123456789ab");
  EXPECT_EQ(j["ttft_ms"], 85.4);
  EXPECT_FALSE(j.contains("error"));

  server::RequestRecord health{.method = "GET", .path = "/health", .status = 200, .total_ms = 0.2};
  EXPECT_EQ(server::request_text(health), "GET /health 200 ms=0");
  EXPECT_FALSE(server::request_json(health).contains("stop")) << "no generation fields without a generation";
}

TEST(RequestLog, OneJsonLinePerRequestWithCacheUse) {
  server::ServerOptions ho;
  ho.api_keys = {{"sk-first", engine::Priority::kHigh}, {"sk-second", engine::Priority::kLow}};
  test::LiveServer s({}, ho);
  LogToFile log("request_log_json", server::LogFormat::kJson);
  httplib::Client cli("127.0.0.1", s.port());
  const json body = {
      {"model", "m"}, {"max_tokens", 4}, {"system", std::string(2000, 'x')}, {"messages", user_turn("hi")}};
  const httplib::Headers headers{{"x-api-key", "sk-second"}, {"x-session-id", "agent-7f3a9c2b41d0-long-tail"}};
  json first = post_json(cli, "/v1/messages", body, 200, headers);
  json second = post_json(cli, "/v1/messages", body, 200, headers);
  post_json(cli, "/v1/messages", {{"model", "m"}}, 400, headers);
  post_json(cli, "/v1/messages", body, 401, {{"x-api-key", "sk-wrong"}});

  // A line is written after its response went out, so lines of requests on
  // different connections may come in any order: find each by id or status.
  const auto lines = read_lines_when(log.file, 4);
  ASSERT_EQ(lines.size(), 4u);
  std::vector<json> rows;
  for (const auto& l : lines) rows.push_back(json::parse(l));  // every line is one JSON object
  for (const auto& r : rows) {
    EXPECT_EQ(r["event"], "request");
    EXPECT_EQ(r["level"], "info");
    EXPECT_EQ(r["time"].get<std::string>().back(), 'Z');
    EXPECT_EQ(r.dump().find("sk-second"), std::string::npos) << "never the key itself";
  }
  auto row = [&](const std::string& field, const json& value) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const json& r) { return r.value(field, json()) == value; });
    EXPECT_NE(it, rows.end()) << field << " " << value;
    return it == rows.end() ? json::object() : *it;
  };
  const json r1 = row("id", first["id"]), r2 = row("id", second["id"]), bad = row("status", 400),
             denied = row("status", 401);
  EXPECT_EQ(r1["status"], 200);
  EXPECT_EQ(r1["key"], "key2:low") << "the key's position and tier";
  EXPECT_EQ(r1["session"], "agent-7f3a9c");
  EXPECT_EQ(r1["stop"], "max_tokens");
  EXPECT_EQ(r1["generated_tokens"], 4);
  EXPECT_EQ(r1["cached_tokens"], 0);
  // The second turn's cache use is the client's.
  EXPECT_EQ(r2["cached_tokens"], second["usage"]["cache_read_input_tokens"]);
  EXPECT_EQ(r2["cached_tokens"], r2["prompt_tokens"].get<int64_t>() - 1) << "all but the last prompt token";
  EXPECT_EQ(r2["prompt_tokens"],
            second["usage"]["cache_read_input_tokens"].get<int64_t>() + second["usage"]["input_tokens"].get<int64_t>());
  EXPECT_GE(r2["ttft_ms"].get<double>(), r2["queue_ms"].get<double>());
  EXPECT_EQ(bad["error"], "messages: field required");
  EXPECT_EQ(bad["key"], "key2:low");
  EXPECT_FALSE(bad.contains("stop"));
  EXPECT_EQ(denied["error"], "invalid API key");
  EXPECT_FALSE(denied.contains("key"));
}

TEST(RequestLog, TextLinesAndScrapesAtDebug) {
  test::LiveServer s;
  LogToFile log("request_log_text", server::LogFormat::kText);
  httplib::Client cli("127.0.0.1", s.port());
  ASSERT_EQ(cli.Get("/health")->status, 200);
  ASSERT_EQ(cli.Get("/metrics")->status, 200);
  post_json(cli, "/v1/chat/completions", {{"model", "m"}, {"max_tokens", 2}, {"messages", user_turn("hi")}}, 200,
            {{"x-session-id", "s1"}});
  // The scrapes finished long before the chat request's line (it waits for
  // its generation), so their lines, if any, are in the file by then.
  const auto lines = read_lines_when(log.file, 1);
  ASSERT_EQ(lines.size(), 1u) << "health checks and scrapes are not logged at info";
  EXPECT_NE(lines[0].find(" info  POST /v1/chat/completions 200 id=chatcmpl-"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" session=s1 stop=max_tokens prompt="), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" generated=2 "), std::string::npos) << lines[0];
}

TEST(Render, RouteGivesThePromptTheServerRuns) {
  test::LiveServer s;
  httplib::Client cli("127.0.0.1", s.port());
  const json anthropic = {
      {"model", "m"}, {"max_tokens", 4}, {"system", "Be brief."}, {"messages", user_turn("hi <|im_end|>")}};
  json r = post_json(cli, "/v1/render?ids=1", anthropic, 200);
  EXPECT_EQ(r["api"], "anthropic") << "a top-level system field";
  EXPECT_EQ(r["prompt"],
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi <|im_end|><|im_end|>\n"
            "<|im_start|>assistant\n");
  // The client's "<|im_end|>" is text: one control token fewer than the template's own.
  const auto ids = r["ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(r["tokens"], ids.size());
  const int32_t im_end = s.tok->vocab().find("<|im_end|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_end), 2);
  // The same count the real route reports.
  json run = post_json(cli, "/v1/messages", anthropic, 200);
  EXPECT_EQ(run["usage"]["input_tokens"].get<int64_t>() + run["usage"]["cache_read_input_tokens"].get<int64_t>(),
            r["tokens"].get<int64_t>());

  json openai = post_json(cli, "/v1/render", {{"model", "m"}, {"messages", user_turn("hi")}}, 200);
  EXPECT_EQ(openai["api"], "openai");
  EXPECT_FALSE(openai.contains("ids"));
  json responses = post_json(cli, "/v1/render", {{"model", "m"}, {"input", "hi"}}, 200);
  EXPECT_EQ(responses["api"], "responses");
  EXPECT_EQ(responses["prompt"], openai["prompt"]);
}

TEST(Render, BadBodiesGetTheRoutesErrors) {
  test::LiveServer s;
  httplib::Client cli("127.0.0.1", s.port());
  const json no_max = {{"model", "m"}, {"messages", user_turn("hi")}};
  json real = post_json(cli, "/v1/messages", no_max, 400);
  json rendered = post_json(cli, "/v1/render?api=anthropic", no_max, 400);
  EXPECT_EQ(rendered, real) << "same envelope, same message";
  EXPECT_EQ(rendered["type"], "error");
  json header = post_json(cli, "/v1/render", no_max, 400, {{"anthropic-version", "2023-06-01"}});
  EXPECT_EQ(header, real);
  json openai = post_json(cli, "/v1/render?api=openai", {{"model", "m"}, {"messages", "x"}}, 400);
  EXPECT_EQ(openai, post_json(cli, "/v1/chat/completions", {{"model", "m"}, {"messages", "x"}}, 400));
  EXPECT_EQ(post_json(cli, "/v1/render?api=gemini", no_max, 400)["error"]["param"], "api");
  auto bad = cli.Post("/v1/render", "{", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

TEST(Render, TemplatesThatJoinArgumentsToTextGetJsonText) {
  test::LiveServer s;
  server::ChatRequest chat;
  chat.messages = json::parse(R"([{"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "sunny"}])");
  // Qwen3's own template prints objects with tojson.
  EXPECT_FALSE(s.service->prompts().string_arguments());
  auto deepseek = read_file(test::source_path("tests/chat/templates/deepseek-ai-DeepSeek-V3.1.jinja"));
  ASSERT_TRUE(deepseek.ok());
  auto prompts = server::PromptBuilder::create(*s.tok, *deepseek);
  ASSERT_TRUE(prompts.ok()) << prompts.message();
  EXPECT_TRUE(prompts->string_arguments());
  auto text = prompts->render(chat);
  ASSERT_TRUE(std::holds_alternative<std::string>(text)) << std::get<server::ApiError>(text).message;
  EXPECT_NE(
      std::get<std::string>(text).find("get_weather<｜tool▁sep｜>{\"city\":\"Oslo\",\"days\":2}<｜tool▁call▁end｜>"),
      std::string::npos)
      << std::get<std::string>(text);
  // A template file replaces the model's in the server too.
  server::ServiceOptions so;
  so.chat_template = *deepseek;
  test::LiveServer with_file(so);
  httplib::Client cli("127.0.0.1", with_file.port());
  json r = post_json(cli, "/v1/render", {{"model", "m"}, {"messages", user_turn("hi")}}, 200);
  EXPECT_EQ(r["prompt"], "<｜User｜>hi<｜Assistant｜></think>") << "DeepSeek V3.1's turns (Qwen3 has no BOS)";
}

TEST(Render, GuessesTheApiFromTheBody) {
  using server::BodyApi;
  EXPECT_EQ(server::guess_body_api(json{{"messages", json::array()}}), BodyApi::kOpenAiChat);
  EXPECT_EQ(server::guess_body_api(json{{"input", "x"}}), BodyApi::kResponses);
  EXPECT_EQ(server::guess_body_api(json{{"prompt", "x"}}), BodyApi::kOpenAiCompletions);
  EXPECT_EQ(server::guess_body_api(json{{"system", "s"}, {"messages", json::array()}}), BodyApi::kAnthropic);
  const json tool_result = {
      {"messages", {{{"role", "user"}, {"content", {{{"type", "tool_result"}, {"tool_use_id", "t"}}}}}}}};
  EXPECT_EQ(server::guess_body_api(tool_result), BodyApi::kAnthropic);
  EXPECT_EQ(server::guess_body_api(json::array()), BodyApi::kOpenAiChat);
  EXPECT_EQ(server::shared_prefix({1, 2, 3}, {1, 2, 4, 5}), 2u);
  EXPECT_EQ(server::shared_prefix({1, 2}, {1, 2}), 2u);
}

}  // namespace
}  // namespace tandem

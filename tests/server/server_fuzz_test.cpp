// 10,000 seeded mutations of valid request bodies across the routes: the
// server answers each with a 2xx or 4xx (never a crash, hang or 5xx) and
// still answers /health at the end.
#include "server_fixture.h"

#include <httplib.h>

#include <gtest/gtest.h>

#include <random>

namespace tandem::server {
namespace {

struct Seed {
  std::string path;
  json body;
};

std::vector<Seed> seeds() {
  const json user = json::array({{{"role", "user"}, {"content", "hello <|im_end|> there"}}});
  const json tools = json::array({{{"name", "read"}, {"description", "d"}, {"input_schema", {{"type", "object"}}}}});
  const json history = json::array(
      {{{"role", "user"}, {"content", "go"}},
       {{"role", "assistant"},
        {"content", json::array({{{"type", "tool_use"}, {"id", "t1"}, {"name", "read"}, {"input", {{"p", 1}}}}})}},
       {{"role", "user"},
        {"content",
         json::array({{{"type", "tool_result"}, {"tool_use_id", "t1"}, {"content", "ok"}, {"is_error", true}}})}}});
  const json oai_history = json::array(
      {{{"role", "system"}, {"content", "s"}},
       {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "hi"}}})}},
       {{"role", "assistant"},
        {"content", nullptr},
        {"tool_calls",
         json::array({{{"id", "c"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}})}},
       {{"role", "tool"}, {"tool_call_id", "c"}, {"content", "r"}}});
  auto a2a_call = [](const char* method, json params) {
    return json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", std::move(params)}};
  };
  const json a2a_message = {{"messageId", "m1"},
                            {"role", "ROLE_USER"},
                            {"contextId", "ctx"},
                            {"parts", json::array({{{"text", "hi"}}, {{"data", {{"k", 1}}}}})},
                            {"metadata", {{"agent", "default"}}}};
  return {
      {"/v1/messages", {{"model", "m"}, {"max_tokens", 4}, {"messages", user}, {"system", "be brief"}}},
      {"/v1/messages", {{"model", "m"}, {"max_tokens", 4}, {"messages", history}, {"tools", tools}, {"stream", true}}},
      {"/v1/messages/count_tokens", {{"model", "m"}, {"messages", history}, {"tools", tools}}},
      {"/v1/chat/completions", {{"model", "m"}, {"max_tokens", 3}, {"messages", oai_history}, {"stop", {"a", "b"}}}},
      {"/v1/chat/completions",
       {{"model", "m"},
        {"messages", user},
        {"stream", true},
        {"stream_options", {{"include_usage", true}}},
        {"seed", 3}}},
      {"/v1/completions", {{"model", "m"}, {"prompt", "Once"}, {"max_tokens", 2}, {"temperature", 0.5}}},
      {"/v1/responses",
       {{"model", "m"},
        {"instructions", "be brief"},
        {"stream", true},
        {"tools", json::array({{{"type", "function"}, {"name", "f"}, {"parameters", {{"type", "object"}}}}})},
        {"input", json::array({{{"type", "message"},
                                {"role", "user"},
                                {"content", json::array({{{"type", "input_text"}, {"text", "x"}}})}},
                               {{"type", "function_call"}, {"call_id", "c"}, {"name", "f"}, {"arguments", "{}"}},
                               {{"type", "function_call_output"}, {"call_id", "c"}, {"output", "ok"}}})}}},
      {"/a2a", a2a_call("SendMessage", {{"message", a2a_message}, {"configuration", json::object()}})},
      {"/a2a/default", a2a_call("SendStreamingMessage", {{"message", a2a_message}})},
      {"/a2a", a2a_call("SendMessage", {{"message", a2a_message}, {"configuration", {{"returnImmediately", true}}}})},
      {"/a2a", a2a_call("GetTask", {{"id", "t"}, {"historyLength", 2}})},
      {"/a2a", a2a_call("CancelTask", {{"id", "t"}})},
      {"/a2a", a2a_call("ListTasks", {{"contextId", "c"}, {"pageSize", 5}})},
      {"/a2a", a2a_call("message/send", {{"message",
                                          {{"kind", "message"},
                                           {"messageId", "m"},
                                           {"role", "user"},
                                           {"parts", json::array({{{"kind", "text"}, {"text", "hi"}}})}}},
                                         {"configuration", {{"blocking", true}}}})},
  };
}

json random_value(std::mt19937& rng) {
  switch (rng() % 9) {
    case 0: return nullptr;
    case 1: return static_cast<int64_t>(rng()) - (1ll << 31);
    case 2: return -1;
    case 3: return 1e308 * 10;  // inf: nlohmann writes null
    case 4: return "<|im_start|>system\n\xff\xfe";
    case 5: return json::array({json::object(), 1, "x"});
    case 6: return json::object({{"type", "image"}, {"text", 5}});
    case 7: return std::string(rng() % 3000, 'a');
    default: return true;
  }
}

// Changes one random place of J (recursively picks a child).
void mutate_json(json& j, std::mt19937& rng, int depth = 0) {
  if ((j.is_object() || j.is_array()) && !j.empty() && depth < 6 && rng() % 4 != 0) {
    auto it = j.begin();
    std::advance(it, static_cast<long>(rng() % j.size()));
    if (rng() % 8 == 0) {
      if (j.is_object()) j.erase(it.key());
      else j.erase(static_cast<size_t>(std::distance(j.begin(), it)));
      return;
    }
    mutate_json(*it, rng, depth + 1);
    return;
  }
  if (j.is_object() && rng() % 3 == 0) {
    j["extra_" + std::to_string(rng() % 5)] = random_value(rng);
    return;
  }
  j = random_value(rng);
}

std::string mutate_bytes(std::string s, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const size_t at = rng() % s.size();
    switch (rng() % 4) {
      case 0: s[at] = static_cast<char>(rng()); break;
      case 1: s.resize(at); break;
      case 2: s.insert(at, std::string(1 + rng() % 3, "{}[]\",:\\"[rng() % 8])); break;
      default: s.erase(at, 1 + rng() % 8); break;
    }
  }
  return s;
}

TEST(ServerFuzz, MutatedBodiesNeverBreakTheServer) {
  engine::EngineOptions eo;
  eo.batch_wait_ms = 0;
  ServiceOptions so;
  so.max_tokens_cap = 2;
  test::LiveServer s(so, {}, eo, /*ctx=*/2048);
  httplib::Client cli("127.0.0.1", s.port());
  cli.set_read_timeout(60);
  const auto corpus = seeds();
  std::mt19937 rng(20261123);
  std::map<int, int> statuses;
  constexpr int kRequests = 10000;
  for (int i = 0; i < kRequests; ++i) {
    const Seed& seed = corpus[rng() % corpus.size()];
    std::string body;
    if (rng() % 3 == 0) {
      body = mutate_bytes(seed.body.dump(), rng);
    } else {
      json j = seed.body;
      for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) mutate_json(j, rng);
      body = j.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    auto res = cli.Post(seed.path.c_str(), body, "application/json");
    ASSERT_TRUE(res) << "no answer to request " << i << " on " << seed.path << ": " << body.substr(0, 500);
    ++statuses[res->status];
    ASSERT_TRUE((res->status >= 200 && res->status < 300) || (res->status >= 400 && res->status < 500))
        << res->status << " for " << seed.path << " " << body.substr(0, 500) << " -> " << res->body;
    if (res->status >= 400) {
      auto e = json::parse(res->body, nullptr, false);
      ASSERT_TRUE(e.is_object() && e.contains("error")) << res->body;
    }
  }
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_GT(statuses[200], kRequests / 20) << "the mutations leave enough valid requests to exercise generation";
  EXPECT_GT(statuses[400], kRequests / 5);
  // Requests whose clients already have their answer may still be ending in
  // the engine: check the cache's invariants once it is idle (the check reads
  // the engine's state, so only an idle engine may be checked from here).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         (s.service->in_flight() > 0 || s.engine->metrics().running > 0 || s.engine->metrics().waiting > 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(s.engine->check_invariants(), "");
}

}  // namespace
}  // namespace tandem::server

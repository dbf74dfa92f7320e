// The Responses API adapter on what Codex CLI sends (fields observed from
// Codex CLI 0.169, see docs/API.md): accepted, tools flattened, namespaces
// round-tripped.
#include "server/responses.h"

#include <gtest/gtest.h>

namespace tandem::server {
namespace {

json codex_like_body() {
  return {
      {"model", "qwen3"},
      {"instructions", "You are Codex."},
      {"input", json::array({
                    {{"type", "message"},
                     {"role", "developer"},
                     {"content", json::array({{{"type", "input_text"}, {"text", "sandbox"}}})}},
                    {{"type", "message"},
                     {"role", "user"},
                     {"content", json::array({{{"type", "input_text"}, {"text", "hi"}}})}},
                    {{"type", "reasoning"}, {"summary", json::array()}, {"encrypted_content", "opaque"}},
                    {{"type", "function_call"},
                     {"name", "close_agent"},
                     {"namespace", "multi_agent_v1"},
                     {"call_id", "c1"},
                     {"arguments", "{\"target\":\"a\"}"}},
                    {{"type", "function_call_output"}, {"call_id", "c1"}, {"output", "closed"}},
                })},
      {"tools",
       json::array({
           {{"type", "function"},
            {"name", "exec_command"},
            {"strict", false},
            {"parameters", {{"type", "object"}, {"properties", {{"cmd", {{"type", "string"}}}}}}}},
           {{"type", "namespace"},
            {"name", "multi_agent_v1"},
            {"description", "sub-agents"},
            {"tools",
             json::array({{{"type", "function"}, {"name", "close_agent"}, {"parameters", {{"type", "object"}}}}})}},
           {{"type", "web_search"}, {"external_web_access", false}},
       })},
      {"tool_choice", "auto"},
      {"parallel_tool_calls", true},
      {"reasoning", {{"effort", "medium"}, {"summary", "auto"}}},
      {"store", false},
      {"stream", true},
      {"include", json::array({"reasoning.encrypted_content"})},
      {"prompt_cache_key", "0199-session"},
      {"text", {{"verbosity", "low"}}},
      {"client_metadata", {{"x-codex-window-id", "w"}}},
  };
}

TEST(ResponsesParse, WhatCodexSendsIsAccepted) {
  auto r = responses::parse_request(codex_like_body());
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(r)) << std::get<ApiError>(r).message;
  const ChatRequest& c = std::get<ChatRequest>(r);
  EXPECT_EQ(c.session, "0199-session");
  EXPECT_TRUE(c.stream);
  EXPECT_EQ(c.reasoning_effort, "medium");
  // instructions and the developer message are system messages; reasoning items are dropped.
  ASSERT_EQ(c.messages.size(), 5u);
  EXPECT_EQ(c.messages[0]["role"], "system");
  EXPECT_EQ(c.messages[1]["role"], "system");
  EXPECT_EQ(c.messages[2]["content"], "hi");
  EXPECT_EQ(c.messages[3]["tool_calls"][0]["function"]["name"], "multi_agent_v1.close_agent");
  EXPECT_EQ(c.messages[4]["role"], "tool");
  // Function tools, and a namespace's tools under qualified names; web_search is OpenAI's own.
  ASSERT_EQ(c.tools.size(), 2u);
  EXPECT_EQ(c.tools[0]["function"]["name"], "exec_command");
  EXPECT_EQ(c.tools[1]["function"]["name"], "multi_agent_v1.close_agent");
  EXPECT_EQ(c.tool_namespaces, std::vector<std::string>{"multi_agent_v1"});
}

TEST(ResponsesParse, NamespacedCallsGoBackWithTheirNamespace) {
  const ChatRequest chat = std::get<ChatRequest>(responses::parse_request(codex_like_body()));
  Completion c;
  c.tool_calls = {{"call_1", "multi_agent_v1.close_agent", "{}"}, {"call_2", "exec_command", "{\"cmd\":\"ls\"}"}};
  const json r = responses::response("resp_1", "qwen3", 0, chat, c);
  ASSERT_EQ(r["output"].size(), 2u);
  EXPECT_EQ(r["output"][0]["name"], "close_agent");
  EXPECT_EQ(r["output"][0]["namespace"], "multi_agent_v1");
  EXPECT_EQ(r["output"][1]["name"], "exec_command");
  EXPECT_FALSE(r["output"][1].contains("namespace"));

  responses::EventWriter w("resp_1", "qwen3", 0, chat.tool_namespaces);
  std::string sse = w.start(10);
  sse += w.write({{chat::OutputEvent::kToolCallStart, "", "multi_agent_v1.close_agent", "call_1"},
                  {chat::OutputEvent::kToolCallArguments, "{}", "", "call_1"},
                  {chat::OutputEvent::kToolCallEnd, "", "", "call_1"}});
  sse += w.finish(c);
  const size_t added = sse.find("response.output_item.added");
  ASSERT_NE(added, std::string::npos);
  const std::string item = sse.substr(added, sse.find('\n', sse.find("data: ", added)) - added);
  EXPECT_NE(item.find("\"name\":\"close_agent\""), std::string::npos) << item;
  EXPECT_NE(item.find("\"namespace\":\"multi_agent_v1\""), std::string::npos) << item;
  // Events are numbered in the order they are written.
  EXPECT_LT(sse.find("\"sequence_number\":0"), sse.find("\"sequence_number\":1"));
  EXPECT_LT(sse.find("response.created"), sse.find("\"sequence_number\":1"));
}

}  // namespace
}  // namespace tandem::server

// The A2A protocol's shapes (a2a_protocol.h) and the runtime on a live
// server from several threads at once (the tsan label runs it raced).
#include "server/a2a_protocol.h"
#include "server_fixture.h"

#include <httplib.h>

#include <gtest/gtest.h>

#include <thread>

namespace tandem::server {
namespace {

json send_params(json parts, std::string role = "ROLE_USER") {
  return {{"message", {{"messageId", "m1"}, {"role", std::move(role)}, {"parts", std::move(parts)}}}};
}

std::string parse_error(const json& params) {
  auto r = a2a::parse_send_params(params);
  auto* e = std::get_if<a2a::RpcError>(&r);
  return e ? fmt::format("{} {}", e->code, e->message) : "(accepted)";
}

TEST(A2aProtocol, MessagesOfBothDialects) {
  auto r = a2a::parse_send_params(send_params(json::array({{{"text", "a"}}, {{"data", {{"k", 1}}}}})));
  ASSERT_TRUE(std::holds_alternative<a2a::UserMessage>(r));
  EXPECT_EQ(std::get<a2a::UserMessage>(r).text, "a\n{\"k\":1}");
  auto old = a2a::parse_send_params(send_params(json::array({{{"kind", "text"}, {"text", "b"}}}), "user"));
  ASSERT_TRUE(std::holds_alternative<a2a::UserMessage>(old));
  EXPECT_EQ(std::get<a2a::UserMessage>(old).text, "b");

  EXPECT_EQ(parse_error(json::object()), "-32602 params.message: expected a message object");
  EXPECT_EQ(parse_error(send_params(json::array())), "-32602 message.parts: expected a non-empty list");
  EXPECT_EQ(parse_error(send_params(json::array({{{"text", "a"}}}), "ROLE_AGENT")),
            "-32602 message.role: expected ROLE_USER, got 'ROLE_AGENT'");
  EXPECT_EQ(parse_error(send_params(json::array({{{"url", "http://x"}}}))),
            "-32005 message.parts[0]: this agent reads text only (text and data parts)");
  json no_id = send_params(json::array({{{"text", "a"}}}));
  no_id["message"].erase("messageId");
  EXPECT_EQ(parse_error(no_id), "-32602 message.messageId is required");
  json images = send_params(json::array({{{"text", "a"}}}));
  images["configuration"] = {{"acceptedOutputModes", json::array({"image/png"})}};
  EXPECT_EQ(parse_error(images), "-32005 acceptedOutputModes: this agent answers in text/plain");
}

TEST(A2aProtocol, TasksAndEventsInEachDialect) {
  a2a::TaskView t;
  t.id = "t1";
  t.context_id = "c1";
  t.agent = "writer";
  t.state = a2a::TaskState::kCompleted;
  t.user.message_id = "m1";
  t.user.text = "hi";
  t.reply = "hello";
  t.artifact_id = "t1-answer";
  const json v1 = a2a::task_result(t, a2a::Dialect::kV1);
  EXPECT_EQ(v1["task"]["status"]["state"], "TASK_STATE_COMPLETED");
  EXPECT_EQ(v1["task"]["status"]["message"]["role"], "ROLE_AGENT");
  EXPECT_EQ(v1["task"]["artifacts"][0]["parts"][0]["text"], "hello");
  EXPECT_EQ(v1["task"]["history"].size(), 2u);
  EXPECT_EQ(a2a::task_json(t, a2a::Dialect::kV1, 1)["history"][0]["role"], "ROLE_AGENT");
  EXPECT_EQ(a2a::task_json(t, a2a::Dialect::kV1, 0)["history"].size(), 0u);
  const json v03 = a2a::task_result(t, a2a::Dialect::kV03);
  EXPECT_EQ(v03["kind"], "task");
  EXPECT_EQ(v03["status"]["state"], "completed");
  EXPECT_EQ(v03["history"][0]["parts"][0]["kind"], "text");
  EXPECT_EQ(a2a::status_update(t, a2a::Dialect::kV03, true)["final"], true);
  EXPECT_FALSE(a2a::status_update(t, a2a::Dialect::kV1, true)["statusUpdate"].contains("final"));
  const json chunk = a2a::artifact_update(t, a2a::Dialect::kV1, "he", false, false)["artifactUpdate"];
  EXPECT_FALSE(chunk.contains("append")) << "false flags are left out, as the SDK writes them";
  EXPECT_EQ(a2a::parse_state("canceled"), a2a::TaskState::kCanceled);
  EXPECT_EQ(a2a::parse_state("TASK_STATE_WORKING"), a2a::TaskState::kWorking);
  EXPECT_FALSE(a2a::parse_state("UNRECOGNIZED"));
}

json rpc(httplib::Client& cli, const std::string& method, const json& params) {
  json body = {{"jsonrpc", "2.0"}, {"id", 7}, {"method", method}, {"params", params}};
  return test::post_json(cli, "/a2a", body, 200);
}

// Tasks started, polled, listed and cancelled from several threads at once.
TEST(A2a, ConcurrentTasksGetsAndCancels) {
  test::LiveServer s;
  std::vector<std::thread> threads;
  std::atomic<int> completed{0}, canceled{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client cli("127.0.0.1", s.port());
      json params = send_params(json::array({{{"text", fmt::format("question {}", i)}}}));
      params["configuration"] = {{"returnImmediately", true}};
      const json started = rpc(cli, "SendMessage", params);
      const std::string id = started["result"]["task"]["id"];
      if (i % 2 == 1) {
        const json c = rpc(cli, "CancelTask", {{"id", id}});
        const bool cancelled = c.contains("result") && c["result"]["status"]["state"] == "TASK_STATE_CANCELED";
        const bool too_late = c.contains("error") && c["error"]["code"] == a2a::kTaskNotCancelable;
        EXPECT_TRUE(cancelled || too_late) << c.dump();
      }
      for (int k = 0; k < 400; ++k) {
        const json got = rpc(cli, "GetTask", {{"id", id}});
        const std::string state = got["result"]["status"]["state"];
        if (state == "TASK_STATE_COMPLETED") return (void)++completed;
        if (state == "TASK_STATE_CANCELED") return (void)++canceled;
        rpc(cli, "ListTasks", json::object());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      ADD_FAILURE() << "task " << id << " did not end";
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(completed + canceled, 4);
  EXPECT_GE(completed, 2);
  httplib::Client cli("127.0.0.1", s.port());
  EXPECT_EQ(rpc(cli, "ListTasks", {{"pageSize", 10}})["result"]["totalSize"], 4);
}

}  // namespace
}  // namespace tandem::server

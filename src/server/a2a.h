// A2A agents over the loaded model: JSON-RPC calls in, tasks run on the
// Service. An A2A context is a tandem session (its turns are kept here, its
// KV in the prefix cache and disk tier like any session's), a task is one
// request; cancelling a task cancels the request.
//
// Tasks and contexts live in memory (the newest kMaxTasks / kMaxContexts);
// both are partitioned by the caller's cache namespace (server/cache_scope.h),
// so a key never sees another key's tasks. Protocol shapes: a2a_protocol.h;
// routes: Server::handle_a2a (docs/A2A.md).
#pragma once

#include "engine/request.h"
#include "server/a2a_protocol.h"
#include "server/service.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tandem::server {

struct A2aCaller {
  engine::Priority priority = engine::Priority::kNormal;
  uint64_t cache_namespace = 0;
};

class A2aRuntime {
 public:
  static constexpr size_t kMaxTasks = 1000, kMaxContexts = 1000;

  // AGENTS: at least one (the first answers at /a2a).
  A2aRuntime(Service& service, std::vector<a2a::Agent> agents);
  // Cancels the tasks still running and waits for them.
  ~A2aRuntime();
  A2aRuntime(const A2aRuntime&) = delete;
  A2aRuntime& operator=(const A2aRuntime&) = delete;

  const std::vector<a2a::Agent>& agents() const { return agents_; }
  const a2a::Agent* find_agent(const std::string& name) const;

  // Whether REQUEST (a parsed JSON-RPC body) asks for an SSE stream.
  static bool is_streaming(const json& request);
  // Every non-streaming call: the JSON-RPC response. AGENT: the agent of
  // the route (/a2a/NAME), nullptr for /a2a (the message's metadata.agent,
  // else the first agent).
  json call(const json& request, const a2a::Agent* agent, const A2aCaller& caller);
  // A streaming call: WRITE gets each SSE event (false: the client is gone,
  // the task is cancelled). Errors before the first event come back as the
  // JSON-RPC error response (nothing written); nullopt once streamed.
  std::optional<json> stream(const json& request, const a2a::Agent* agent, const A2aCaller& caller,
                             const std::function<bool(const std::string&)>& write);

 private:
  struct Task {
    a2a::TaskView view;
    uint64_t ns = 0;
    std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
    int64_t order = 0;
    bool running = false;  // run() holds it: never trimmed meanwhile
  };
  struct Context {
    std::string agent;
    std::vector<std::pair<std::string, std::string>> turns;  // user text, agent reply
    int64_t last_used = 0;
  };
  // What a run reports as it goes (streaming): the text delta of the answer.
  using OnDelta = std::function<bool(const a2a::TaskView& snapshot, const std::string& delta)>;

  std::variant<a2a::TaskView, a2a::RpcError> create_task(const json& params, const a2a::Agent* agent,
                                                         const A2aCaller& caller);
  // Runs task ID to its end (blocking); returns its final view.
  a2a::TaskView run(const std::string& id, const A2aCaller& caller, const OnDelta& on_delta,
                    const std::function<bool()>& on_idle);
  json get_task(const json& params, a2a::Dialect d, const A2aCaller& caller);
  json cancel_task(const json& params, a2a::Dialect d, const A2aCaller& caller);
  json list_tasks(const json& params, a2a::Dialect d, const A2aCaller& caller);
  void run_in_background(const std::string& id, const A2aCaller& caller);
  void set_state(const std::string& id, a2a::TaskState s, const std::string& error = "");
  // The task PARAMS.id names (or -32602); the caller's task of that id under mu_ (or -32001).
  static std::string task_id_of(const json& params);
  Task& task_of(const std::string& id, const A2aCaller& caller);
  void trim();  // under mu_

  Service& service_;
  std::vector<a2a::Agent> agents_;
  std::mutex mu_;
  std::condition_variable changed_;  // a task's state changed; a background run ended
  std::map<std::string, Task> tasks_;
  std::map<std::string, Context> contexts_;  // key: namespace + context id
  int64_t counter_ = 0;
  int background_ = 0;  // runs started by returnImmediately, still going
};

}  // namespace tandem::server

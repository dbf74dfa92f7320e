// Crash safety of the disk tier, end to end: a `tandem serve` busy writing
// KV blocks (small RAM, so blocks also spill and reload) is killed with
// SIGKILL at a random moment, then started again on the same cache folder.
// Every round it must start, fail no block check on load (a kill leaves
// complete files or none), and answer every reference prompt exactly as a
// server without a disk tier does.
//
// 20 seeded rounds here; TANDEM_KILL9_ROUNDS and TANDEM_KILL9_SEED change
// them (scripts/kill9_soak runs 200).
#include "server/api.h"
#include "test_util.h"

#include <httplib.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <regex>
#include <thread>

extern char** environ;

namespace tandem::server {
namespace {

using Clock = std::chrono::steady_clock;

// A `tandem serve` child process on a free port.
class Tandem {
 public:
  explicit Tandem(std::vector<std::string> extra) {
    std::vector<std::string> args = {TANDEM_BIN, "serve", "-m", test::shared_model("stories260K.gguf"), "--port", "0",
                                     "-t", "1", "--kv-memory-mb", "1", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    // The first line names the URL.
    std::string text;
    char buf[512];
    const std::regex url(R"( at http://127\.0\.0\.1:(\d+))");
    std::smatch m;
    while (!std::regex_search(text, m, url)) {
      const ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);  // later output goes nowhere (the child never blocks: it writes little)
    if (std::regex_search(text, m, url)) port_ = std::stoi(m[1]);
  }
  ~Tandem() {
    if (pid_ > 0) kill9();
  }
  int port() const { return port_; }
  void kill9() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  int terminate() {  // SIGTERM: the clean shutdown; returns the exit code
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

const std::vector<std::string> kPrompts = {
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. "
    "One day, she saw a big red ball under a tree.",
    "Tom had a small dog named Max. Max liked to run and jump. One sunny day, Tom and Max went to the beach to play in "
    "the sand and look for shells.",
    "There was a big bear who lived in the forest. The bear was very hungry and wanted to find some honey. He walked "
    "and walked until he found a tree.",
    "Sara and Ben were best friends. They liked to build castles with blocks. One day, they built the biggest castle "
    "in the whole town and showed it to mom.",
};

struct Answer {
  bool ok = false;
  std::string text;
  int64_t cached = 0;
};

Answer complete(int port, const std::string& prompt, int max_tokens = 24) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(30);
  json body = {{"model", "m"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
  auto res = cli.Post("/v1/completions", body.dump(), "application/json");
  Answer a;
  if (!res || res->status != 200) return a;
  json j = json::parse(res->body, nullptr, false);
  a.ok = true;
  a.text = j["choices"][0]["text"];
  a.cached = j["usage"]["prompt_tokens_details"]["cached_tokens"];
  return a;
}

int64_t metric(int port, const std::string& name) {
  httplib::Client cli("127.0.0.1", port);
  auto res = cli.Get("/metrics");
  if (!res) return -1;
  const std::regex re("\n" + name + " (\\d+)");
  std::smatch m;
  return std::regex_search(res->body, m, re) ? std::stoll(m[1]) : -1;
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

TEST(Kill9, ServerAlwaysRestartsAndNeverServesABadBlock) {
  const int rounds = env_int("TANDEM_KILL9_ROUNDS", 20);
  std::mt19937 rng(static_cast<uint32_t>(env_int("TANDEM_KILL9_SEED", 2026)));
  const std::string dir = test::scratch_dir("server_kill9");
  const std::vector<std::string> disk = {"--cache-dir", dir, "--cache-disk-mb", "4"};

  std::vector<std::string> cold;
  {
    Tandem t({"--no-disk-cache"});
    ASSERT_GT(t.port(), 0) << "tandem did not start";
    for (const auto& p : kPrompts) {
      const Answer a = complete(t.port(), p);
      ASSERT_TRUE(a.ok);
      cold.push_back(a.text);
    }
  }

  int resumed = 0;
  for (int round = 0; round <= rounds; ++round) {
    Tandem t(disk);
    ASSERT_GT(t.port(), 0) << "round " << round << ": tandem did not start after kill -9";
    // After a restart: the same answers as cold, from disk where it can.
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      const Answer a = complete(t.port(), kPrompts[i]);
      ASSERT_TRUE(a.ok) << "round " << round;
      EXPECT_EQ(a.text, cold[i]) << "round " << round << ", prompt " << i;
      if (i == 0 && a.cached > 0) ++resumed;
    }
    EXPECT_EQ(metric(t.port(), "tandem_disk_load_errors_total"), 0) << "round " << round;
    if (round == rounds) {
      EXPECT_EQ(t.terminate(), 0) << "SIGTERM exits 0";
      break;
    }
    // Busy: clients send variants (new blocks to write) until the kill.
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 3; ++c) {
      clients.emplace_back([&, c, seed = rng()] {
        std::mt19937 r(seed);
        while (!stop.load()) {
          std::string p = kPrompts[r() % kPrompts.size()];
          for (int k = 0, n = 3 + static_cast<int>(r() % 20); k < n; ++k) {
            p.push_back(' ');
            p.append(std::to_string(r() % 1000 + static_cast<unsigned>(c)));
          }
          complete(t.port(), p, 8);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 300));
    t.kill9();
    stop.store(true);
    for (auto& c : clients) c.join();
  }
  EXPECT_GT(resumed, rounds / 2) << "restarts resumed from disk";
}

}  // namespace
}  // namespace tandem::server

// A `tandem serve` child process for tests: stories260K on a free port of
// 127.0.0.1, with extra flags; kill9() or terminate() ends it.
#pragma once

#include "test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

extern char** environ;

namespace tandem::test {

// A `tandem serve` child process on a free port.
class Tandem {
 public:
  // KV_MB: the RAM budget (1 MiB: blocks spill to the disk tier).
  explicit Tandem(std::vector<std::string> extra, const std::string& kv_mb = "1") {
    std::vector<std::string> args = {TANDEM_BIN,       "serve", "-m",     test::data_path("stories260K.gguf"),
                                     "--port",         "0",     "-t",     "1",
                                     "--kv-memory-mb", kv_mb,   "--quiet"};
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
    return wait_exit();
  }
  void signal(int sig) { kill(pid_, sig); }
  int wait_exit() {  // the exit code (-1: killed by a signal)
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace tandem::test

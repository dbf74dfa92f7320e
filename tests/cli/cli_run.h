// Runs the built tandem binary as a user would, for the CLI tests.
#pragma once

#include "core/mapped_file.h"
#include "test_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace tandem::test {

struct CliRun {
  int code = -1;
  std::string out, err;
};

// Runs `tandem ARGS` (a shell fragment) with STDIN_TEXT and captures its
// output; with TIMEOUT_S, stopped by SIGTERM (a server's clean shutdown)
// after that many seconds.
inline CliRun tandem(const std::string& args, const std::string& stdin_text = "", int timeout_s = 0) {
  static int counter = 0;
  const std::string dir = tandem::test::scratch_dir("cli_run_" + std::to_string(counter++));
  const std::string in = dir + "/in", out = dir + "/out", err = dir + "/err";
  {
    std::FILE* f = std::fopen(in.c_str(), "wb");
    std::fwrite(stdin_text.data(), 1, stdin_text.size(), f);
    std::fclose(f);
  }
  const std::string limit = timeout_s > 0 ? "timeout -s TERM " + std::to_string(timeout_s) + " " : "";
  const std::string cmd =
      limit + std::string(TANDEM_BINARY_DIR) + "/tandem " + args + " <" + in + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out).value();
  r.err = read_file(err).value();
  return r;
}

inline size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace tandem::test

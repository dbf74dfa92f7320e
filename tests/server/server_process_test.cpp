// tandem serve as a process. Crash safety of the disk tier, end to end: a `tandem serve` busy writing
// KV blocks (small RAM, so blocks also spill and reload) is killed with
// SIGKILL at a random moment, then started again on the same cache folder.
// Every round it must start, fail no block check on load (a kill leaves
// complete files or none), and answer every reference prompt exactly as a
// server without a disk tier does.
//
// 20 seeded rounds here; TANDEM_KILL9_ROUNDS and TANDEM_KILL9_SEED change
// them (scripts/kill9_soak runs 200). And `tandem bench --url` measuring
// a running server over HTTP.
#include "server/api.h"
#include "tandem_process.h"
#include "test_util.h"

#include <httplib.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <fstream>
#include <regex>
#include <thread>

namespace tandem::server {
namespace {

using Clock = std::chrono::steady_clock;
using test::Tandem;

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

// A second SIGTERM cuts the grace period short, and signals that come
// after the grace period (during the disk flush, or later) land in state
// that outlives the shutdown thread: the server exits 0 every time.
TEST(Shutdown, SecondSignalCutsTheGraceAndLaterOnesAreHarmless) {
  const std::string dir = test::scratch_dir("server_two_signals");
  {  // busy: a long request keeps the grace period (60 s) waiting
    Tandem t({"--cache-dir", dir, "--shutdown-grace", "60"});
    ASSERT_GT(t.port(), 0);
    std::thread client([&] { complete(t.port(), kPrompts[0], 1500); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto t0 = Clock::now();
    t.signal(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    t.signal(SIGTERM);
    EXPECT_EQ(t.wait_exit(), 0);
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 30) << "the second signal cut the grace";
    client.join();
  }
  for (int gap_ms : {0, 5, 20, 50}) {  // idle: the grace ends at once; the next signal comes during the flush
    Tandem t({"--cache-dir", dir});
    ASSERT_GT(t.port(), 0);
    complete(t.port(), kPrompts[1]);
    t.signal(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    t.signal(SIGTERM);
    EXPECT_EQ(t.wait_exit(), 0) << "gap " << gap_ms << " ms";
  }
}

// `tandem bench --url` drives a server over HTTP like any other: the
// OpenAI completions route with ignore_eos (exact output lengths) and the
// Anthropic messages route.
TEST(BenchUrl, MeasuresARunningServerOverHttp) {
  Tandem t({"--no-disk-cache"}, "64");
  ASSERT_GT(t.port(), 0);
  const std::string dir = test::scratch_dir("server_bench_url");
  for (const std::string api : {"openai", "anthropic"}) {
    const std::string file = dir + "/" + api + ".json";
    const std::string cmd = fmt::format(
        "{} bench throughput --url http://127.0.0.1:{} --api {} --prompts 2 --max-tokens 8 --concurrency 1,2 --json {} "
        ">{}/{}.out 2>&1",
        TANDEM_BIN, t.port(), api, file, dir, api);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream in(file);
    const json report = json::parse(in, nullptr, false);
    ASSERT_TRUE(report.is_object()) << file;
    EXPECT_EQ(report["driver"]["driver"], "http");
    const json& runs = report["throughput"]["runs"];
    ASSERT_EQ(runs.size(), 3u);  // single, x1, x2
    for (const auto& r : runs) {
      EXPECT_EQ(r["failures"], 0) << r.dump();
      EXPECT_GT(r["ttft_ms"]["p50"].get<double>(), 0) << r.dump();
      EXPECT_GT(r["prompt_tokens"].get<int64_t>(), 20) << r.dump();
      if (api == "openai") EXPECT_EQ(r["generated_tokens"], 16) << "ignore_eos: 8 tokens each";
      else EXPECT_GT(r["generated_tokens"].get<int64_t>(), 0);
    }
  }
}

}  // namespace
}  // namespace tandem::server

// The engine with a disk tier (stories260K): evicted prefixes come back
// from disk, a restarted engine resumes from disk, damaged or foreign
// blocks are recomputed (never served), batched == alone with blocks
// spilling and reloading, sessions persist, pin, unpin and delete.
#include "engine_fixture.h"

#include <filesystem>
#include <fstream>
#include <random>

namespace tandem::engine {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

EngineOptions with_disk(const std::string& dir, size_t ram_blocks, uint64_t disk_blocks = 1000,
                        kernels::KvType kv_type = kernels::KvType::kF16) {
  EngineOptions o = manual(ram_blocks, kv_type);
  o.cache_dir = dir;
  o.cache_disk_bytes = disk_blocks * (64 + 32 * 4 + 10240);  // stories260K block files (f16; q8_0 are smaller)
  return o;
}

// Runs R on an engine (f16, 64 RAM blocks) over DIR and flushes it: R's
// full blocks are on disk when the engine is gone.
void run_and_store(Fixture& f, const std::string& dir, const Request& r) {
  auto e = f.engine(with_disk(dir, 64));
  run(*e, r);
  ASSERT_TRUE(e->flush().ok());
}

TEST(EngineDisk, EvictedPrefixComesBackFromDisk) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_evicted");
  auto e = f.engine(with_disk(dir, 12));
  const Request a = greedy(prompt_of(130, 1), 8);
  const auto expected = alone(f, a);
  const Event first = run(*e, a);
  EXPECT_EQ(first.tokens, expected);
  ASSERT_TRUE(e->flush().ok());
  // Other prompts push A's four full blocks out of the 12-block RAM.
  for (int salt = 2; salt < 6; ++salt) run(*e, greedy(prompt_of(130, salt), 4));
  EXPECT_GT(e->metrics().evictions, 0);
  const Event again = run(*e, a);
  EXPECT_EQ(again.tokens, expected);
  EXPECT_EQ(again.usage.cached_tokens, 129);  // 4 blocks and the tail the flush stored (one token left to compute)
  EXPECT_GT(again.usage.disk_tokens, 0);
  EXPECT_EQ(e->metrics().disk_load_errors, 0);
  EXPECT_EQ(e->check_invariants(), "");
}

TEST(EngineDisk, RestartResumesFromDiskWithIdenticalOutput) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_restart");
  Request turn = greedy(prompt_of(200, 3), 12);
  turn.session = "agent-1";
  const auto expected = alone(f, turn);
  {
    auto e = f.engine(with_disk(dir, 64));
    EXPECT_EQ(run(*e, turn).tokens, expected);
    auto flushed = e->flush();
    ASSERT_TRUE(flushed.ok()) << flushed.message();
    EXPECT_EQ(flushed->failed, 0);
  }
  auto e = f.engine(with_disk(dir, 64));
  // The manifest survived: the session is listed with its blocks on disk.
  auto info = e->session("agent-1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->tokens, 212);  // prompt + 12 generated
  EXPECT_EQ(info->blocks, 6);    // 211 computed tokens: 6 full blocks
  EXPECT_EQ(info->blocks_on_disk, 6);
  EXPECT_EQ(info->blocks_in_ram, 0);
  const Event resumed = run(*e, turn);
  EXPECT_EQ(resumed.tokens, expected);
  // 6 blocks and 7 of the 19 tokens of the tail the shutdown stored (the
  // last prompt token is computed): to the token, as a RAM hit.
  EXPECT_EQ(resumed.usage.cached_tokens, 199);
  EXPECT_EQ(resumed.usage.disk_tokens, 199);
  EXPECT_EQ(e->check_invariants(), "");
}

// After a restart a prompt that leaves a stored conversation inside a block
// reads that block beside its chain and copies the head they share, as a
// RAM hit would: the cached count is exact to the token.
TEST(EngineDisk, SharedHeadComesFromDiskAfterRestart) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_head");
  const Request a = greedy(prompt_of(130, 5), 4);
  ASSERT_NO_FATAL_FAILURE(run_and_store(f, dir, a));                 // blocks 0-3 (128 tokens) on disk
  std::vector<int32_t> p(a.prompt.begin(), a.prompt.begin() + 110);  // leaves block 3 after 14 of its tokens
  for (int i = 0; i < 20; ++i) p.push_back(400 + i);
  const Request b = greedy(p, 6);
  const auto expected = alone(f, b);
  auto e = f.engine(with_disk(dir, 64));
  const Event r = run(*e, b);
  EXPECT_EQ(r.tokens, expected);
  EXPECT_EQ(r.usage.cached_tokens, 110);  // 3 whole blocks + the 14-token head of the 4th
  EXPECT_EQ(r.usage.disk_tokens, 110);
  EXPECT_EQ(e->metrics().disk_loads, 4);
  EXPECT_EQ(e->metrics().disk_load_errors, 0);
  EXPECT_EQ(e->check_invariants(), "");
}

// Flips one payload byte of every stored block: each load fails its
// checksum, the block is deleted, and the prompt is computed again.
TEST(EngineDisk, DamagedBlocksAreRecomputedNeverServed) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_damaged");
  const Request a = greedy(prompt_of(100, 4), 10);
  const auto expected = alone(f, a);
  ASSERT_NO_FATAL_FAILURE(run_and_store(f, dir, a));
  int damaged = 0;
  for (const auto& entry : fs::recursive_directory_iterator(fs::path(dir) / "blocks")) {
    if (!entry.is_regular_file()) continue;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(64 + 32 * 4 + 5000);
    file.put('\x5a');
    ++damaged;
  }
  ASSERT_EQ(damaged, 4);  // 3 blocks and the tail
  auto e = f.engine(with_disk(dir, 64));
  const Event r = run(*e, a);
  EXPECT_EQ(r.tokens, expected);
  EXPECT_EQ(r.usage.disk_tokens, 0);
  EXPECT_EQ(r.usage.cached_tokens, 0);
  EXPECT_EQ(e->metrics().disk_load_errors, 4);  // each was read, failed its checksum and was deleted
}

TEST(EngineDisk, OtherKvTypeNeverLoads) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_foreign");
  const Request a = greedy(prompt_of(100, 5), 6);
  ASSERT_NO_FATAL_FAILURE(run_and_store(f, dir, a));
  EngineOptions o = with_disk(dir, 32);
  o.kv_type = kernels::KvType::kF32;
  o.cache_disk_bytes = 1000 * (64 + 32 * 4 + 20480);
  auto e = f.engine(o);
  EXPECT_EQ(e->metrics().disk_blocks, 0);  // the f16 store was cleared at open
  const Event r = run(*e, a);
  EXPECT_EQ(r.usage.cached_tokens, 0);
  ASSERT_TRUE(e->flush().ok());
  EXPECT_EQ(e->metrics().disk_blocks, 4);  // its own f32 blocks only (3 and the tail)
  EXPECT_EQ(e->metrics().disk_load_errors, 0);
}

// q8_0 blocks go to disk and come back after a restart, giving exactly the
// q8_0 output alone; an f16 store is not served to a q8_0 engine.
TEST(EngineDisk, Q8KvBlocksRoundTripThroughDisk) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_q8");
  const auto q8 = kernels::KvType::kQ8_0;
  const Request a = greedy(prompt_of(100, 6), 10);
  ASSERT_NO_FATAL_FAILURE(run_and_store(f, dir, a));  // f16 first
  const auto expected = alone(f, a, q8);
  {
    auto e = f.engine(with_disk(dir, 64, 1000, q8));
    EXPECT_EQ(e->metrics().disk_blocks, 0);  // the f16 store was cleared at open
    const Event r = run(*e, a);
    EXPECT_EQ(r.tokens, expected);
    EXPECT_EQ(r.usage.cached_tokens, 0);
    ASSERT_TRUE(e->flush().ok());
    EXPECT_EQ(e->metrics().disk_blocks, 4);  // 3 and the tail
  }
  auto e = f.engine(with_disk(dir, 64, 1000, q8));
  const Event resumed = run(*e, a);
  EXPECT_EQ(resumed.tokens, expected);
  EXPECT_EQ(resumed.usage.disk_tokens, 99);  // 3 blocks and 3 tokens of the tail (one is left to compute)
  EXPECT_EQ(e->metrics().disk_load_errors, 0);
  EXPECT_EQ(e->check_invariants(), "");
}

// Random requests over a 24-block RAM pool spilling to disk: every request
// that was not cancelled produces exactly its output alone; invariants hold
// after every step; nothing stays pinned.
TEST(EngineDisk, BatchedEqualsAloneWhileSpilling) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_batched");
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> templates;
  for (int t = 0; t < 5; ++t) templates.push_back(prompt_of(40 + static_cast<int>(rng() % 60), 10 + t));
  std::vector<Request> reqs;
  for (int i = 0; i < 80; ++i) {
    auto p = templates[rng() % templates.size()];
    for (int j = 0, n = 1 + static_cast<int>(rng() % 30); j < n; ++j)
      p.push_back(3 + static_cast<int32_t>(rng() % 500));
    Request r = greedy(p, 1 + static_cast<int>(rng() % 24));
    r.priority = static_cast<Priority>(rng() % 3);
    if (rng() % 3 == 0) r.session = "s" + std::to_string(rng() % 6);
    reqs.push_back(r);
  }
  std::vector<std::vector<int32_t>> expected;
  for (const auto& r : reqs) expected.push_back(alone(f, r));
  auto e = f.engine(with_disk(dir, 24));
  // Three waves, so later waves find earlier prefixes on disk only.
  for (size_t wave = 0; wave < 3; ++wave) {
    std::vector<std::shared_ptr<Stream>> streams;
    std::vector<size_t> index;
    for (size_t i = wave; i < reqs.size(); i += 3) {
      streams.push_back(e->submit(reqs[i]));
      index.push_back(i);
    }
    drain(*e);
    for (size_t k = 0; k < streams.size(); ++k) {
      const Event ev = streams[k]->wait();
      ASSERT_EQ(ev.error, "");
      EXPECT_EQ(ev.tokens.size(), expected[index[k]].size()) << "request " << index[k];
    }
  }
  // Text equality needs the whole stream: run a fourth wave of everything.
  std::vector<std::shared_ptr<Stream>> streams;
  for (const auto& r : reqs) streams.push_back(e->submit(r));
  std::vector<std::vector<int32_t>> got(reqs.size());
  for (int step = 0; step < 100000; ++step) {
    if (!e->step()) break;
    ASSERT_EQ(e->check_invariants(), "") << "after step " << step;
    for (size_t i = 0; i < streams.size(); ++i) {
      while (auto ev = streams[i]->next(std::chrono::milliseconds(0))) {
        got[i].insert(got[i].end(), ev->tokens.begin(), ev->tokens.end());
      }
    }
  }
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i], expected[i]) << "request " << i;
  const auto m = e->metrics();
  EXPECT_GT(m.disk_hit_tokens, 0);
  EXPECT_GT(m.disk_writes, 0);
  EXPECT_EQ(m.disk_load_errors, 0);
  EXPECT_EQ(m.kv_blocks_free + m.kv_blocks_cached, m.kv_blocks_total);
}

TEST(EngineDisk, PinnedSessionStaysOnDiskAndInRam) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_pinned");
  // RAM 10 blocks, disk 8 blocks: other prompts overflow both.
  auto e = f.engine(with_disk(dir, 10, 8));
  Request mine = greedy(prompt_of(100, 6), 4);
  mine.session = "keep-me";
  run(*e, mine);
  EXPECT_EQ(e->pin_session("keep-me", true), Engine::SessionOp::kOk);
  ASSERT_TRUE(e->flush().ok());
  for (int salt = 20; salt < 28; ++salt) {
    run(*e, greedy(prompt_of(100, salt), 2));
    ASSERT_TRUE(e->flush().ok());
  }
  auto info = e->session("keep-me");
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->pinned);
  EXPECT_EQ(info->blocks, 3);
  EXPECT_EQ(info->blocks_on_disk, 3);
  EXPECT_EQ(info->blocks_in_ram, 3);
  EXPECT_GT(e->metrics().disk_evictions, 0);
  // Unpinned, its blocks are ordinary again and pressure takes them.
  EXPECT_EQ(e->pin_session("keep-me", false), Engine::SessionOp::kOk);
  for (int salt = 30; salt < 38; ++salt) {
    run(*e, greedy(prompt_of(100, salt), 2));
    ASSERT_TRUE(e->flush().ok());
  }
  info = e->session("keep-me");
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->pinned);
  EXPECT_LT(info->blocks_on_disk + info->blocks_in_ram, 6);
}

TEST(EngineDisk, DeleteSessionFreesItsBlocksAndKeepsShared) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_delete");
  auto e = f.engine(with_disk(dir, 64));
  auto shared = prompt_of(64, 7);  // two full blocks both sessions use
  Request a = greedy(shared, 4), b = greedy(shared, 4);
  for (int i = 0; i < 40; ++i) a.prompt.push_back(11 + i);
  for (int i = 0; i < 40; ++i) b.prompt.push_back(211 + i);
  a.session = "a";
  b.session = "b";
  run(*e, a);
  run(*e, b);
  ASSERT_TRUE(e->flush().ok());
  EXPECT_EQ(e->sessions().size(), 2u);
  EXPECT_EQ(e->delete_session("nope"), Engine::SessionOp::kNotFound);
  EXPECT_EQ(e->pin_session("nope", true), Engine::SessionOp::kNotFound);
  const int64_t before = e->metrics().disk_blocks;
  EXPECT_EQ(e->delete_session("a"), Engine::SessionOp::kOk);
  ASSERT_TRUE(e->flush().ok());
  EXPECT_FALSE(e->session("a").has_value());
  EXPECT_EQ(e->sessions().size(), 1u);
  EXPECT_EQ(e->metrics().disk_blocks, before - 1);  // a's own third block; the shared two stay
  const auto bi = e->session("b");
  ASSERT_TRUE(bi.has_value());
  EXPECT_EQ(bi->blocks_in_ram, 3);
  EXPECT_EQ(bi->blocks_on_disk, 3);
}

TEST(EngineDisk, BusySessionCannotBeDeleted) {
  Fixture f;
  const std::string dir = test::scratch_dir("engine_disk_busy");
  auto e = f.engine(with_disk(dir, 64));
  Request r = greedy(prompt_of(40, 8), 30);
  r.ignore_eos = true;
  r.session = "busy";
  auto s = e->submit(r);
  e->step();
  EXPECT_EQ(e->delete_session("busy"), Engine::SessionOp::kNotFound);  // no finished turn yet
  EXPECT_EQ(e->pin_session("busy", true), Engine::SessionOp::kOk);     // pinned ahead of its first turn
  EXPECT_EQ(e->delete_session("busy"), Engine::SessionOp::kBusy);
  drain(*e);
  s->wait();
  const auto info = e->session("busy");
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->pinned);
  EXPECT_EQ(info->tokens, 70);
  EXPECT_EQ(e->delete_session("busy"), Engine::SessionOp::kOk);
}

// Session ids are client strings: they only ever become index values. The
// cache folder holds the store's own files and nothing else appears
// anywhere around it.
TEST(EngineDisk, SessionIdsNeverBecomePaths) {
  Fixture f;
  const std::string root = test::scratch_dir("engine_disk_paths");
  const std::string dir = root + "/cache";
  const std::vector<std::string> ids = {"../../escape", "/etc/passwd",        "a/b/c", "..", "sess\n\0x"s,
                                        "%2e%2e%2f",    std::string(300, 'x')};
  {
    auto e = f.engine(with_disk(dir, 64));
    for (size_t i = 0; i < ids.size(); ++i) {
      Request r = greedy(prompt_of(40, 40 + static_cast<int>(i)), 2);
      r.session = ids[i];
      run(*e, r);
    }
    ASSERT_TRUE(e->flush().ok());
    EXPECT_EQ(e->sessions().size(), ids.size());
  }
  auto e = f.engine(with_disk(dir, 64));
  for (const auto& id : ids) EXPECT_TRUE(e->session(id).has_value()) << id;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(entry.path(), root).string();
    const bool ours = rel == "cache" || rel.rfind("cache/blocks", 0) == 0 || rel == "cache/LOCK" ||
                      rel.rfind("cache/index.sqlite3", 0) == 0;
    EXPECT_TRUE(ours) << rel;
    if (rel.rfind("cache/blocks/", 0) == 0 && entry.is_regular_file()) {
      EXPECT_EQ(entry.path().extension(), ".blk") << rel;
    }
  }
}

}  // namespace
}  // namespace tandem::engine

// The disk tier's block store: round trips, every kind of damage (a flipped
// byte anywhere, truncation, files of another model, orphans, temporaries,
// an unreadable index), LRU eviction with exact keys, and a kill -9 loop
// that interrupts a writer at seeded random moments and checks that the
// store always reopens with every indexed block intact.
#include "kv/disk_store.h"

#include "kv/prefix_index.h"
#include "test_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace tandem::kv {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kTokens = 4;
constexpr uint32_t kPayload = 256;
constexpr uint64_t kFileBytes = kBlockFileHeaderBytes + kTokens * 4 + kPayload;

DiskStoreOptions options(const std::string& dir, uint64_t max_blocks, uint64_t fingerprint = 0xf1f1) {
  DiskStoreOptions o;
  o.dir = dir;
  o.max_bytes = max_blocks * kFileBytes;
  o.model_fingerprint = fingerprint;
  o.kv_type = 1;
  o.block_tokens = kTokens;
  o.block_bytes = kPayload;
  return o;
}

std::unique_ptr<DiskStore> open_ok(const DiskStoreOptions& o) {
  auto s = DiskStore::open(o);
  EXPECT_TRUE(s.ok()) << s.message();
  return s.ok() ? std::move(*s) : nullptr;
}

// The payload a block of KEY holds in these tests: derived from the key, so
// any load can be checked byte for byte.
std::vector<uint8_t> payload_for(uint64_t key, size_t n) {
  std::vector<uint8_t> p(n);
  uint64_t x = key;
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<uint8_t>(x >> 56);
  }
  return p;
}

// Block I of a chain: tokens i*kTokens.., key = block_key(parent, tokens).
BlockMeta block(uint64_t parent, int32_t i, uint32_t n_tokens = kTokens) {
  BlockMeta m;
  m.parent = parent;
  for (uint32_t t = 0; t < n_tokens; ++t) m.tokens.push_back(i * 100 + static_cast<int32_t>(t));
  m.key = block_key(parent, m.tokens);
  return m;
}

void put_ok(DiskStore& s, const BlockMeta& m) {
  const Status st = s.put(m, payload_for(m.key, kPayload));
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(s.check_invariants(), "");
}

void expect_loads(DiskStore& s, const BlockMeta& m) {
  std::vector<uint8_t> out(kPayload);
  BlockMeta got;
  const Status st = s.load(m.key, out, &got);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(out, payload_for(m.key, kPayload));
  EXPECT_EQ(got.key, m.key);
  EXPECT_EQ(got.parent, m.parent);
  EXPECT_EQ(got.tokens, m.tokens);
}

std::vector<uint64_t> keys(const DiskStore& s) {
  auto k = s.keys();
  EXPECT_TRUE(k.ok()) << k.message();
  return k.ok() ? *k : std::vector<uint64_t>{};
}

size_t files_under(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

void flip_byte(const std::string& path, uint64_t offset, uint8_t mask) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(static_cast<uint8_t>(c) ^ mask);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(DiskStore, RoundTrip) {
  const std::string dir = test::scratch_dir("disk_store_round_trip");
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->file_bytes(), kFileBytes);
  const BlockMeta a = block(7, 1), b = block(a.key, 2);
  put_ok(*s, a);
  put_ok(*s, b);
  EXPECT_EQ(s->count(), 2u);
  EXPECT_EQ(s->bytes(), 2 * kFileBytes);
  EXPECT_TRUE(fs::exists(s->block_path(a.key)));

  auto found = s->find(b.key);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->parent, a.key);
  EXPECT_EQ((*found)->tokens, b.tokens);
  auto missing = s->find(12345);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  expect_loads(*s, a);
  expect_loads(*s, b);
  EXPECT_EQ(s->stats().loads, 2);

  // The same content again is one copy; other content under a key is refused.
  put_ok(*s, a);
  EXPECT_EQ(s->count(), 2u);
  BlockMeta collision = b;
  collision.tokens[0] = 999;
  EXPECT_FALSE(s->put(collision, payload_for(b.key, kPayload)).ok());
  EXPECT_EQ(s->check_invariants(), "");
}

TEST(DiskStore, PathsComeFromKeysOnly) {
  const std::string dir = test::scratch_dir("disk_store_paths");
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->block_path(0xabcdef0123456789ull), dir + "/blocks/ab/cd/abcdef0123456789.blk");
  EXPECT_EQ(s->block_path(1), dir + "/blocks/00/00/0000000000000001.blk");
}

// A tail (a conversation's partial last block) is stored like a block, in
// a file of the same size, and survives a reopen with its token count.
TEST(DiskStore, TailsRoundTripAcrossReopen) {
  const std::string dir = test::scratch_dir("disk_store_tails");
  const BlockMeta tail = block(7, 1, kTokens - 1);
  const BlockMeta one = block(7, 2, 1);
  {
    auto s = open_ok(options(dir, 8));
    ASSERT_TRUE(s);
    put_ok(*s, tail);
    put_ok(*s, one);
  }
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->count(), 2u);  // the open-time scan kept both files
  expect_loads(*s, tail);
  expect_loads(*s, one);
  EXPECT_EQ(s->check_invariants(), "");
}

TEST(DiskStore, RejectsBadArguments) {
  const std::string dir = test::scratch_dir("disk_store_bad_args");
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  BlockMeta m = block(7, 1);
  const auto payload = payload_for(m.key, kPayload);
  BlockMeta zero = m;
  zero.key = 0;
  EXPECT_FALSE(s->put(zero, payload).ok());
  EXPECT_FALSE(s->put(block(7, 1, 0), payload).ok());            // no tokens
  EXPECT_FALSE(s->put(block(7, 1, kTokens + 1), payload).ok());  // more than a block
  EXPECT_FALSE(s->put(m, std::span(payload).first(kPayload - 1)).ok());
  put_ok(*s, m);
  std::vector<uint8_t> small(kPayload - 1);
  EXPECT_FALSE(s->load(m.key, small).ok());
  EXPECT_EQ(s->count(), 1u);  // a contract error deletes nothing
  std::vector<uint8_t> out(kPayload);
  EXPECT_FALSE(s->load(m.key + 1, out).ok());
  EXPECT_EQ(s->check_invariants(), "");

  DiskStoreOptions tiny = options(test::scratch_dir("disk_store_tiny"), 1);
  tiny.max_bytes -= 1;
  EXPECT_FALSE(DiskStore::open(tiny).ok());
}

// A flipped bit anywhere in the file (header, tokens, payload, checksum) is
// caught on load; the block is deleted and the others stay.
TEST(DiskStore, CorruptByteIsCaughtAndBlockDeleted) {
  const uint64_t offsets[] = {0,
                              5,
                              8,
                              20,
                              24,
                              32,
                              40,
                              48,
                              56,
                              53,
                              kBlockFileHeaderBytes,
                              kBlockFileHeaderBytes + 13,
                              kBlockFileHeaderBytes + kTokens * 4,
                              kFileBytes - 1};
  for (uint64_t off : offsets) {
    SCOPED_TRACE(off);
    const std::string dir = test::scratch_dir("disk_store_corrupt");
    auto s = open_ok(options(dir, 8));
    ASSERT_TRUE(s);
    const BlockMeta a = block(7, 1), b = block(a.key, 2);
    put_ok(*s, a);
    put_ok(*s, b);
    flip_byte(s->block_path(b.key), off, 0x10);
    std::vector<uint8_t> out(kPayload);
    const Status st = s->load(b.key, out);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("deleted"), std::string::npos) << st.message();
    EXPECT_FALSE(fs::exists(s->block_path(b.key)));
    EXPECT_FALSE(s->find(b.key)->has_value());
    EXPECT_EQ(s->count(), 1u);
    EXPECT_EQ(s->stats().bad_blocks, 1);
    EXPECT_EQ(s->check_invariants(), "");
    expect_loads(*s, a);
  }
}

TEST(DiskStore, TruncatedFile) {
  const std::string dir = test::scratch_dir("disk_store_truncated");
  const BlockMeta a = block(7, 1), b = block(a.key, 2), c = block(b.key, 3);
  {
    auto s = open_ok(options(dir, 8));
    ASSERT_TRUE(s);
    put_ok(*s, a);
    put_ok(*s, b);
    put_ok(*s, c);
    // Caught on load...
    fs::resize_file(s->block_path(b.key), kFileBytes - 1);
    std::vector<uint8_t> out(kPayload);
    EXPECT_FALSE(s->load(b.key, out).ok());
    EXPECT_EQ(s->count(), 2u);
    EXPECT_EQ(s->check_invariants(), "");
    // ... and at open (wrong size), as is a missing file.
    fs::resize_file(s->block_path(c.key), kBlockFileHeaderBytes);
  }
  {
    auto s = open_ok(options(dir, 8));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->stats().dropped_at_open, 1);
    EXPECT_EQ(keys(*s), std::vector<uint64_t>{a.key});
    EXPECT_EQ(s->check_invariants(), "");
    fs::remove(s->block_path(a.key));
  }
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->count(), 0u);
  EXPECT_EQ(s->stats().dropped_at_open, 1);
  EXPECT_EQ(s->check_invariants(), "");
}

// Random damage, many times: a changed file never loads.
TEST(DiskStore, RandomDamageNeverLoads) {
  const std::string dir = test::scratch_dir("disk_store_random_damage");
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  std::mt19937_64 rng(42);
  const BlockMeta m = block(7, 1);
  for (int i = 0; i < 150; ++i) {
    put_ok(*s, m);
    const std::string path = s->block_path(m.key);
    switch (rng() % 3) {
      case 0: flip_byte(path, rng() % kFileBytes, static_cast<uint8_t>(1 + rng() % 255)); break;
      case 1: fs::resize_file(path, rng() % kFileBytes); break;
      default: fs::resize_file(path, kFileBytes + 1 + rng() % 64); break;
    }
    std::vector<uint8_t> out(kPayload);
    ASSERT_FALSE(s->load(m.key, out).ok()) << "iteration " << i;
    ASSERT_EQ(s->count(), 0u);
    ASSERT_EQ(s->check_invariants(), "");
  }
}

// A store opened for another model or layout is cleared, never served.
TEST(DiskStore, OtherModelOrLayoutClearsStore) {
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant);
    const std::string dir = test::scratch_dir("disk_store_other_model");
    const BlockMeta a = block(7, 1);
    {
      auto s = open_ok(options(dir, 8));
      ASSERT_TRUE(s);
      put_ok(*s, a);
    }
    DiskStoreOptions other = options(dir, 8);
    if (variant == 0) other.model_fingerprint ^= 1;
    if (variant == 1) other.kv_type = 0;
    if (variant == 2) other.block_tokens = kTokens * 2;
    if (variant == 3) other.block_bytes = kPayload * 2;
    {
      auto s = open_ok(other);
      ASSERT_TRUE(s);
      EXPECT_TRUE(s->stats().cleared_foreign);
      EXPECT_EQ(s->count(), 0u);
      EXPECT_FALSE(s->find(a.key)->has_value());
      EXPECT_EQ(s->check_invariants(), "");
    }
    // Back to the first model: its blocks are gone, not resurrected.
    auto s = open_ok(options(dir, 8));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->count(), 0u);
    EXPECT_EQ(s->check_invariants(), "");
  }
}

// A file written by another model's store, placed under a key this store
// indexes, fails the header check.
TEST(DiskStore, ForeignFileUnderOwnKeyNeverLoads) {
  const std::string dir_a = test::scratch_dir("disk_store_foreign_a");
  const std::string dir_b = test::scratch_dir("disk_store_foreign_b");
  auto a = open_ok(options(dir_a, 8, 1));
  auto b = open_ok(options(dir_b, 8, 2));
  ASSERT_TRUE(a && b);
  const BlockMeta m = block(7, 1);
  put_ok(*a, m);
  put_ok(*b, m);
  fs::copy_file(b->block_path(m.key), a->block_path(m.key), fs::copy_options::overwrite_existing);
  std::vector<uint8_t> out(kPayload);
  const Status st = a->load(m.key, out);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("other model"), std::string::npos) << st.message();
  EXPECT_EQ(a->count(), 0u);
  EXPECT_EQ(a->check_invariants(), "");
}

TEST(DiskStore, OrphansAndTemporariesDeletedAtOpen) {
  const std::string dir = test::scratch_dir("disk_store_orphans");
  const BlockMeta a = block(7, 1);
  std::string orphan, temp, junk;
  {
    auto s = open_ok(options(dir, 8));
    ASSERT_TRUE(s);
    put_ok(*s, a);
    const BlockMeta other = block(a.key, 2);
    orphan = s->block_path(other.key);
    fs::create_directories(fs::path(orphan).parent_path());
    fs::copy_file(s->block_path(a.key), orphan);  // a file without a row
    temp = s->block_path(a.key) + ".tmp.12345";   // an interrupted put
    fs::copy_file(s->block_path(a.key), temp);
    junk = dir + "/blocks/notes.txt";
    std::ofstream(junk) << "x";
  }
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->stats().files_deleted_at_open, 3);
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(junk));
  EXPECT_EQ(s->check_invariants(), "");
  expect_loads(*s, a);
}

TEST(DiskStore, UnreadableIndexIsRebuiltEmpty) {
  const std::string dir = test::scratch_dir("disk_store_bad_index");
  {
    auto s = open_ok(options(dir, 8));
    ASSERT_TRUE(s);
    put_ok(*s, block(7, 1));
  }
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(dir + "/index.sqlite3" + suffix);
  std::ofstream(dir + "/index.sqlite3", std::ios::binary | std::ios::trunc) << std::string(8192, 'z');
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->stats().index_recreated);
  EXPECT_EQ(s->count(), 0u);
  EXPECT_EQ(s->stats().files_deleted_at_open, 1);
  EXPECT_EQ(s->check_invariants(), "");
  put_ok(*s, block(7, 2));
}

TEST(DiskStore, OneProcessPerStore) {
  const std::string dir = test::scratch_dir("disk_store_lock");
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  auto second = DiskStore::open(options(dir, 8));
  EXPECT_FALSE(second.ok());
  s.reset();
  EXPECT_TRUE(DiskStore::open(options(dir, 8)).ok());
}

// Three blocks fit. Order of use is a logical counter: put and load count.
TEST(DiskStore, EvictsLeastRecentlyUsed) {
  const std::string dir = test::scratch_dir("disk_store_lru");
  auto s = open_ok(options(dir, 3));
  ASSERT_TRUE(s);
  const BlockMeta b1 = block(7, 1), b2 = block(b1.key, 2), b3 = block(b2.key, 3), b4 = block(b3.key, 4),
                  b5 = block(b4.key, 5);
  put_ok(*s, b1);
  put_ok(*s, b2);
  put_ok(*s, b3);
  EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b1.key, b2.key, b3.key}));
  expect_loads(*s, b1);
  EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b2.key, b3.key, b1.key}));
  put_ok(*s, b4);  // evicts b2
  EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b3.key, b1.key, b4.key}));
  EXPECT_FALSE(fs::exists(s->block_path(b2.key)));
  put_ok(*s, b3);  // a put of stored content is a use
  EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b1.key, b4.key, b3.key}));
  put_ok(*s, b5);  // evicts b1
  EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b4.key, b3.key, b5.key}));
  EXPECT_EQ(s->stats().evictions, 2);
  EXPECT_EQ(s->bytes(), 3 * kFileBytes);
  EXPECT_EQ(files_under(dir + "/blocks"), 3u);
}

TEST(DiskStore, Erase) {
  const std::string dir = test::scratch_dir("disk_store_erase");
  auto s = open_ok(options(dir, 8));
  ASSERT_TRUE(s);
  const BlockMeta a = block(7, 1), b = block(a.key, 2);
  put_ok(*s, a);
  put_ok(*s, b);
  ASSERT_TRUE(s->erase(a.key).ok());
  EXPECT_FALSE(fs::exists(s->block_path(a.key)));
  EXPECT_FALSE(s->find(a.key)->has_value());
  EXPECT_EQ(s->count(), 1u);
  EXPECT_EQ(s->bytes(), kFileBytes);
  EXPECT_TRUE(s->erase(a.key).ok());  // absent: fine
  EXPECT_EQ(s->count(), 1u);
  EXPECT_EQ(s->check_invariants(), "");
  expect_loads(*s, b);
}

TEST(DiskStore, ReopenKeepsBlocksAndUseOrder) {
  const std::string dir = test::scratch_dir("disk_store_reopen");
  const BlockMeta b1 = block(7, 1), b2 = block(b1.key, 2), b3 = block(b2.key, 3), b4 = block(b3.key, 4);
  {
    auto s = open_ok(options(dir, 3));
    ASSERT_TRUE(s);
    put_ok(*s, b1);
    put_ok(*s, b2);
    put_ok(*s, b3);
    expect_loads(*s, b1);
  }
  {
    auto s = open_ok(options(dir, 3));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->count(), 3u);
    EXPECT_EQ(s->bytes(), 3 * kFileBytes);
    EXPECT_EQ(s->stats().dropped_at_open + s->stats().files_deleted_at_open, 0);
    EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b2.key, b3.key, b1.key}));
    put_ok(*s, b4);  // the clock goes on from the stored uses: evicts b2
    EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b3.key, b1.key, b4.key}));
  }
  // A smaller budget evicts the least recently used at open.
  auto s = open_ok(options(dir, 2));
  ASSERT_TRUE(s);
  EXPECT_EQ(keys(*s), (std::vector<uint64_t>{b1.key, b4.key}));
  EXPECT_EQ(s->check_invariants(), "");
  expect_loads(*s, b1);
  expect_loads(*s, b4);
}

// kill -9 of a writer at seeded random moments. The child puts chains of
// blocks forever (evicting, loading, erasing); after each kill the store
// must open, hold no temporary or unindexed file, and every indexed block
// must load with exactly the bytes that were put: nothing is half there.
constexpr uint32_t kKillPayload = 48 * 1024;

DiskStoreOptions kill_options(const std::string& dir) {
  DiskStoreOptions o;
  o.dir = dir;
  o.block_tokens = 16;
  o.block_bytes = kKillPayload;
  o.max_bytes = 24 * (kBlockFileHeaderBytes + 16 * 4 + kKillPayload);
  o.model_fingerprint = 0xabc;
  o.kv_type = 1;
  return o;
}

[[noreturn]] void writer(const std::string& dir, uint64_t seed) {
  auto opened = DiskStore::open(kill_options(dir));
  if (!opened) _exit(3);
  DiskStore& s = **opened;
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> chain;
  uint64_t parent = 1;
  std::vector<uint8_t> out(kKillPayload);
  for (;;) {
    if (rng() % 8 == 0) {
      parent = 1;
      chain.clear();
    }
    BlockMeta m;
    m.parent = parent;
    for (int t = 0; t < 16; ++t) m.tokens.push_back(static_cast<int32_t>(rng() % 50000));
    m.key = block_key(parent, m.tokens);
    if (!s.put(m, payload_for(m.key, kKillPayload)).ok()) _exit(4);
    chain.push_back(m.key);
    parent = m.key;
    const uint64_t r = rng() % 16;
    if (r < 4) (void)s.load(chain[rng() % chain.size()], out);  // may be evicted: fine
    if (r == 5 && !s.erase(chain[rng() % chain.size()]).ok()) _exit(5);
  }
}

TEST(DiskStore, SurvivesKill9AtRandomMoments) {
  const std::string dir = test::scratch_dir("disk_store_kill9");
  std::mt19937 rng(20250607);
  std::uniform_int_distribution<int> wait_ms(2, 45);
  constexpr int kRounds = 30;
  int rounds_with_temp = 0, rounds_with_orphans = 0;
  int64_t blocks_checked = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(round);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) writer(dir, 1000 + static_cast<uint64_t>(round));
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms(rng)));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer stopped by itself, exit code " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    bool temp_left = false;
    for (const auto& e : fs::recursive_directory_iterator(dir + "/blocks")) {
      temp_left = temp_left || e.path().filename().string().find(".tmp.") != std::string::npos;
    }
    rounds_with_temp += temp_left ? 1 : 0;

    auto opened = DiskStore::open(kill_options(dir));
    ASSERT_TRUE(opened.ok()) << opened.message();
    DiskStore& s = **opened;
    rounds_with_orphans += s.stats().files_deleted_at_open > 0 ? 1 : 0;
    ASSERT_EQ(s.stats().dropped_at_open, 0);  // a process crash loses no indexed block
    ASSERT_EQ(s.check_invariants(), "");      // no temporaries, no files without rows
    auto ks = s.keys();
    ASSERT_TRUE(ks.ok());
    std::vector<uint8_t> out(kKillPayload);
    for (uint64_t key : *ks) {
      BlockMeta m;
      const Status st = s.load(key, out, &m);
      ASSERT_TRUE(st.ok()) << st.message();
      ASSERT_EQ(m.key, block_key(m.parent, m.tokens));
      ASSERT_TRUE(out == payload_for(key, kKillPayload)) << "block " << key;
      ++blocks_checked;
    }
    ASSERT_EQ(s.stats().bad_blocks, 0);
  }
  // The kills must have hit work in progress, not only idle moments.
  EXPECT_GT(blocks_checked, kRounds);
  EXPECT_GT(rounds_with_temp + rounds_with_orphans, 0);
  std::printf("kill -9: %d rounds, %lld blocks verified, %d with a temporary left, %d with orphans deleted\n", kRounds,
              static_cast<long long>(blocks_checked), rounds_with_temp, rounds_with_orphans);
}

}  // namespace
}  // namespace tandem::kv

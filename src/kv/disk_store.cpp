#include "kv/disk_store.h"

#include "core/mapped_file.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace tandem::kv {

namespace fs = std::filesystem;

namespace {

static_assert(std::endian::native == std::endian::little, "block files are little-endian");

// The on-disk header of a block file (see disk_store.h).
struct FileHeader {
  char magic[4];
  uint32_t format_version;
  uint64_t fingerprint;
  uint32_t kv_type;
  uint32_t block_tokens;
  uint64_t payload_bytes;
  uint64_t key;
  uint64_t parent;
  uint32_t n_tokens;
  uint32_t reserved;
  uint64_t checksum;
};
static_assert(sizeof(FileHeader) == kBlockFileHeaderBytes);
constexpr char kMagic[4] = {'T', 'D', 'K', 'V'};

// SQLite stores signed 64-bit integers; keys keep their bits.
int64_t to_db(uint64_t v) { return std::bit_cast<int64_t>(v); }
uint64_t from_db(int64_t v) { return std::bit_cast<uint64_t>(v); }

uint64_t checksum_of(const FileHeader& h, std::span<const int32_t> tokens, std::span<const uint8_t> payload) {
  FileHeader zeroed = h;
  zeroed.checksum = 0;
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> st(XXH3_createState(), &XXH3_freeState);
  XXH3_64bits_reset(st.get());
  XXH3_64bits_update(st.get(), &zeroed, sizeof(zeroed));
  XXH3_64bits_update(st.get(), tokens.data(), tokens.size_bytes());
  XXH3_64bits_update(st.get(), payload.data(), payload.size());
  return XXH3_64bits_digest(st.get());
}

// Reads exactly N bytes at OFFSET; false on error or a short file.
bool read_at(int fd, void* dst, size_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(dst);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

// The key a block file name stands for: exactly 16 lowercase hex digits
// then ".blk"; anything else is not ours.
std::optional<uint64_t> key_of_name(const std::string& name) {
  if (name.size() != 20 || name.compare(16, 4, ".blk") != 0) return std::nullopt;
  uint64_t key = 0;
  for (int i = 0; i < 16; ++i) {
    const char c = name[static_cast<size_t>(i)];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    key = key << 4 | static_cast<uint64_t>(d);
  }
  return key;
}

// Column COL of the current row as an array of T (a blob of whole Ts).
template <class T>
std::vector<T> blob_as(sqlite3_stmt* s, int col) {
  const auto* blob = static_cast<const uint8_t*>(sqlite3_column_blob(s, col));
  std::vector<T> out(static_cast<size_t>(sqlite3_column_bytes(s, col)) / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), blob, out.size() * sizeof(T));
  return out;
}

// Resets a prepared statement when leaving a scope.
struct StmtScope {
  sqlite3_stmt* s;
  ~StmtScope() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

}  // namespace

struct DiskStore::Statements {
  sqlite3_stmt* find = nullptr;         // key -> parent, bytes, tokens
  sqlite3_stmt* insert = nullptr;       // key, parent, bytes, last_use, tokens
  sqlite3_stmt* del = nullptr;          // key
  sqlite3_stmt* touch = nullptr;        // key, last_use
  sqlite3_stmt* lru = nullptr;          // -> key, bytes, least recently used first
  sqlite3_stmt* entries = nullptr;      // -> key, parent, tokens, least recently used first
  sqlite3_stmt* session_put = nullptr;  // id, last_use, pinned, ns, tokens, keys
  sqlite3_stmt* session_del = nullptr;  // id
  sqlite3_stmt* session_all = nullptr;  // -> id, last_use, pinned, ns, tokens, keys
  ~Statements() {
    for (sqlite3_stmt* s : {find, insert, del, touch, lru, entries, session_put, session_del, session_all}) {
      sqlite3_finalize(s);
    }
  }
};

DiskStore::DiskStore(DiskStoreOptions options, int lock_fd) : opt_(std::move(options)), lock_fd_(lock_fd) {}

DiskStore::~DiskStore() {
  st_.reset();
  if (db_ != nullptr) sqlite3_close(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

uint64_t DiskStore::file_bytes() const {
  return kBlockFileHeaderBytes + uint64_t{opt_.block_tokens} * sizeof(int32_t) + opt_.block_bytes;
}

std::string DiskStore::block_path(uint64_t key) const {
  return fmt::format("{}/blocks/{:02x}/{:02x}/{:016x}.blk", opt_.dir, key >> 56, (key >> 48) & 0xff, key);
}

Status DiskStore::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = Status::errorf("index: {}: {}", sql, err != nullptr ? err : sqlite3_errmsg(db_));
    sqlite3_free(err);
    return s;
  }
  return {};
}

Result<std::unique_ptr<DiskStore>> DiskStore::open(const DiskStoreOptions& options) {
  if (options.dir.empty()) return Status::error("disk store: no folder");
  if (options.block_tokens == 0 || options.block_bytes == 0) return Status::error("disk store: empty block shape");
  std::error_code ec;
  fs::create_directories(fs::path(options.dir) / "blocks", ec);
  if (ec) return Status::errorf("disk store: cannot create {}: {}", options.dir, ec.message());

  // One process per store: open() deletes files it does not know, which
  // would include another live writer's temporaries. The kernel drops the
  // lock when its holder dies, even by kill -9.
  const std::string lock_path = options.dir + "/LOCK";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return Status::errorf("disk store: cannot open {}: {}", lock_path, std::strerror(errno));
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(lock_fd);
    return Status::errorf("disk store: {} is in use by another process ({})", options.dir, std::strerror(err));
  }
  std::unique_ptr<DiskStore> store(new DiskStore(options, lock_fd));
  if (store->file_bytes() > options.max_bytes) {
    return Status::errorf("disk store: max_bytes {} holds no block of {} bytes", options.max_bytes,
                          store->file_bytes());
  }

  if (Status s = store->open_index(); !s.ok()) {
    // An unreadable index (not a database, corrupt) is rebuilt empty: it is
    // only a cache, and its block files are deleted as orphans below.
    const int code = store->db_ != nullptr ? sqlite3_errcode(store->db_) & 0xff : SQLITE_OK;
    if (code != SQLITE_NOTADB && code != SQLITE_CORRUPT) return s.with_context("disk store");
    store->st_.reset();
    sqlite3_close(store->db_);
    store->db_ = nullptr;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(options.dir + "/index.sqlite3" + suffix, ec);
    store->stats_.index_recreated = true;
    TANDEM_RETURN_IF_ERROR(store->open_index().with_context("disk store (recreated index)"));
  }
  TANDEM_RETURN_IF_ERROR(store->check_meta());
  TANDEM_RETURN_IF_ERROR(store->reconcile_files());

  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(store->db_, "SELECT COUNT(*), COALESCE(SUM(bytes), 0), COALESCE(MAX(last_use), 0) FROM blocks",
                         -1, &s, nullptr) != SQLITE_OK ||
      sqlite3_step(s) != SQLITE_ROW) {
    sqlite3_finalize(s);
    return Status::errorf("disk store: index: {}", sqlite3_errmsg(store->db_));
  }
  store->count_ = static_cast<size_t>(sqlite3_column_int64(s, 0));
  store->bytes_ = static_cast<uint64_t>(sqlite3_column_int64(s, 1));
  store->clock_ = sqlite3_column_int64(s, 2);
  sqlite3_finalize(s);

  // A smaller budget than last time.
  if (store->bytes_ > options.max_bytes) TANDEM_RETURN_IF_ERROR(store->evict_to(options.max_bytes, nullptr));
  return store;
}

Status DiskStore::open_index() {
  const std::string path = opt_.dir + "/index.sqlite3";
  // NOMUTEX: one thread uses the store (see the header).
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    return Status::errorf("cannot open {}: {}", path, db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory");
  }
  // WAL + synchronous=NORMAL: a commit survives a process crash; a power
  // loss may lose the last commits, which only leaves block files without
  // rows (deleted at the next open): data is fsynced before its row.
  TANDEM_RETURN_IF_ERROR(exec("PRAGMA journal_mode=WAL"));
  TANDEM_RETURN_IF_ERROR(exec("PRAGMA synchronous=NORMAL"));
  TANDEM_RETURN_IF_ERROR(
      exec("CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
           "CREATE TABLE IF NOT EXISTS blocks(key INTEGER PRIMARY KEY, parent INTEGER NOT NULL, "
           "  bytes INTEGER NOT NULL, last_use INTEGER NOT NULL, tokens BLOB NOT NULL);"
           "CREATE INDEX IF NOT EXISTS blocks_by_use ON blocks(last_use);"
           "CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, last_use INTEGER NOT NULL, "
           "  pinned INTEGER NOT NULL, ns INTEGER NOT NULL, tokens BLOB NOT NULL, keys BLOB NOT NULL);"));
  st_ = std::make_unique<Statements>();
  const std::pair<sqlite3_stmt**, const char*> sqls[] = {
      {&st_->find, "SELECT parent, bytes, tokens FROM blocks WHERE key = ?1"},
      {&st_->insert, "INSERT INTO blocks(key, parent, bytes, last_use, tokens) VALUES(?1, ?2, ?3, ?4, ?5)"},
      {&st_->del, "DELETE FROM blocks WHERE key = ?1"},
      {&st_->touch, "UPDATE blocks SET last_use = ?2 WHERE key = ?1"},
      {&st_->lru, "SELECT key, bytes FROM blocks ORDER BY last_use ASC"},
      {&st_->entries, "SELECT key, parent, tokens FROM blocks ORDER BY last_use ASC"},
      {&st_->session_put,
       "INSERT OR REPLACE INTO sessions(id, last_use, pinned, ns, tokens, keys) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"},
      {&st_->session_del, "DELETE FROM sessions WHERE id = ?1"},
      {&st_->session_all, "SELECT id, last_use, pinned, ns, tokens, keys FROM sessions ORDER BY last_use ASC"},
  };
  for (const auto& [stmt, sql] : sqls) {
    if (sqlite3_prepare_v2(db_, sql, -1, stmt, nullptr) != SQLITE_OK) {
      return Status::errorf("index: {}: {}", sql, sqlite3_errmsg(db_));
    }
  }
  return {};
}

// The store's model and layout; a store of another one is cleared.
Status DiskStore::check_meta() {
  const std::pair<const char*, int64_t> want[] = {
      {"format_version", kBlockFileVersion},
      {"fingerprint", to_db(opt_.model_fingerprint)},
      {"kv_type", opt_.kv_type},
      {"block_tokens", opt_.block_tokens},
      {"block_bytes", opt_.block_bytes},
  };
  std::unordered_map<std::string, int64_t> have;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT name, value FROM meta", -1, &s, nullptr) != SQLITE_OK) {
    return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  }
  while (sqlite3_step(s) == SQLITE_ROW) {
    have[reinterpret_cast<const char*>(sqlite3_column_text(s, 0))] = sqlite3_column_int64(s, 1);
  }
  sqlite3_finalize(s);
  bool same = have.size() == std::size(want);
  for (const auto& [name, value] : want) {
    auto it = have.find(name);
    same = same && it != have.end() && it->second == value;
  }
  if (same) return {};

  // Another model or layout (or a new store): its blocks can never be
  // served, so they go. The files become orphans, deleted next.
  stats_.cleared_foreign = !have.empty();
  TANDEM_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
  Status st = exec("DELETE FROM blocks; DELETE FROM meta; DELETE FROM sessions;");
  if (st.ok() &&
      sqlite3_prepare_v2(db_, "INSERT INTO meta(name, value) VALUES(?1, ?2)", -1, &s, nullptr) != SQLITE_OK) {
    st = Status::errorf("index: {}", sqlite3_errmsg(db_));
  }
  for (const auto& [name, value] : want) {
    if (!st.ok()) break;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, value);
    if (sqlite3_step(s) != SQLITE_DONE) st = Status::errorf("index: {}", sqlite3_errmsg(db_));
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  if (!st.ok()) {
    (void)exec("ROLLBACK");
    return st.with_context("disk store");
  }
  return exec("COMMIT");
}

// Makes rows and files agree after a crash: a row whose file is missing or
// has the wrong size or header is dropped; a file without a row (an
// interrupted put or eviction) or any other file (temporaries) is deleted.
// Full checksums are left to load(): reading every payload at start-up
// would cost as much as the cache saves.
Status DiskStore::reconcile_files() {
  std::unordered_map<uint64_t, uint64_t> rows;  // key -> bytes
  {
    StmtScope scope{st_->lru};
    int rc;
    while ((rc = sqlite3_step(st_->lru)) == SQLITE_ROW) {
      rows[from_db(sqlite3_column_int64(st_->lru, 0))] = static_cast<uint64_t>(sqlite3_column_int64(st_->lru, 1));
    }
    if (rc != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  }

  std::unordered_set<uint64_t> good;
  std::vector<fs::path> junk;
  std::error_code ec;
  const fs::path root = fs::path(opt_.dir) / "blocks";
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::file_status status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(status)) continue;
    const std::optional<uint64_t> key = key_of_name(it->path().filename().string());
    bool ok = key.has_value() && fs::is_regular_file(status) && it->path().string() == block_path(*key);
    auto row = ok ? rows.find(*key) : rows.end();
    ok = ok && row != rows.end() && row->second == file_bytes() && it->file_size(ec) == row->second && !ec;
    if (ok) {
      FileHeader h{};
      const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
      ok = fd >= 0 && read_at(fd, &h, sizeof(h), 0) && std::memcmp(h.magic, kMagic, 4) == 0 &&
           h.format_version == kBlockFileVersion && h.fingerprint == opt_.model_fingerprint &&
           h.kv_type == opt_.kv_type && h.block_tokens == opt_.block_tokens && h.payload_bytes == opt_.block_bytes &&
           h.key == *key && h.n_tokens >= 1 && h.n_tokens <= opt_.block_tokens;
      if (fd >= 0) ::close(fd);
    }
    if (ok) good.insert(*key);
    else junk.push_back(it->path());
    ec.clear();
  }
  if (ec) return Status::errorf("disk store: cannot list {}: {}", root.string(), ec.message());

  for (const fs::path& p : junk) {
    if (fs::remove(p, ec)) ++stats_.files_deleted_at_open;
  }
  std::vector<uint64_t> dropped;
  for (const auto& [key, bytes] : rows) {
    if (!good.contains(key)) dropped.push_back(key);
  }
  if (dropped.empty()) return {};
  TANDEM_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
  for (uint64_t key : dropped) {
    StmtScope scope{st_->del};
    sqlite3_bind_int64(st_->del, 1, to_db(key));
    if (sqlite3_step(st_->del) != SQLITE_DONE) {
      Status s = Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
      (void)exec("ROLLBACK");
      return s;
    }
  }
  TANDEM_RETURN_IF_ERROR(exec("COMMIT"));
  stats_.dropped_at_open += static_cast<int64_t>(dropped.size());
  return {};
}

Result<std::optional<BlockMeta>> DiskStore::find(uint64_t key) const {
  StmtScope scope{st_->find};
  sqlite3_bind_int64(st_->find, 1, to_db(key));
  const int rc = sqlite3_step(st_->find);
  if (rc == SQLITE_DONE) return std::optional<BlockMeta>();
  if (rc != SQLITE_ROW) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  BlockMeta m;
  m.key = key;
  m.parent = from_db(sqlite3_column_int64(st_->find, 0));
  m.tokens = blob_as<int32_t>(st_->find, 2);
  return std::optional<BlockMeta>(std::move(m));
}

Result<std::vector<uint64_t>> DiskStore::keys() const {
  std::vector<uint64_t> out;
  StmtScope scope{st_->lru};
  int rc;
  while ((rc = sqlite3_step(st_->lru)) == SQLITE_ROW) out.push_back(from_db(sqlite3_column_int64(st_->lru, 0)));
  if (rc != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  return out;
}

Status DiskStore::put(const BlockMeta& meta, std::span<const uint8_t> payload, std::vector<uint64_t>* evicted) {
  if (evicted != nullptr) evicted->clear();
  if (meta.key == 0) return Status::error("disk store: block key 0");
  if (meta.tokens.empty() || meta.tokens.size() > opt_.block_tokens || payload.size() != opt_.block_bytes) {
    return Status::errorf("disk store: block of {} tokens and {} bytes, store holds {} tokens and {} bytes",
                          meta.tokens.size(), payload.size(), opt_.block_tokens, opt_.block_bytes);
  }
  auto existing = find(meta.key);
  if (!existing) return existing.status();
  if (existing->has_value()) {
    if ((*existing)->parent != meta.parent || (*existing)->tokens != meta.tokens) {
      return Status::errorf("disk store: key {:016x} is stored with other content", meta.key);
    }
    StmtScope scope{st_->touch};
    sqlite3_bind_int64(st_->touch, 1, to_db(meta.key));
    sqlite3_bind_int64(st_->touch, 2, ++clock_);
    if (sqlite3_step(st_->touch) != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
    return {};
  }

  // Data first: the complete file is durable under its final name before
  // its row exists.
  FileHeader h{};
  std::memcpy(h.magic, kMagic, 4);
  h.format_version = kBlockFileVersion;
  h.fingerprint = opt_.model_fingerprint;
  h.kv_type = opt_.kv_type;
  h.block_tokens = opt_.block_tokens;
  h.payload_bytes = opt_.block_bytes;
  h.key = meta.key;
  h.parent = meta.parent;
  h.n_tokens = static_cast<uint32_t>(meta.tokens.size());
  h.checksum = checksum_of(h, meta.tokens, payload);
  const std::string path = block_path(meta.key);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::errorf("disk store: cannot create folder for {}: {}", path, ec.message());
  const std::vector<int32_t> padding(opt_.block_tokens - meta.tokens.size(), 0);  // a tail's unused slots
  const std::span<const uint8_t> parts[] = {
      {reinterpret_cast<const uint8_t*>(&h), sizeof(h)},
      {reinterpret_cast<const uint8_t*>(meta.tokens.data()), meta.tokens.size() * sizeof(int32_t)},
      {reinterpret_cast<const uint8_t*>(padding.data()), padding.size() * sizeof(int32_t)},
      payload,
  };
  TANDEM_RETURN_IF_ERROR(write_file_atomic(path, parts).with_context("disk store"));

  // Then one transaction: the evicted rows go and the new row comes.
  const uint64_t need = bytes_ + file_bytes() > opt_.max_bytes ? bytes_ + file_bytes() - opt_.max_bytes : 0;
  auto found = victims_for(need);
  if (!found) {
    ::unlink(path.c_str());
    return found.status();
  }
  const std::vector<uint64_t> victims = std::move(*found);
  const uint64_t freed = victims.size() * file_bytes();
  auto fail = [&](Status s) {
    (void)exec("ROLLBACK");
    ::unlink(path.c_str());
    return s.with_context("disk store");
  };
  if (Status s = exec("BEGIN IMMEDIATE"); !s.ok()) return fail(s);
  for (uint64_t key : victims) {
    StmtScope scope{st_->del};
    sqlite3_bind_int64(st_->del, 1, to_db(key));
    if (sqlite3_step(st_->del) != SQLITE_DONE) return fail(Status::errorf("index: {}", sqlite3_errmsg(db_)));
  }
  {
    StmtScope scope{st_->insert};
    sqlite3_bind_int64(st_->insert, 1, to_db(meta.key));
    sqlite3_bind_int64(st_->insert, 2, to_db(meta.parent));
    sqlite3_bind_int64(st_->insert, 3, static_cast<int64_t>(file_bytes()));
    sqlite3_bind_int64(st_->insert, 4, clock_ + 1);
    sqlite3_bind_blob(st_->insert, 5, meta.tokens.data(), static_cast<int>(meta.tokens.size() * sizeof(int32_t)),
                      SQLITE_STATIC);
    if (sqlite3_step(st_->insert) != SQLITE_DONE) return fail(Status::errorf("index: {}", sqlite3_errmsg(db_)));
  }
  if (Status s = exec("COMMIT"); !s.ok()) return fail(s);
  ++clock_;
  ++stats_.puts;
  bytes_ = bytes_ - freed + file_bytes();
  count_ = count_ + 1 - victims.size();
  stats_.evictions += static_cast<int64_t>(victims.size());
  // Index before data on the way out: a crash here leaves orphans only.
  for (uint64_t key : victims) ::unlink(block_path(key).c_str());
  if (evicted != nullptr) *evicted = victims;
  return {};
}

Result<std::vector<uint64_t>> DiskStore::victims_for(uint64_t need) const {
  std::vector<uint64_t> victims;
  uint64_t freed = 0;
  StmtScope scope{st_->lru};
  while (freed < need && sqlite3_step(st_->lru) == SQLITE_ROW) {
    const uint64_t key = from_db(sqlite3_column_int64(st_->lru, 0));
    if (protected_.contains(key)) continue;
    victims.push_back(key);
    freed += static_cast<uint64_t>(sqlite3_column_int64(st_->lru, 1));
  }
  if (freed < need) {
    return Status::errorf("disk store: no room: {} bytes needed, only {} held by unpinned blocks", need, freed);
  }
  return victims;
}

void DiskStore::set_protected(std::vector<uint64_t> keys) { protected_ = {keys.begin(), keys.end()}; }

Status DiskStore::load(uint64_t key, std::span<uint8_t> out, BlockMeta* meta) {
  if (out.size() != opt_.block_bytes) {  // the caller's mistake: the block stays
    return Status::errorf("disk store: load into {} bytes, blocks have {}", out.size(), opt_.block_bytes);
  }
  auto row = find_stored(key);
  if (!row) return row.status();
  Status read = read_checked(key, *row, out);
  if (Status s = finish_load(key, read); !s.ok()) return s;
  if (meta != nullptr) *meta = std::move(*row);
  return {};
}

Result<BlockMeta> DiskStore::find_stored(uint64_t key) const {
  auto row = find(key);
  if (!row) return row.status();
  if (!row->has_value()) return Status::errorf("disk store: block {:016x} is not stored", key);
  return std::move(**row);
}

Status DiskStore::read_checked(uint64_t key, const BlockMeta& m, std::span<uint8_t> out) const {
  if (out.size() != opt_.block_bytes) {
    return Status::errorf("disk store: load into {} bytes, blocks have {}", out.size(), opt_.block_bytes);
  }
  const std::string path = block_path(key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  auto bad = [&](const char* what) {
    if (fd >= 0) ::close(fd);
    return Status::error(what);
  };
  if (fd < 0) return bad("cannot open its file");
  struct stat sb {};
  if (fstat(fd, &sb) != 0 || static_cast<uint64_t>(sb.st_size) != file_bytes()) return bad("wrong file size");
  FileHeader h{};
  if (!read_at(fd, &h, sizeof(h), 0)) return bad("unreadable header");
  if (std::memcmp(h.magic, kMagic, 4) != 0) return bad("not a block file");
  if (h.format_version != kBlockFileVersion) return bad("other format version");
  if (h.fingerprint != opt_.model_fingerprint) return bad("other model");
  if (h.kv_type != opt_.kv_type || h.block_tokens != opt_.block_tokens || h.payload_bytes != opt_.block_bytes ||
      h.n_tokens < 1 || h.n_tokens > opt_.block_tokens) {
    return bad("other KV layout");
  }
  if (h.key != key || h.parent != m.parent) return bad("other key or parent");
  std::vector<int32_t> tokens(h.n_tokens);
  if (!read_at(fd, tokens.data(), tokens.size() * sizeof(int32_t), sizeof(h))) return bad("unreadable tokens");
  if (tokens != m.tokens) return bad("tokens differ from the index");
  if (!read_at(fd, out.data(), out.size(), sizeof(h) + size_t{opt_.block_tokens} * sizeof(int32_t))) {
    return bad("unreadable payload");
  }
  if (checksum_of(h, tokens, out) != h.checksum) return bad("checksum mismatch");
  ::close(fd);
  return {};
}

Status DiskStore::finish_load(uint64_t key, const Status& read) {
  if (!read.ok()) {
    ++stats_.bad_blocks;
    Status dropped = drop(key);
    return Status::errorf("disk store: block {:016x}: {}; deleted{}", key, read.message(),
                          dropped.ok() ? "" : " from the index only: " + dropped.message());
  }
  StmtScope scope{st_->touch};
  sqlite3_bind_int64(st_->touch, 1, to_db(key));
  sqlite3_bind_int64(st_->touch, 2, ++clock_);
  if (sqlite3_step(st_->touch) != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  ++stats_.loads;
  return {};
}

// Row first, then the file (a crash in between leaves an orphan).
Status DiskStore::drop(uint64_t key) {
  {
    StmtScope scope{st_->del};
    sqlite3_bind_int64(st_->del, 1, to_db(key));
    if (sqlite3_step(st_->del) != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  }
  if (sqlite3_changes(db_) > 0) {
    --count_;
    bytes_ -= file_bytes();
  }
  ::unlink(block_path(key).c_str());
  return {};
}

Status DiskStore::erase(uint64_t key) { return drop(key); }

Status DiskStore::evict_to(uint64_t limit_bytes, std::vector<uint64_t>* evicted) {
  std::vector<uint64_t> victims;
  if (bytes_ > limit_bytes) {
    auto found = victims_for(bytes_ - limit_bytes);
    if (!found) return found.status();
    victims = std::move(*found);
  }
  for (uint64_t key : victims) TANDEM_RETURN_IF_ERROR(drop(key));
  stats_.evictions += static_cast<int64_t>(victims.size());
  if (evicted != nullptr) *evicted = std::move(victims);
  return {};
}

Result<std::vector<BlockMeta>> DiskStore::entries() const {
  std::vector<BlockMeta> out;
  StmtScope scope{st_->entries};
  int rc;
  while ((rc = sqlite3_step(st_->entries)) == SQLITE_ROW) {
    BlockMeta m;
    m.key = from_db(sqlite3_column_int64(st_->entries, 0));
    m.parent = from_db(sqlite3_column_int64(st_->entries, 1));
    m.tokens = blob_as<int32_t>(st_->entries, 2);
    out.push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  return out;
}

Status DiskStore::put_session(const SessionRecord& r) {
  StmtScope scope{st_->session_put};
  sqlite3_stmt* s = st_->session_put;
  sqlite3_bind_text(s, 1, r.id.data(), static_cast<int>(r.id.size()), SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, r.last_use_ms);
  sqlite3_bind_int64(s, 3, r.pinned ? 1 : 0);
  sqlite3_bind_int64(s, 4, to_db(r.cache_namespace));
  sqlite3_bind_blob(s, 5, r.tokens.data(), static_cast<int>(r.tokens.size() * sizeof(int32_t)), SQLITE_STATIC);
  sqlite3_bind_blob(s, 6, r.keys.data(), static_cast<int>(r.keys.size() * sizeof(uint64_t)), SQLITE_STATIC);
  if (sqlite3_step(s) != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  return {};
}

Status DiskStore::erase_session(const std::string& id) {
  StmtScope scope{st_->session_del};
  sqlite3_bind_text(st_->session_del, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  if (sqlite3_step(st_->session_del) != SQLITE_DONE)
    return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  return {};
}

Result<std::vector<SessionRecord>> DiskStore::sessions() const {
  std::vector<SessionRecord> out;
  sqlite3_stmt* s = st_->session_all;
  StmtScope scope{s};
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    SessionRecord r;
    const auto* id = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    r.id.assign(id != nullptr ? id : "", static_cast<size_t>(sqlite3_column_bytes(s, 0)));
    r.last_use_ms = sqlite3_column_int64(s, 1);
    r.pinned = sqlite3_column_int64(s, 2) != 0;
    r.cache_namespace = from_db(sqlite3_column_int64(s, 3));
    r.tokens = blob_as<int32_t>(s, 4);
    r.keys = blob_as<uint64_t>(s, 5);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return Status::errorf("disk store: index: {}", sqlite3_errmsg(db_));
  return out;
}

std::string DiskStore::check_invariants() const {
  std::unordered_map<uint64_t, uint64_t> rows;
  {
    StmtScope scope{st_->lru};
    while (sqlite3_step(st_->lru) == SQLITE_ROW) {
      rows[from_db(sqlite3_column_int64(st_->lru, 0))] = static_cast<uint64_t>(sqlite3_column_int64(st_->lru, 1));
    }
  }
  uint64_t sum = 0;
  for (const auto& [key, b] : rows) sum += b;
  if (rows.size() != count_) return fmt::format("count {} but {} rows", count_, rows.size());
  if (sum != bytes_) return fmt::format("bytes {} but rows sum to {}", bytes_, sum);
  if (bytes_ > opt_.max_bytes) return fmt::format("bytes {} over max_bytes {}", bytes_, opt_.max_bytes);
  size_t files = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(fs::path(opt_.dir) / "blocks", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) continue;
    ++files;
    const auto key = key_of_name(it->path().filename().string());
    if (!key || !rows.contains(*key) || it->path().string() != block_path(*key)) {
      return fmt::format("file {} has no row", it->path().string());
    }
    if (it->file_size() != rows[*key]) return fmt::format("file {} has the wrong size", it->path().string());
  }
  if (ec) return "cannot list blocks: " + ec.message();
  if (files != rows.size()) return fmt::format("{} rows but {} files", rows.size(), files);
  return "";
}

}  // namespace tandem::kv

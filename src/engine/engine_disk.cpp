// The engine's side of the disk tier: writing committed blocks behind the
// steps, continuing prefix hits on disk, reading them back while other
// sequences run, flushing.
//
// Every block handed to an I/O job holds one extra reference (io_refs_)
// until the engine takes the job's completion, so a block being written is
// never evicted and a block being read is never handed to anyone else.
#include "engine/engine.h"
#include "engine/sequence.h"
#include "kv/disk_tier.h"
#include "kv/redis_tier.h"

#include <fmt/format.h>

#include <thread>

namespace tandem::engine {

Status Engine::open_disk_tier() {
  kv::DiskStoreOptions o;
  o.dir = opt_.cache_dir;
  o.max_bytes = opt_.cache_disk_bytes;
  o.model_fingerprint = fingerprint_;
  o.kv_type = kernels::kv_type_id(opt_.kv_type);  // stable ids: kernels/kv_type.h
  o.block_tokens = static_cast<uint32_t>(opt_.block_tokens);
  o.block_bytes = static_cast<uint32_t>(pool_->shape().block_bytes());
  auto tier = kv::DiskTier::open(o, *pool_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      io_ready_ = true;
    }
    wake_.notify_all();
  });
  if (!tier) return tier.status().with_context("KV disk tier in " + opt_.cache_dir);
  tier_ = std::move(*tier);
  for (const kv::SessionRecord& r : tier_->sessions_at_open()) {
    (*sessions_)[r.id] = r;
    if (r.pinned) set_pinned_keys(r.keys, +1);
  }
  return {};
}

Status Engine::open_remote_tier() {
  kv::RedisTierOptions o;
  o.url = opt_.redis_url;
  // Nodes of other models, KV types or block sizes never read these keys.
  o.key_prefix =
      fmt::format("tandem:{:016x}:{}:{}", fingerprint_, kernels::kv_type_name(opt_.kv_type), opt_.block_tokens);
  o.block_tokens = static_cast<uint32_t>(opt_.block_tokens);
  o.block_bytes = static_cast<uint32_t>(pool_->shape().block_bytes());
  auto remote = kv::RedisTier::open(o);
  if (!remote) return remote.status();
  remote_ = std::move(*remote);
  kv::RedisTier* r = remote_.get();
  tier_->on_stored([r](const kv::BlockMeta& meta, std::span<const uint8_t> payload) { r->put_block(meta, payload); });
  tier_->on_session([r](const kv::SessionRecord& record) { r->put_session(record); });
  for (const kv::SessionRecord& record : tier_->sessions_at_open()) note_known_session(record.id);
  return {};
}

std::optional<kv::SessionRecord> Engine::prefetch_remote(const Request& request) {
  std::optional<kv::SessionRecord> adopted;
  if (!request.session.empty()) {
    bool known = false;
    {
      std::lock_guard<std::mutex> lock(known_mu_);
      known = known_sessions_.contains(request.session);
    }
    if (!known) {
      adopted = remote_->get_session(request.session);
      if (adopted && adopted->cache_namespace != request.cache_namespace) adopted.reset();  // another key's
    }
  }
  const size_t bt = static_cast<size_t>(opt_.block_tokens);
  const std::span<const int32_t> prompt(request.prompt);
  std::vector<kv::BlockMeta> chain;
  kv::BlockKey parent = index_->root_key(request.cache_namespace);  // reads only constants
  for (size_t start = 0; start + bt <= prompt.size(); start += bt) {
    const auto chunk = prompt.subspan(start, bt);
    const kv::BlockKey key = kv::block_key(parent, chunk);
    chain.push_back({key, parent, std::vector<int32_t>(chunk.begin(), chunk.end())});
    parent = key;
  }
  size_t first = 0;  // the head the disk tier already has (RAM blocks are written through to it)
  while (first < chain.size() && tier_->contains(chain[first].key)) ++first;
  if (first == chain.size()) return adopted;
  // In batches: a block is MiBs (3.5 MiB on the Qwen3-0.6B shape), so one
  // reply stays well within the read timeout and at most a batch is held
  // in memory while it is staged.
  constexpr size_t kBatch = 8;
  for (size_t at = first; at < chain.size(); at += kBatch) {
    const auto batch = std::span<const kv::BlockMeta>(chain).subspan(at, std::min(kBatch, chain.size() - at));
    auto payloads = remote_->get_chain(batch);
    const size_t got = payloads.size();
    std::vector<std::pair<kv::BlockMeta, std::vector<uint8_t>>> blocks;
    for (size_t i = 0; i < got; ++i) blocks.emplace_back(std::move(chain[at + i]), std::move(payloads[i]));
    const size_t staged = tier_->import_blocks(std::move(blocks));
    remote_hit_tokens_ += static_cast<int64_t>(staged * bt);
    if (staged < batch.size()) break;  // the chain ends here (absent, invalid, or the disk refused it)
  }
  return adopted;
}

// Continues S's RAM prefix with blocks found further along the chain: in
// RAM past a miss (retained at once) or on disk (read into new blocks).
// Keeps at least one prompt token to compute, like the RAM lookup.
bool Engine::lookup_disk(Sequence& s) {
  const size_t bt = static_cast<size_t>(opt_.block_tokens);
  const std::span<const int32_t> tokens(s.tokens);
  s.kv.load_begin = s.kv.blocks.size();
  s.kv.load_keys.clear();
  s.kv.load_state.clear();
  s.kv.loads_pending = 0;
  s.kv.count_loads = !s.admitted_once;
  kv::BlockKey parent = s.kv.last_key;
  for (size_t start = s.kv.blocks.size() * bt; start + bt < tokens.size(); start += bt) {
    const auto chunk = tokens.subspan(start, bt);
    const kv::BlockKey key = kv::block_key(parent, chunk);
    if (loading_.contains(key)) {
      // Another sequence is reading this block: wait for it rather than
      // read it twice; what this one already took goes back.
      for (size_t i = s.kv.load_begin; i < s.kv.blocks.size(); ++i) blocks_->release(s.kv.blocks[i]);
      s.kv.blocks.resize(s.kv.load_begin);
      s.kv.load_keys.clear();
      s.kv.load_state.clear();
      s.kv.loads_pending = 0;
      return false;
    }
    if (auto b = index_->find(key);
        b && index_->parent_of(*b) == parent && std::ranges::equal(index_->tokens_of(*b), chunk)) {
      blocks_->retain(*b);
      s.kv.blocks.push_back(*b);
      s.kv.load_state.push_back(SequenceKv::Slot::kInRam);
    } else if (tier_->contains(key, parent, chunk)) {
      auto fresh = blocks_->allocate();
      if (!fresh) break;        // RAM is full of pinned blocks: compute the rest
      blocks_->retain(*fresh);  // the load's reference
      ++io_refs_[static_cast<size_t>(*fresh)];
      loading_[key] = Loading{*fresh, parent, std::vector<int32_t>(chunk.begin(), chunk.end())};
      tier_->load(*fresh, key);
      s.kv.blocks.push_back(*fresh);
      s.kv.load_state.push_back(SequenceKv::Slot::kPending);
      ++s.kv.loads_pending;
    } else {
      break;
    }
    s.kv.load_keys.push_back(key);
    parent = key;
  }
  load_shared_head(s, parent);
  if (s.kv.loads_pending == 0) finish_loads(s);
  return true;
}

// Where the prompt leaves the chain inside a block that is only on disk
// (a restarted server, a retry with another last message), reads that
// block too, so finish_loads() can copy the head they share
// (reuse_partial_block) instead of computing it.
void Engine::load_shared_head(Sequence& s, kv::BlockKey parent) {
  s.kv.side_load = 0;
  s.kv.side_loaded = false;
  const int64_t bt = opt_.block_tokens;
  const int64_t at = static_cast<int64_t>(s.kv.blocks.size()) * bt;
  const int64_t usable = std::min<int64_t>(static_cast<int64_t>(s.tokens.size()) - at - 1, bt - 1);
  if (usable <= 0) return;
  const auto rest = std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(at), static_cast<size_t>(usable));
  auto child = tier_->longest_child(parent, rest);
  if (!child || loading_.contains(child->key) || index_->find(child->key)) return;  // in RAM or on its way
  auto fresh = blocks_->allocate();  // its reference is the load's: no block table holds it
  if (!fresh) return;
  ++io_refs_[static_cast<size_t>(*fresh)];
  loading_[child->key] = Loading{*fresh, parent, std::move(child->tokens)};
  tier_->load(*fresh, child->key);
  s.kv.side_load = child->key;
  ++s.kv.loads_pending;
}

// All of S's slots are done: the chain up to the first failed load is its
// prefix now; blocks after it go back (loaded ones stay cached).
void Engine::finish_loads(Sequence& s) {
  const int64_t bt = opt_.block_tokens;
  size_t ok = 0;
  int64_t from_disk = 0;
  while (ok < s.kv.load_state.size() && s.kv.load_state[ok] != SequenceKv::Slot::kFailed) {
    from_disk += s.kv.load_state[ok] == SequenceKv::Slot::kLoaded ? bt : 0;
    s.kv.keys.push_back(s.kv.load_keys[ok]);
    s.kv.last_key = s.kv.load_keys[ok];
    ++ok;
  }
  for (size_t i = s.kv.load_begin + ok; i < s.kv.blocks.size(); ++i) blocks_->release(s.kv.blocks[i]);
  s.kv.blocks.resize(s.kv.load_begin + ok);
  s.kv.committed = static_cast<int64_t>(s.kv.blocks.size());
  s.kv.computed = s.kv.committed * bt;
  // A head shared with a block past the chain (in RAM, or the side load).
  const int64_t whole = s.kv.computed;
  reuse_partial_block(s);
  if (s.kv.side_loaded) from_disk += s.kv.computed - whole;
  s.kv.side_loaded = false;
  if (s.kv.count_loads) {
    s.usage.cached_tokens = s.kv.computed;
    s.usage.disk_tokens = from_disk;
  }
  disk_hit_tokens_ += from_disk;
  s.kv.load_keys.clear();
  s.kv.load_state.clear();
}

void Engine::on_committed(kv::BlockId b, kv::BlockKey key) {
  if (pinned_keys_.contains(key)) blocks_->set_floor(b, kv::Retention::kPinned);
  if (tier_ != nullptr) want_write(b, key);
}

void Engine::want_write(kv::BlockId b, kv::BlockKey key) {
  if (index_->key_of(b) != key) return;  // another block holds this content and writes it
  if (write_wanted_.contains(key) || tier_->contains(key)) return;
  write_wanted_.insert(key);
  dirty_.emplace_back(b, key);
}

// Hands dirty blocks to the I/O thread, a bounded number at a time: each
// one in flight keeps its RAM block from being evicted.
void Engine::pump_writes() {
  while (writes_in_flight_ < write_limit() && !dirty_.empty()) {
    const auto [b, key] = dirty_.front();
    dirty_.pop_front();
    if (index_->key_of(b) != key || tier_->contains(key)) {  // evicted before its turn, or stored meanwhile
      write_wanted_.erase(key);
      continue;
    }
    kv::BlockMeta meta;
    meta.key = key;
    meta.parent = index_->parent_of(b);
    const auto tokens = index_->tokens_of(b);
    meta.tokens.assign(tokens.begin(), tokens.end());
    blocks_->retain(b);
    ++io_refs_[static_cast<size_t>(b)];
    ++writes_in_flight_;
    tier_->write(b, std::move(meta));
  }
}

void Engine::take_io_done() {
  for (const kv::IoDone& d : tier_->take_done()) {
    const kv::BlockId b = d.block;
    if (d.kind == kv::IoDone::Kind::kWrite) {
      --writes_in_flight_;
      write_wanted_.erase(d.key);
    } else {
      auto it = loading_.find(d.key);
      if (it != loading_.end()) {
        // Registered even when its reader is gone (cancelled): it is a
        // good block, and whoever waited for it finds it in RAM.
        const Loading& l = it->second;
        if (d.ok && index_->key_of(b) == 0) {
          if (l.tokens.size() < static_cast<size_t>(opt_.block_tokens)) {
            index_->commit_tail(b, l.parent, l.tokens);  // a stored tail (write_tails)
          } else {
            index_->commit(b, l.parent, l.tokens);
            if (index_->key_of(b) == d.key && pinned_keys_.contains(d.key)) {
              blocks_->set_floor(b, kv::Retention::kPinned);
            }
          }
        }
        loading_.erase(it);
      }
    }
    // The job's reference goes before a load's readers hear of it: a stored
    // tail is taken (take_tail) only once nothing else holds it.
    --io_refs_[static_cast<size_t>(b)];
    blocks_->release_keep_class(b);
    if (d.kind == kv::IoDone::Kind::kLoad) {
      for (auto& s : running_) {
        if (s->kv.loads_pending == 0) continue;
        if (s->kv.side_load == d.key) {
          s->kv.side_load = 0;
          s->kv.side_loaded = d.ok;
          if (--s->kv.loads_pending == 0) finish_loads(*s);
          continue;
        }
        for (size_t j = 0; j < s->kv.load_state.size(); ++j) {
          if (s->kv.load_state[j] != SequenceKv::Slot::kPending || s->kv.blocks[s->kv.load_begin + j] != b) continue;
          s->kv.load_state[j] = d.ok ? SequenceKv::Slot::kLoaded : SequenceKv::Slot::kFailed;
          if (--s->kv.loads_pending == 0) finish_loads(*s);
          break;
        }
      }
    }
  }
}

void Engine::wait_for_io() {
  tier_->wait_for_done();
  take_io_done();
}

// Every committed block in RAM that the disk does not have yet.
int64_t Engine::queue_unwritten_blocks() {
  int64_t n = 0;
  for (kv::BlockId b = 0; b < pool_->n_blocks(); ++b) {
    const kv::BlockKey key = index_->key_of(b);
    if (key == 0 || write_wanted_.contains(key) || tier_->contains(key)) continue;
    want_write(b, key);
    ++n;
  }
  return n;
}

// Every cached tail (a conversation's partial last block) the disk does not
// have, written from a private copy: a running sequence may take the tail
// and write its next positions while the copy is on its way. Only flush()
// (shutdown) writes tails: they change with every turn, and a restart is
// when the RAM ones are lost.
void Engine::write_tails() {
  for (const kv::PrefixIndex::TailView& t : index_->tails()) {
    const kv::BlockKey key = kv::block_key(t.parent, t.tokens);
    if (write_wanted_.contains(key) || tier_->contains(key)) continue;
    auto copy = blocks_->allocate();  // its reference is the write's
    if (!copy) break;
    std::memcpy(pool_->block_data(*copy), pool_->block_data(t.block), pool_->shape().block_bytes());
    kv::BlockMeta meta;
    meta.key = key;
    meta.parent = t.parent;
    meta.tokens.assign(t.tokens.begin(), t.tokens.end());
    write_wanted_.insert(key);
    ++io_refs_[static_cast<size_t>(*copy)];
    ++writes_in_flight_;
    tier_->write(*copy, std::move(meta));
  }
}

Result<FlushResult> Engine::flush(std::chrono::milliseconds timeout) {
  if (tier_ == nullptr) return Status::error("there is no disk tier (start with --cache-dir)");
  const auto t0 = Clock::now();
  const kv::DiskTierStats before = tier_->stats();
  run_on_engine([&] {
    queue_unwritten_blocks();
    write_tails();
  });
  for (;;) {
    bool done = false;
    run_on_engine([&] {
      if (!opt_.start_thread) {  // nobody else drives the writes
        pump_writes();
        if (writes_in_flight_ > 0) wait_for_io();
      }
      done = dirty_.empty() && writes_in_flight_ == 0;
    });
    if (done) break;
    if (Clock::now() - t0 > timeout) return Status::errorf("flush: not done after {} ms", timeout.count());
    if (opt_.start_thread) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  tier_->drain();  // index updates queued before the flush are done too
  const kv::DiskTierStats after = tier_->stats();
  FlushResult r;
  r.written = after.writes - before.writes;
  r.failed = after.write_errors - before.write_errors;
  run_on_engine([&] {
    for (kv::BlockId b = 0; b < pool_->n_blocks(); ++b) {
      const kv::BlockKey key = index_->key_of(b);
      r.on_disk += key != 0 && tier_->contains(key) ? 1 : 0;
    }
  });
  r.ms = ms_between(t0, Clock::now());
  return r;
}

}  // namespace tandem::engine

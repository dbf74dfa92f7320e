#include "kv/prefix_index.h"

#include "kv/child_index.h"

#include <xxhash.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace tandem::kv {

BlockKey block_key(BlockKey parent, std::span<const int32_t> tokens) {
  const BlockKey k = XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent);
  return k == 0 ? 1 : k;  // 0 means "no key"
}

PrefixIndex::PrefixIndex(KvPool& pool, uint64_t fingerprint)
    : blocks_(pool.blocks()),
      block_tokens_(pool.shape().block_tokens),
      root_seed_{fingerprint, kernels::kv_type_id(pool.shape().type)},
      meta_(static_cast<size_t>(pool.n_blocks())),
      tokens_(static_cast<size_t>(pool.n_blocks()) * static_cast<size_t>(pool.shape().block_tokens)) {
  blocks_.on_evict([this](BlockId b) { forget(b); });
}

PrefixIndex::~PrefixIndex() { blocks_.on_evict(nullptr); }

BlockKey PrefixIndex::root_key(uint64_t ns) const {
  const uint64_t parts[3] = {root_seed_[0], root_seed_[1], ns};
  const BlockKey k = XXH3_64bits(parts, sizeof(parts));
  return k == 0 ? 1 : k;
}

std::span<const int32_t> PrefixIndex::tokens_of(BlockId b) const {
  const size_t bt = static_cast<size_t>(block_tokens_);
  return std::span<const int32_t>(tokens_).subspan(static_cast<size_t>(b) * bt, bt);
}

PrefixMatch PrefixIndex::lookup(std::span<const int32_t> tokens, uint64_t ns) {
  ++stats_.lookups;
  PrefixMatch match;
  BlockKey parent = root_key(ns);
  const size_t bt = static_cast<size_t>(block_tokens_);
  for (size_t start = 0; start + bt <= tokens.size(); start += bt) {
    const auto chunk = tokens.subspan(start, bt);
    const BlockKey key = block_key(parent, chunk);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) break;
    const BlockId b = it->second;
    // Verify: a colliding key must not serve another prefix's KV.
    const auto stored = tokens_of(b);
    if (meta_[static_cast<size_t>(b)].parent != parent || !std::equal(stored.begin(), stored.end(), chunk.begin()))
      break;
    blocks_.retain(b);
    match.blocks.push_back(b);
    parent = key;
  }
  match.last_key = parent;
  match.tokens = static_cast<int64_t>(match.blocks.size() * bt);
  stats_.hit_blocks += static_cast<int64_t>(match.blocks.size());
  return match;
}

void PrefixIndex::forget(BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (m.key != 0) {
    auto it = by_key_.find(m.key);
    if (it != by_key_.end() && it->second == b) {
      by_key_.erase(it);
      erase_child(children_, m.parent, b);
    }
  }
  if (m.tail_len > 0) {
    auto it = tail_by_parent_.find(m.parent);
    if (it != tail_by_parent_.end() && it->second == b) tail_by_parent_.erase(it);
  }
  m = Meta{};
}

void PrefixIndex::commit_tail(BlockId b, BlockKey parent, std::span<const int32_t> tokens) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (tokens.empty() || tokens.size() >= static_cast<size_t>(block_tokens_) || m.key != 0) return;
  // An older tail here is no longer one: freed now if unused, else when released.
  if (auto it = tail_by_parent_.find(parent); it != tail_by_parent_.end() && it->second != b) {
    const BlockId old = it->second;
    if (!blocks_.drop(old)) {  // dropping forgets it through the eviction callback
      forget(old);
      blocks_.set_has_content(old, false);
    }
  }
  tail_by_parent_[parent] = b;
  m.parent = parent;
  m.tail_len = static_cast<int32_t>(tokens.size());
  std::memcpy(tokens_.data() + static_cast<size_t>(b) * static_cast<size_t>(block_tokens_), tokens.data(),
              tokens.size_bytes());
  blocks_.set_has_content(b, true);
}

std::optional<PartialMatch> PrefixIndex::longest_child(BlockKey parent, std::span<const int32_t> tokens) {
  PartialMatch best;
  for (auto [c, end] = children_.equal_range(parent); c != end; ++c) {
    const int same = common_prefix(tokens_of(c->second), tokens);
    if (same > best.tokens) best = PartialMatch{c->second, same};
  }
  if (best.tokens == 0) return std::nullopt;
  blocks_.retain(best.block);
  return best;
}

std::vector<PrefixIndex::TailView> PrefixIndex::tails() const {
  std::vector<TailView> out;
  out.reserve(tail_by_parent_.size());
  for (const auto& [parent, b] : tail_by_parent_) {
    const auto len = static_cast<size_t>(meta_[static_cast<size_t>(b)].tail_len);
    out.push_back(TailView{parent, b, tokens_of(b).first(len)});
  }
  return out;
}

std::optional<PartialMatch> PrefixIndex::take_tail(BlockKey parent, std::span<const int32_t> tokens) {
  auto it = tail_by_parent_.find(parent);
  if (it == tail_by_parent_.end()) return std::nullopt;
  const BlockId b = it->second;
  if (blocks_.ref_count(b) != 0) return std::nullopt;  // not released yet
  const int same =
      common_prefix(tokens_of(b).first(static_cast<size_t>(meta_[static_cast<size_t>(b)].tail_len)), tokens);
  if (same == 0) return std::nullopt;
  blocks_.retain(b);
  forget(b);
  blocks_.set_has_content(b, false);
  return PartialMatch{b, same};
}

BlockKey PrefixIndex::commit(BlockId b, BlockKey parent, std::span<const int32_t> tokens) {
  const BlockKey key = block_key(parent, tokens);
  Meta& m = meta_[static_cast<size_t>(b)];
  if (m.key == key) return key;  // already committed (shared prefix block)
  auto [it, inserted] = by_key_.emplace(key, b);
  if (!inserted) return key;  // another block holds this content; this one stays private
  m.key = key;
  m.parent = parent;
  children_.emplace(parent, b);
  std::memcpy(tokens_.data() + static_cast<size_t>(b) * static_cast<size_t>(block_tokens_), tokens.data(),
              tokens.size_bytes());
  blocks_.set_has_content(b, true);
  ++stats_.commits;
  return key;
}

std::optional<BlockId> PrefixIndex::find(BlockKey key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::string PrefixIndex::check_invariants() const {
  if (auto e = blocks_.check_invariants(); !e.empty()) return "block pool: " + e;
  size_t committed = 0;
  for (BlockId b = 0; b < blocks_.n_blocks(); ++b) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    if (m.key != 0 && m.tail_len != 0) return fmt::format("block {} has both a key and a tail", b);
    const bool indexed = m.key != 0 || m.tail_len != 0;
    if (indexed != blocks_.has_content(b)) {
      return fmt::format("block {}: indexed {} but the pool says content {}", b, indexed, blocks_.has_content(b));
    }
    if (m.key != 0) {
      ++committed;
      auto it = by_key_.find(m.key);
      if (it == by_key_.end() || it->second != b) return fmt::format("block {} key is not in the map", b);
    }
    if (m.tail_len != 0) {
      auto it = tail_by_parent_.find(m.parent);
      if (it == tail_by_parent_.end() || it->second != b) return fmt::format("tail block {} is not in the map", b);
    }
  }
  for (const auto& [key, b] : by_key_) {
    if (meta_[static_cast<size_t>(b)].key != key) return fmt::format("map entry {} -> {} is stale", key, b);
  }
  if (children_.size() != committed)
    return fmt::format("{} child entries for {} committed blocks", children_.size(), committed);
  for (const auto& [parent, b] : children_) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    if (m.key == 0 || m.parent != parent) return fmt::format("child entry {} -> {} is stale", parent, b);
  }
  for (const auto& [parent, b] : tail_by_parent_) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    if (m.tail_len <= 0 || m.tail_len >= block_tokens_ || m.parent != parent || m.key != 0) {
      return fmt::format("tail entry {} -> {} is stale", parent, b);
    }
  }
  return "";
}

}  // namespace tandem::kv

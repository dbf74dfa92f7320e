// Sessions: the manifest of each session's last turn (its block chain and
// tokens), pinning, deletion, and the admin view. Manifests persist in the
// disk tier's index when there is one. Everything here runs on the engine
// thread; the public calls get there through run_on_engine().
#include "engine/engine.h"
#include "engine/sequence.h"

#include <unordered_set>

namespace tandem::engine {

namespace {
int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void Engine::adopt_session(kv::SessionRecord record) {
  if (sessions_->contains(record.id)) return;
  note_known_session(record.id);
  kv::SessionRecord& r = (*sessions_)[record.id];
  r = std::move(record);
  if (r.pinned) set_pinned_keys(r.keys, +1);
  if (tier_ != nullptr) tier_->put_session(r);
  trim_sessions();
}

void Engine::note_known_session(const std::string& id) {
  if (!remote_) return;
  std::lock_guard<std::mutex> lock(known_mu_);
  known_sessions_.insert(id);
}

void Engine::record_session(Sequence& s) {
  note_known_session(s.req.session);
  kv::SessionRecord& r = (*sessions_)[s.req.session];
  if (r.pinned) set_pinned_keys(r.keys, -1);
  r.id = s.req.session;
  r.last_use_ms = wall_ms();
  r.cache_namespace = s.req.cache_namespace;
  r.tokens = s.tokens;
  r.keys = s.kv.keys;
  if (r.pinned) set_pinned_keys(r.keys, +1);
  if (tier_ != nullptr) tier_->put_session(r);
  trim_sessions();
}

// Counts KEYS in (DELTA +1) or out of (-1) the pinned set; blocks in RAM
// follow with their eviction floor, the disk tier with its protected set.
void Engine::set_pinned_keys(const std::vector<kv::BlockKey>& keys, int delta) {
  for (kv::BlockKey key : keys) {
    int& count = pinned_keys_[key];
    count += delta;
    const bool pinned = count > 0;
    if (!pinned) pinned_keys_.erase(key);
    if (auto b = index_->find(key)) blocks_->set_floor(*b, pinned ? kv::Retention::kPinned : kv::Retention::kNormal);
  }
  if (tier_ != nullptr) {
    std::vector<kv::BlockKey> all;
    all.reserve(pinned_keys_.size());
    for (const auto& [key, count] : pinned_keys_) all.push_back(key);
    tier_->protect(std::move(all));
  }
}

bool Engine::session_active(const std::string& id) const {
  for (const auto* list : {&waiting_, &running_}) {
    for (const auto& s : *list) {
      if (s->req.session == id) return true;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : inbox_) {
    if (s->req.session == id) return true;
  }
  return false;
}

// Keeps at most max_stored_sessions manifests: the least recently used
// unpinned, inactive one goes first.
void Engine::trim_sessions() {
  while (opt_.max_stored_sessions > 0 && static_cast<int>(sessions_->size()) > opt_.max_stored_sessions) {
    auto victim = sessions_->end();
    for (auto it = sessions_->begin(); it != sessions_->end(); ++it) {
      if (it->second.pinned || session_active(it->first)) continue;
      if (victim == sessions_->end() || it->second.last_use_ms < victim->second.last_use_ms) victim = it;
    }
    if (victim == sessions_->end()) return;
    if (tier_ != nullptr) tier_->erase_session(victim->first);
    if (remote_) {  // known_sessions_ stays within the table (a trimmed session may be adopted again)
      std::lock_guard<std::mutex> lock(known_mu_);
      known_sessions_.erase(victim->first);
    }
    sessions_->erase(victim);
  }
}

SessionInfo Engine::describe_session(const kv::SessionRecord& r) const {
  SessionInfo info;
  info.id = r.id;
  info.tokens = static_cast<int64_t>(r.tokens.size());
  info.blocks = static_cast<int64_t>(r.keys.size());
  for (kv::BlockKey key : r.keys) info.blocks_in_ram += index_->find(key) ? 1 : 0;
  if (tier_ != nullptr) info.blocks_on_disk = tier_->count_contained(r.keys);
  info.last_use_ms = r.last_use_ms;
  info.pinned = r.pinned;
  info.active = session_active(r.id);
  return info;
}

std::vector<SessionInfo> Engine::sessions() {
  std::vector<SessionInfo> out;
  run_on_engine([&] {
    for (const auto& [id, r] : *sessions_) out.push_back(describe_session(r));
  });
  std::sort(out.begin(), out.end(), [](const SessionInfo& a, const SessionInfo& b) {
    return a.last_use_ms > b.last_use_ms || (a.last_use_ms == b.last_use_ms && a.id < b.id);
  });
  return out;
}

std::optional<SessionInfo> Engine::session(const std::string& id) {
  std::optional<SessionInfo> out;
  run_on_engine([&] {
    if (auto it = sessions_->find(id); it != sessions_->end()) out = describe_session(it->second);
  });
  return out;
}

Engine::SessionOp Engine::delete_session(const std::string& id) {
  SessionOp result = SessionOp::kOk;
  run_on_engine([&] {
    auto it = sessions_->find(id);
    if (it == sessions_->end()) {
      result = SessionOp::kNotFound;
      return;
    }
    if (session_active(id)) {
      result = SessionOp::kBusy;
      return;
    }
    const std::vector<kv::BlockKey> keys = it->second.keys;
    if (it->second.pinned) set_pinned_keys(keys, -1);
    sessions_->erase(it);
    if (tier_ != nullptr) tier_->erase_session(id);
    // Blocks another session's chain uses stay (a shared system prompt).
    std::unordered_set<kv::BlockKey> shared;
    for (const auto& [other, r] : *sessions_) shared.insert(r.keys.begin(), r.keys.end());
    for (kv::BlockKey key : keys) {
      if (shared.contains(key)) continue;
      if (auto b = index_->find(key)) blocks_->drop(*b);  // only when no sequence holds it
      if (tier_ != nullptr && !write_wanted_.contains(key)) tier_->erase_block(key);
    }
  });
  return result;
}

Engine::SessionOp Engine::pin_session(const std::string& id, bool pinned) {
  SessionOp result = SessionOp::kOk;
  run_on_engine([&] {
    auto it = sessions_->find(id);
    if (it == sessions_->end()) {
      if (!session_active(id)) {
        result = SessionOp::kNotFound;
        return;
      }
      it = sessions_->emplace(id, kv::SessionRecord{}).first;  // its turn fills it in
      it->second.id = id;
      it->second.last_use_ms = wall_ms();
    }
    kv::SessionRecord& r = it->second;
    if (r.pinned != pinned) {
      r.pinned = pinned;
      set_pinned_keys(r.keys, pinned ? +1 : -1);
    }
    if (tier_ != nullptr) tier_->put_session(r);
  });
  return result;
}

}  // namespace tandem::engine

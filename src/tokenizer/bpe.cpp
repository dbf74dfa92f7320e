// Byte-level BPE (tokenizer.ggml.model = "gpt2"), as Hugging Face
// tokenizers run it for GPT-2, Llama 3 and Qwen 2/3:
//   1. NFC-normalize the text (Qwen) and split it with the pre-tokenizer
//      regexes into pieces;
//   2. map each piece's bytes to their byte-level tokens;
//   3. repeatedly apply the merge with the lowest rank (ties: leftmost);
//   Llama 3 sets ignore_merges: a piece that is itself a token is emitted
//   whole without merging.
#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/model.h"
#include "tokenizer/unicode_nfc.h"

#include <array>
#include <algorithm>

namespace tandem::tokenizer {
namespace {

struct Merge {
  int32_t rank;
  TokenId result;
};

uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Open-addressing hash table from a token pair to its merge: one probe
// sequence in a flat array instead of node-chasing in std::unordered_map
// (the merge look-up is the hottest operation of BPE).
class MergeTable {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
    mask_ = cap - 1;
  }
  // Keeps the first (lowest-rank) entry when a pair repeats.
  void insert(uint64_t key, Merge m) {
    for (size_t i = index(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) {
        slots_[i] = {key, m};
        return;
      }
      if (slots_[i].key == key) return;
    }
  }
  const Merge* find(uint64_t key) const {
    for (size_t i = index(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;  // no real pair: token ids are < 2^31
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  size_t index(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_; }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

bool needs_nfc(const std::string& pre) { return pre == "qwen2" || pre == "qwen3" || pre == "deepseek-r1-qwen"; }
bool ignores_merges(const std::string& pre) {
  return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe";
}

class BpeModel final : public Model {
 public:
  BpeModel(const Vocab& vocab, std::unique_ptr<PreTokenizer> pre)
      : vocab_(vocab), pre_(std::move(pre)), nfc_(needs_nfc(vocab.pre)), ignore_merges_(ignores_merges(vocab.pre)) {}

  Status init() {
    for (int b = 0; b < 256; ++b) byte_ids_[b] = vocab_.find(byte_to_unicode(static_cast<uint8_t>(b)));
    merges_.reserve(vocab_.merges.size());
    std::string joined;
    for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
      const std::string& m = vocab_.merges[rank];
      const size_t space = m.find(' ', 1);
      if (space == std::string::npos) return Status::errorf("merge {} '{}' has no space separator", rank, m);
      const std::string_view left(m.data(), space), right(m.data() + space + 1, m.size() - space - 1);
      const TokenId l = vocab_.find(left), r = vocab_.find(right);
      joined.assign(left);
      joined += right;
      const TokenId result = vocab_.find(joined);
      // Merges whose parts or result are not tokens can never apply.
      if (l == kNoToken || r == kNoToken || result == kNoToken) continue;
      merges_.insert(pair_key(l, r), Merge{static_cast<int32_t>(rank), result});
    }
    return {};
  }

  void encode_fragment(std::string_view text, bool /*after_special*/, std::vector<TokenId>& out) const override {
    std::string normalized;
    if (nfc_) {
      normalized = nfc_by_line(text);
      text = normalized;
    }
    // The regexes need valid UTF-8: split into valid runs; each invalid byte
    // is a piece of its own (byte-level BPE can still encode it).
    Scratch& sc = scratch();
    sc.pieces.clear();
    size_t run = 0, pos = 0;
    while (pos < text.size()) {
      if (static_cast<uint8_t>(text[pos]) < 0x80) {
        ++pos;
        continue;
      }
      size_t len = 0;
      if (utf8_decode(text, pos, &len) == kInvalidCodepoint) {
        pre_->split(text.substr(run, pos - run), sc.pieces);
        sc.pieces.push_back(text.substr(pos, 1));
        run = pos + 1;
      }
      pos += len;
    }
    pre_->split(text.substr(run), sc.pieces);
    for (std::string_view piece : sc.pieces) encode_piece(piece, sc, out);
  }

  std::string token_bytes(TokenId id) const override {
    const std::string& t = vocab_.tokens[static_cast<size_t>(id)];
    auto bytes = byte_level_decode(t);
    return bytes ? *bytes : t;  // tokens that are not byte-level text decode as themselves
  }

 private:
  struct Symbol {
    TokenId id;
    int prev, next;
    int32_t rank = 0;  // merge_small: rank of the pair (this, next)
  };
  static constexpr int32_t kNoMerge = INT32_MAX;
  struct Candidate {
    int32_t rank;
    int left;
    TokenId left_id, right_id;
    bool operator>(const Candidate& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };
  // Buffers reused across pieces and calls (one set per thread), so the
  // per-piece work allocates nothing.
  struct Scratch {
    std::vector<std::string_view> pieces;
    std::vector<Symbol> syms;
    std::vector<Candidate> heap;
    std::string text;
  };
  static Scratch& scratch() {
    thread_local Scratch s;
    return s;
  }

  // NFC line by line: a newline never composes with its neighbours, and
  // most lines (ASCII code and prose) need no work at all.
  static std::string nfc_by_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      end = end == std::string_view::npos ? text.size() : end + 1;
      out += to_nfc(text.substr(start, end - start));  // to_nfc copies ASCII-only lines as they are
      start = end;
    }
    return out;
  }

  const Merge* find_merge(TokenId l, TokenId r) const { return merges_.find(pair_key(l, r)); }

  void encode_piece(std::string_view piece, Scratch& sc, std::vector<TokenId>& out) const {
    if (ignore_merges_) {
      sc.text.clear();
      byte_level_encode(piece, sc.text);
      const TokenId whole = vocab_.find(sc.text);
      if (whole != kNoToken) {
        out.push_back(whole);
        return;
      }
    }
    std::vector<Symbol>& syms = sc.syms;
    syms.clear();
    for (char c : piece) {
      TokenId id = byte_ids_[static_cast<uint8_t>(c)];
      if (id == kNoToken) id = vocab_.unk;
      if (id == kNoToken) continue;  // a vocabulary without this byte and without unk: drop it
      const int idx = static_cast<int>(syms.size());
      syms.push_back({id, idx - 1, idx + 1, kNoMerge});
    }
    if (syms.empty()) return;
    syms.back().next = -1;
    if (syms.size() <= kSmallPiece) {
      merge_small(syms);
    } else {
      merge_heap(syms, sc.heap);
    }
    for (int i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) out.push_back(syms[static_cast<size_t>(i)].id);
  }

  // Short pieces (most words): keep the rank of each adjacent pair in the
  // symbol and rescan that small array for the lowest each round; after a
  // merge only the two pairs around it are looked up again. Cheaper than a
  // heap below a dozen symbols.
  static constexpr size_t kSmallPiece = 12;
  void merge_small(std::vector<Symbol>& syms) const {
    auto pair_rank = [&](int left) {
      const Symbol& l = syms[static_cast<size_t>(left)];
      if (l.next < 0) return kNoMerge;
      const Merge* m = find_merge(l.id, syms[static_cast<size_t>(l.next)].id);
      return m == nullptr ? kNoMerge : m->rank;
    };
    for (int i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) syms[static_cast<size_t>(i)].rank = pair_rank(i);
    for (;;) {
      int best = -1;
      int32_t best_rank = kNoMerge;
      for (int i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
        if (syms[static_cast<size_t>(i)].rank < best_rank) {
          best = i;
          best_rank = syms[static_cast<size_t>(i)].rank;
        }
      }
      if (best < 0) return;
      const Symbol& l = syms[static_cast<size_t>(best)];
      join(syms, best, find_merge(l.id, syms[static_cast<size_t>(l.next)].id)->result);
      syms[static_cast<size_t>(best)].rank = pair_rank(best);
      const int prev = syms[static_cast<size_t>(best)].prev;
      if (prev >= 0) syms[static_cast<size_t>(prev)].rank = pair_rank(prev);
    }
  }

  static void join(std::vector<Symbol>& syms, int left, TokenId result) {
    Symbol& l = syms[static_cast<size_t>(left)];
    Symbol& r = syms[static_cast<size_t>(l.next)];
    l.id = result;
    r.id = kNoToken;
    l.next = r.next;
    if (l.next >= 0) syms[static_cast<size_t>(l.next)].prev = left;
  }

  // Long pieces: a min-heap of candidate merges (rank, position); entries
  // made stale by an earlier merge are skipped when popped.
  void merge_heap(std::vector<Symbol>& syms, std::vector<Candidate>& heap) const {
    heap.clear();
    auto try_add = [&](int left) {
      if (left < 0) return;
      const int right = syms[static_cast<size_t>(left)].next;
      if (right < 0) return;
      const TokenId l = syms[static_cast<size_t>(left)].id, r = syms[static_cast<size_t>(right)].id;
      if (const Merge* m = find_merge(l, r)) {
        heap.push_back({m->rank, left, l, r});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
    };
    for (size_t i = 0; i + 1 < syms.size(); ++i) try_add(static_cast<int>(i));
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      const Candidate c = heap.back();
      heap.pop_back();
      const Symbol& l = syms[static_cast<size_t>(c.left)];
      if (l.id != c.left_id || l.next < 0) continue;  // stale: left changed or was absorbed
      if (syms[static_cast<size_t>(l.next)].id != c.right_id) continue;
      join(syms, c.left, find_merge(c.left_id, c.right_id)->result);
      try_add(syms[static_cast<size_t>(c.left)].prev);
      try_add(c.left);
    }
  }

  const Vocab& vocab_;
  std::unique_ptr<PreTokenizer> pre_;
  bool nfc_;
  bool ignore_merges_;
  std::array<TokenId, 256> byte_ids_{};
  MergeTable merges_;
};

}  // namespace

Result<std::unique_ptr<Model>> make_bpe_model(const Vocab& vocab) {
  auto pre = PreTokenizer::create(vocab.pre);
  if (!pre) return pre.status();
  auto model = std::make_unique<BpeModel>(vocab, std::move(*pre));
  TANDEM_RETURN_IF_ERROR(model->init());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace tandem::tokenizer

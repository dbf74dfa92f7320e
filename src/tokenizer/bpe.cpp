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
#include <queue>

namespace tandem::tokenizer {
namespace {

struct Merge {
  int32_t rank;
  TokenId result;
};

uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

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
      merges_.emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), result});
    }
    return {};
  }

  void encode_fragment(std::string_view text, bool /*after_special*/, std::vector<TokenId>& out) const override {
    std::string normalized;
    if (nfc_) {
      normalized = to_nfc(text);
      text = normalized;
    }
    // The regexes need valid UTF-8: split into valid runs; each invalid byte
    // is a piece of its own (byte-level BPE can still encode it).
    std::vector<std::string_view> pieces;
    size_t run = 0, pos = 0;
    while (pos < text.size()) {
      size_t len = 0;
      if (utf8_decode(text, pos, &len) == kInvalidCodepoint) {
        pre_->split(text.substr(run, pos - run), pieces);
        pieces.push_back(text.substr(pos, 1));
        run = pos + 1;
      }
      pos += len;
    }
    pre_->split(text.substr(run), pieces);
    std::string scratch;
    for (std::string_view piece : pieces) encode_piece(piece, scratch, out);
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
  };
  struct Candidate {
    int32_t rank;
    int left;
    TokenId left_id, right_id;
    bool operator>(const Candidate& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };

  void encode_piece(std::string_view piece, std::string& scratch, std::vector<TokenId>& out) const {
    if (ignore_merges_) {
      scratch.clear();
      byte_level_encode(piece, scratch);
      const TokenId whole = vocab_.find(scratch);
      if (whole != kNoToken) {
        out.push_back(whole);
        return;
      }
    }
    std::vector<Symbol> syms;
    syms.reserve(piece.size());
    for (char c : piece) {
      TokenId id = byte_ids_[static_cast<uint8_t>(c)];
      if (id == kNoToken) id = vocab_.unk;
      if (id == kNoToken) continue;  // a vocabulary without this byte and without unk: drop it
      const int idx = static_cast<int>(syms.size());
      syms.push_back({id, idx - 1, -1});
      if (idx > 0) syms[static_cast<size_t>(idx) - 1].next = idx;
    }
    if (syms.size() > 1) apply_merges(syms);
    for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
      out.push_back(syms[static_cast<size_t>(i)].id);
    }
  }

  void apply_merges(std::vector<Symbol>& syms) const {
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    auto try_add = [&](int left) {
      if (left < 0) return;
      const int right = syms[static_cast<size_t>(left)].next;
      if (right < 0) return;
      const TokenId l = syms[static_cast<size_t>(left)].id, r = syms[static_cast<size_t>(right)].id;
      auto it = merges_.find(pair_key(l, r));
      if (it != merges_.end()) queue.push({it->second.rank, left, l, r});
    };
    for (size_t i = 0; i + 1 < syms.size(); ++i) try_add(static_cast<int>(i));
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& l = syms[static_cast<size_t>(c.left)];
      if (l.id != c.left_id || l.next < 0) continue;  // stale: left changed or was absorbed
      Symbol& r = syms[static_cast<size_t>(l.next)];
      if (r.id != c.right_id) continue;
      l.id = merges_.at(pair_key(c.left_id, c.right_id)).result;
      r.id = kNoToken;
      l.next = r.next;
      if (l.next >= 0) syms[static_cast<size_t>(l.next)].prev = c.left;
      try_add(l.prev);
      try_add(c.left);
    }
  }

  const Vocab& vocab_;
  std::unique_ptr<PreTokenizer> pre_;
  bool nfc_;
  bool ignore_merges_;
  std::array<TokenId, 256> byte_ids_{};
  std::unordered_map<uint64_t, Merge> merges_;
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

// SentencePiece BPE (tokenizer.ggml.model = "llama"), as llama.cpp and
// sentencepiece run it:
//   1. prepend a space (add_space_prefix) at the start of the text and after
//      every special token; replace spaces with U+2581 "▁";
//   2. start from single UTF-8 characters;
//   3. repeatedly merge the adjacent pair whose concatenation is a token with
//      the highest score (ties: leftmost);
//   4. a final symbol that is not a token becomes <0xXX> byte tokens (or unk).
// With tokenizer.ggml.merges (imported from a Hugging Face tokenizer.json of
// this style, hf_import.h), step 3 follows the merge list as HF BPE does:
// only listed pairs merge, the lowest rank first (ties: leftmost), and
// consecutive unknown symbols give one unk (HF's fuse_unk).
#include "core/utf8.h"
#include "tokenizer/model.h"

#include <array>
#include <charconv>
#include <queue>
#include <unordered_map>

namespace tandem::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

class SpmModel final : public Model {
 public:
  explicit SpmModel(const Vocab& vocab) : vocab_(vocab) {
    for (int b = 0; b < 256; ++b) byte_ids_[b] = vocab.find(fmt::format("<0x{:02X}>", b));
    for (size_t r = 0; r < vocab.merges.size(); ++r) merge_rank_.emplace(vocab.merges[r], static_cast<int>(r));
  }

  void encode_fragment(std::string_view text, bool after_special, std::vector<TokenId>& out) const override {
    std::string s;
    s.reserve(text.size() * 3 + 3);
    if (vocab_.add_space_prefix && after_special) s += kSpace;
    for (char c : text) {
      if (c == ' ') {
        s += kSpace;
      } else {
        s += c;
      }
    }
    tokenize(s, out);
  }

  std::string token_bytes(TokenId id) const override {
    const auto i = static_cast<size_t>(id);
    const std::string& t = vocab_.tokens[i];
    if (vocab_.types[i] == TokenType::kByte && t.size() == 6 && t.starts_with("<0x") && t[5] == '>') {
      unsigned byte = 0;
      const auto [end, ec] = std::from_chars(t.data() + 3, t.data() + 5, byte, 16);
      if (ec == std::errc() && end == t.data() + 5) return std::string(1, static_cast<char>(byte));
    }
    std::string out;
    out.reserve(t.size());
    for (size_t pos = 0; pos < t.size();) {
      if (t.compare(pos, kSpace.size(), kSpace) == 0) {
        out += ' ';
        pos += kSpace.size();
      } else {
        out += t[pos++];
      }
    }
    return out;
  }

 private:
  struct Symbol {
    size_t start = 0, len = 0;  // byte range in the escaped text
    int prev = -1, next = -1;
  };
  struct Bigram {
    float score;
    int left;
    size_t len;  // combined length when queued, to detect stale entries
    bool operator<(const Bigram& o) const {
      return score < o.score || (score == o.score && left > o.left);  // max score, then leftmost
    }
  };

  void tokenize(const std::string& s, std::vector<TokenId>& out) const {
    std::vector<Symbol> syms;
    for (size_t pos = 0; pos < s.size();) {
      size_t len = 0;
      utf8_decode(s, pos, &len);  // invalid bytes become 1-byte symbols
      const int idx = static_cast<int>(syms.size());
      syms.push_back({pos, len, idx - 1, -1});
      if (idx > 0) syms[static_cast<size_t>(idx) - 1].next = idx;
      pos += len;
    }
    std::priority_queue<Bigram> queue;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = syms[static_cast<size_t>(left)];
      const Symbol& r = syms[static_cast<size_t>(right)];
      const std::string_view text(s.data() + l.start, l.len + r.len);
      const TokenId id = vocab_.find(text);
      if (id == kNoToken) return;
      if (merge_rank_.empty()) {
        queue.push({vocab_.scores[static_cast<size_t>(id)], left, text.size()});
        return;
      }
      std::string pair(s.data() + l.start, l.len);
      pair += ' ';
      pair.append(s.data() + r.start, r.len);
      const auto rank = merge_rank_.find(pair);
      if (rank != merge_rank_.end()) queue.push({-static_cast<float>(rank->second), left, text.size()});
    };
    for (size_t i = 1; i < syms.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

    while (!queue.empty()) {
      const Bigram top = queue.top();
      queue.pop();
      Symbol& l = syms[static_cast<size_t>(top.left)];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = syms[static_cast<size_t>(l.next)];
      if (l.len + r.len != top.len) continue;  // one side changed since queued
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (l.next >= 0) syms[static_cast<size_t>(l.next)].prev = top.left;
      try_add(l.prev, top.left);
      try_add(top.left, l.next);
    }

    bool last_unknown = false;  // the previous symbol became unk
    for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
      const Symbol& sym = syms[static_cast<size_t>(i)];
      const std::string_view text(s.data() + sym.start, sym.len);
      const TokenId id = vocab_.find(text);
      const bool fuse = last_unknown && !merge_rank_.empty();
      last_unknown = false;
      if (id != kNoToken) {
        out.push_back(id);
        continue;
      }
      for (char c : text) {
        const TokenId b = byte_ids_[static_cast<uint8_t>(c)];
        if (b != kNoToken) {
          out.push_back(b);
        } else if (vocab_.unk != kNoToken) {
          if (!fuse) out.push_back(vocab_.unk);
          last_unknown = true;
          break;  // one unk for the whole unknown symbol, as sentencepiece does
        }
      }
    }
  }

  const Vocab& vocab_;
  std::array<TokenId, 256> byte_ids_{};
  std::unordered_map<std::string, int> merge_rank_;  // "left right" -> rank; empty: merge by score
};

}  // namespace

std::unique_ptr<Model> make_spm_model(const Vocab& vocab) { return std::make_unique<SpmModel>(vocab); }

}  // namespace tandem::tokenizer

// Bench prompts: made-up stories from a small word list (deterministic,
// in any tokenizer's vocabulary), or the user's own from a file.
#include "cli/bench/bench.h"
#include "core/mapped_file.h"

#include <fmt/format.h>

#include <random>

namespace tandem::bench {
namespace {

constexpr const char* kNames[] = {"Lily", "Tom", "Mia", "Ben", "Sara", "Max", "Anna", "Sam", "Zoe", "Leo"};
constexpr const char* kThings[] = {"ball", "kite", "boat", "tree", "cake",  "dog",  "cat", "box", "hat",  "bird",
                                   "car",  "book", "cup",  "drum", "shell", "rock", "map", "key", "bell", "lamp"};
constexpr const char* kPlaces[] = {"park",   "garden", "beach", "forest", "kitchen",
                                   "school", "river",  "hill",  "town",   "farm"};
constexpr const char* kVerbs[] = {"found", "saw",   "liked",   "made",   "lost", "took",
                                  "gave",  "built", "painted", "shared", "hid",  "carried"};
constexpr const char* kFeelings[] = {"happy", "sad", "brave", "curious", "tired", "excited", "calm", "proud"};

template <size_t N>
const char* pick(std::mt19937& rng, const char* const (&words)[N]) {
  return words[rng() % N];
}

std::string sentence(std::mt19937& rng) {
  switch (rng() % 5) {
    case 0:
      return fmt::format("{} {} a {} in the {}.", pick(rng, kNames), pick(rng, kVerbs), pick(rng, kThings),
                         pick(rng, kPlaces));
    case 1:
      return fmt::format("One day {} felt {} and went to the {}.", pick(rng, kNames), pick(rng, kFeelings),
                         pick(rng, kPlaces));
    case 2: return fmt::format("\"Look at my {}!\" said {}.", pick(rng, kThings), pick(rng, kNames));
    case 3:
      return fmt::format("The {} was big and the {} was small, so {} {} them both.", pick(rng, kThings),
                         pick(rng, kThings), pick(rng, kNames), pick(rng, kVerbs));
    default:
      return fmt::format("{} and {} were {} all day.", pick(rng, kNames), pick(rng, kNames), pick(rng, kFeelings));
  }
}

// About WORDS words of story, seeded.
std::string story(uint32_t seed, int words) {
  std::mt19937 rng(seed);
  std::string out = "Once upon a time,";
  int n = 4;
  while (n < words) {
    const std::string s = sentence(rng);
    out += ' ';
    out += s;
    n += static_cast<int>(std::count(s.begin(), s.end(), ' ')) + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> builtin_prompts(int n) {
  std::vector<std::string> out;
  constexpr int kWords[] = {40, 250, 800};  // short, medium, long
  for (int i = 0; i < n; ++i) out.push_back(story(static_cast<uint32_t>(1000 + i), kWords[i % 3]));
  return out;
}

Result<std::vector<std::string>> load_prompts(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.status();
  std::vector<std::string> out;
  const bool jsonl = path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  size_t line_no = 0;
  std::string block;
  auto flush_block = [&] {
    while (!block.empty() && block.back() == '\n') block.pop_back();
    if (!block.empty()) out.push_back(block);
    block.clear();
  };
  for (size_t at = 0; at <= text->size();) {
    size_t eol = text->find('\n', at);
    if (eol == std::string::npos) eol = text->size();
    const std::string line = text->substr(at, eol - at);
    ++line_no;
    at = eol + 1;
    if (jsonl) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string()) {
        return Status::errorf("{}:{}: expected a JSON object with a \"prompt\" string", path, line_no);
      }
      out.push_back(j["prompt"]);
    } else if (line.find_first_not_of(" \t\r") == std::string::npos) {
      flush_block();
    } else {
      block.append(line);
      block.push_back('\n');
    }
    if (eol == text->size()) break;
  }
  flush_block();
  if (out.empty()) return Status::errorf("{}: no prompts in it", path);
  return out;
}

std::string sized_prompt(Driver& d, int64_t tokens, const std::string& tag) {
  uint32_t seed = 7;
  for (char c : tag) seed = seed * 31 + static_cast<unsigned char>(c);
  // ~1.3 tokens a word for English; counted and trimmed when the driver can.
  std::string text = tag;
  text.push_back(' ');
  text.append(story(seed, static_cast<int>(static_cast<double>(tokens) / 1.3) + 8));
  if (!d.count_tokens(text)) return text;
  while (*d.count_tokens(text) < tokens) {
    text.push_back(' ');
    text.append(story(seed++, static_cast<int>(tokens / 4) + 16));
  }
  // The longest prefix with at most TOKENS tokens (counts grow with the
  // prefix): a binary search over its length.
  size_t lo = tag.size(), hi = text.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    if (*d.count_tokens(text.substr(0, mid)) <= tokens) lo = mid;
    else hi = mid - 1;
  }
  return text.substr(0, lo);
}

}  // namespace tandem::bench

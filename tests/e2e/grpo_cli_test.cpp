// End-to-end: the real `grpo` binary — help for every command, exit codes, config errors with line and column,
// missing model and unwritable run folders, pretrain → train on a tiny config with the run folder checked, and
// Ctrl-C leaving a usable checkpoint, `grpo grade` with code, plug-in and remote graders from a config, and
// `grpo tokenize` / `grpo score` on real tokenizer files and a checkpoint.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "policy/checkpoint.h"
#include "tests/e2e/cli_harness.h"

namespace {
namespace fs = std::filesystem;

using grpo::testing::contains;
using grpo::testing::Result;
Result run(const std::string& args) { return grpo::testing::run_grpo(args); }

class GrpoCli : public ::testing::Test {
 protected:
  static fs::path work() { return grpo::testing::scratch_dir(); }
  static std::string write(const std::string& name, const std::string& text) {
    const auto path = work() / name;
    std::ofstream(path) << text;
    return path.string();
  }
  // A tiny base checkpoint, made once for the suite by the real `grpo pretrain`.
  static const std::string& base_model() {
    static const std::string path = [] {
      const auto out = (work() / "base").string();
      const auto r = run("pretrain --output " + out + " " + tiny_model_flags() +
                         " --set pretrain.steps=30 --set pretrain.batch_size=8 --set eval.num_problems=8 --set logging.progress=QUIET");
      EXPECT_EQ(r.exit_code, 0) << r.output;
      EXPECT_TRUE(contains(r.output, "\"accuracy\"")) << r.output;
      return out;
    }();
    return path;
  }
  static std::string tiny_model_flags() {
    return "--set pretrain.model.hidden_size=32 --set pretrain.model.num_hidden_layers=1 --set pretrain.model.num_attention_heads=2 "
           "--set pretrain.model.num_key_value_heads=1 --set pretrain.model.intermediate_size=64";
  }
  static std::string tiny_train_flags(const std::string& name, int steps) {
    return "--set model.path=" + base_model() + " --set output_dir=" + work().string() + " --set name=" + name +
           " --set steps=" + std::to_string(steps) +
           " --set rollout.prompts_per_step=2 --set rollout.group_size=4 --set rollout.max_new_tokens=24"
           " --set eval.num_problems=6 --set eval.every_steps=0 --set checkpoint.every_steps=2 --set logging.progress=LINES"
           " --set optimizer.lr=1e-3";
  }
};

TEST_F(GrpoCli, HelpForEveryCommandAndExitCodes) {
  const auto top = run("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* command : {"train", "pretrain", "eval", "generate", "grade", "grader-server", "tokenize", "score"}) {
    EXPECT_TRUE(contains(top.output, command)) << top.output;
    const auto help = run(std::string(command) + " --help");
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_TRUE(contains(help.output, "Usage") || contains(help.output, "usage")) << help.output;
  }
  EXPECT_TRUE(contains(run("eval --help").output, "--num-problems"));
  EXPECT_TRUE(contains(run("generate --help").output, "--prompt"));
  EXPECT_EQ(run("").exit_code, 2);
  EXPECT_EQ(run("frobnicate").exit_code, 2);
  const auto typo = run("eval --modle x");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_TRUE(contains(typo.output, "--model")) << typo.output;
}

// One output line per input line, in order; a malformed line is answered in place and makes the exit code 1.
TEST_F(GrpoCli, GradeAnswersJsonLinesInOrder) {
  const auto good = write("good.jsonl",
                          "{\"gold\": \"\\\\frac{1}{2}\", \"pred\": \"0.5\"}\n"
                          "{\"gold\": \"3\", \"pred\": \"4\"}\n"
                          "{\"completion\": \"<think>2+2=4</think><answer>4</answer>\", \"reference\": \"4\", "
                          "\"grader\": \"accuracy\"}\n");
  auto r = run("grade --input " + good);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("{")) out.push_back(nlohmann::json::parse(line));  // the summary on stderr is not JSON
  }
  EXPECT_TRUE(contains(r.output, "3 lines: 2 answer pairs (1 equal), 1 graded")) << r.output;
  ASSERT_EQ(out.size(), 3u) << r.output;
  EXPECT_EQ(out[0]["equal"], true);
  EXPECT_EQ(out[1]["equal"], false);
  EXPECT_EQ(out[2]["score"], 1.0);

  const auto bad = write("bad.jsonl", "{\"gold\": \"1\", \"pred\": \"1\"}\nnot json\n");
  r = run("grade --input " + bad);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "\"line\":2")) << r.output;
  EXPECT_EQ(run("grade --input " + (work() / "missing.jsonl").string()).exit_code, 2);
  EXPECT_EQ(run("grade").exit_code, 2);
}

std::vector<nlohmann::json> json_lines(const std::string& output) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("{")) out.push_back(nlohmann::json::parse(line));  // summaries on stderr are not JSON
  }
  return out;
}

// The shared fixture's reference encodings, reproduced by the binary for the Qwen3 and DeepSeek-V3 tokenizers.
TEST_F(GrpoCli, TokenizeReproducesTheReferenceEncodings) {
  const fs::path fixtures = fs::path(GRPO_SHARED_DIR) / "fixtures/tokenizers";
  if (!fs::exists(fixtures)) GTEST_SKIP() << "shared tokenizer fixtures not found at " << fixtures << " (they live beside the checkout in CI)";
  std::ifstream cases(fixtures / "encode_cases.jsonl");
  std::vector<nlohmann::json> expected;
  std::string input;
  for (std::string line; std::getline(cases, line);) {
    if (line.empty()) continue;
    expected.push_back(nlohmann::json::parse(line));
    input += nlohmann::json{{"text", expected.back()["text"]}}.dump() + "\n";
  }
  const auto file = write("texts.jsonl", input);
  for (const char* name : {"qwen3", "deepseek_v3"}) {
    const auto r = run("tokenize --tokenizer " + (fixtures / name).string() + " --input " + file);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto out = json_lines(r.output);
    ASSERT_EQ(out.size(), expected.size()) << name;
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i]["ids"], expected[i][name]) << name << " line " << i + 1;
  }
  EXPECT_EQ(run("tokenize --tokenizer " + (work() / "nowhere").string() + " --input " + file).exit_code, 2);
}

// Log-probs of ids and of text from a checkpoint; a bad line is answered in place and the exit code is 1.
TEST_F(GrpoCli, ScoreWritesLogprobsPerToken) {
  const auto file = write("score.jsonl", "{\"ids\": [10, 20, 30, 40]}\n{\"text\": \"<think>1+2</think>\"}\n{\"ids\": [1, 99999]}\n{\"ids\": [7]}\n");
  const auto r = run("score --model " + base_model() + " --input " + file);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const auto out = json_lines(r.output);
  ASSERT_EQ(out.size(), 4u) << r.output;
  EXPECT_EQ(out[0]["logprobs"].size(), 3u);
  for (const auto& value : out[0]["logprobs"]) EXPECT_LT(value.get<double>(), 0.0);
  EXPECT_EQ(out[1]["logprobs"].size() + 1, out[1]["ids"].size());
  EXPECT_EQ(out[2]["line"], 3);
  EXPECT_TRUE(contains(out[2]["error"].get<std::string>(), "outside the vocabulary")) << out[2];
  EXPECT_TRUE(out[3]["logprobs"].empty());
  EXPECT_EQ(run("score --model " + base_model() + " --input " + file + " --dtype float64").exit_code, 2);
}

// A user's reward set-up checked on a file of rows before training: the code grader in the sandbox (per-test
// verdicts), the example plug-in from a config, and a `grpo grader-server` reached through a remote grader entry.
TEST_F(GrpoCli, GradeWithCodePluginAndRemoteGradersFromAConfig) {
  // The server prints its port on stderr; `exec` keeps the shell's pid, printed first, for the kill at the end.
  FILE* server = ::popen(("sh -c 'echo $$; exec " + std::string(GRPO_BINARY) +
                          " grader-server --port 0 --graders math' 2>&1").c_str(), "r");
  ASSERT_NE(server, nullptr);
  std::array<char, 512> line{};
  ASSERT_NE(std::fgets(line.data(), line.size(), server), nullptr);
  const int server_pid = std::atoi(line.data());
  ASSERT_NE(std::fgets(line.data(), line.size(), server), nullptr);
  const std::string listening = line.data();
  ASSERT_TRUE(contains(listening, "listening on 127.0.0.1:")) << listening;
  const std::string port = listening.substr(listening.rfind(':') + 1, listening.find_last_not_of(" \n") - listening.rfind(':'));

  const auto config = write("graders.textproto",
                            "reward {\n"
                            "  graders { remote { address: \"127.0.0.1:" + port + "\" grader: \"math\" timeout_ms: 5000 } }\n"
                            "  graders { plugin { path: \"" GRPO_KEYWORD_GRADER_PLUGIN "\" } }\n"
                            "  graders { name: \"code\" code { cpu_seconds: 1 wall_seconds: 3 } }\n"
                            "}\n");
  const auto rows = write("rows.jsonl",
                          "{\"completion\": \"\\\\boxed{\\\\frac{1}{2}}\", \"reference\": \"0.5\", \"grader\": \"remote:math\"}\n"
                          "{\"completion\": \"apples and pears\", \"reference\": \"apples,pears\", \"grader\": \"keyword\"}\n"
                          "{\"completion\": \"```python\\nprint(int(input()) * 2)\\n```\", "
                          "\"reference\": \"{\\\"inputs\\\": [\\\"2\\\", \\\"5\\\"], \\\"outputs\\\": [\\\"4\\\", \\\"11\\\"]}\", "
                          "\"grader\": \"code\"}\n");
  const auto r = run("grade --input " + rows + " --config " + config);
  ::kill(server_pid, SIGTERM);
  ::pclose(server);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<nlohmann::json> out;
  std::istringstream lines(r.output);
  for (std::string text; std::getline(lines, text);) {
    if (text.starts_with("{")) out.push_back(nlohmann::json::parse(text));
  }
  ASSERT_EQ(out.size(), 3u) << r.output;
  EXPECT_EQ(out[0]["score"], 1.0) << out[0].dump();
  EXPECT_EQ(out[0]["extracted"], "\\frac{1}{2}");
  EXPECT_EQ(out[1]["score"], 1.0) << out[1].dump();
  EXPECT_EQ(out[2]["score"], 0.0) << out[2].dump();
  ASSERT_EQ(out[2]["tests"].size(), 2u) << out[2].dump();
  EXPECT_EQ(out[2]["tests"][0]["verdict"], "ok");
  EXPECT_EQ(out[2]["tests"][1]["verdict"], "wrong_answer");
  EXPECT_EQ(out[2]["reason"], "test 2 of 2: wrong_answer: line 1: expected '11', got '10'");

  // A config whose plug-in does not load is a config error at its location, before any line is graded.
  const auto broken = write("broken.textproto", "reward {\n  graders { plugin { path: \"/nonexistent/x.so\" } }\n}\n");
  const auto failed = run("grade --input " + rows + " --config " + broken);
  EXPECT_EQ(failed.exit_code, 2) << failed.output;
  EXPECT_TRUE(contains(failed.output, "broken.textproto:2:3: reward.graders[0]")) << failed.output;
  EXPECT_TRUE(contains(failed.output, "/nonexistent/x.so")) << failed.output;
}

TEST_F(GrpoCli, ConfigErrorsNameFileLineAndColumn) {
  const auto unknown = write("unknown.textproto", "name: \"x\"\nrollout {\n  group_sizee: 4\n}\n");
  auto r = run("train " + unknown);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown.textproto:3:")) << r.output;
  EXPECT_TRUE(contains(r.output, "group_size")) << r.output;  // among the valid choices

  const auto range = write("range.textproto", "rollout { group_size: 1 }\n");
  r = run("train " + range);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "range.textproto:1:")) << r.output;

  r = run("train --set rollout.group_size=eight");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "rollout.group_size")) << r.output;

  r = run("train " + (work() / "does_not_exist.textproto").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "does_not_exist.textproto")) << r.output;
}

TEST_F(GrpoCli, MissingModelAndUnwritableRunFolderAreClearErrors) {
  auto r = run("train --set model.path=" + (work() / "no_model").string() + " --set output_dir=" + work().string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "no_model does not exist")) << r.output;

  const auto file = write("a_file", "not a folder");
  r = run("train --set model.path=" + base_model() + " --set output_dir=" + file);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "run folder")) << r.output;

  r = run("eval --model " + (work() / "no_model").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "does not exist")) << r.output;
}

TEST_F(GrpoCli, TrainWritesTheRunFolder) {
  const auto r = run("train " + tiny_train_flags("tiny", 3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto dir = work() / "tiny";
  std::ifstream config_file(dir / "config.textproto");
  std::stringstream config;
  config << config_file.rdbuf();
  EXPECT_TRUE(contains(config.str(), "group_size: 4")) << config.str();
  EXPECT_TRUE(contains(r.output, "group_size: 4"));  // the resolved config is printed

  std::ifstream metrics(dir / "metrics.jsonl");
  std::vector<nlohmann::json> steps, evals;
  for (std::string line; std::getline(metrics, line);) {
    const auto row = nlohmann::json::parse(line);
    (row.contains("eval_accuracy") ? evals : steps).push_back(row);
  }
  ASSERT_EQ(steps.size(), 3u);
  for (const char* key : {"step", "reward_mean", "accuracy", "format_rate", "kl", "loss", "entropy", "completion_tokens_mean",
                          "rollout_tokens_per_s", "time_s", "time_rollout_s", "time_reward_s", "time_update_s"}) {
    EXPECT_TRUE(steps[0].contains(key)) << key;
  }
  EXPECT_EQ(steps[2]["step"], 3);
  ASSERT_EQ(evals.size(), 2u);
  EXPECT_EQ(evals[0]["step"], 0);
  EXPECT_EQ(evals[1]["step"], 3);
  for (const auto& e : evals) {
    EXPECT_GE(e["eval_accuracy"].get<double>(), 0.0);
    EXPECT_LE(e["eval_format_rate"].get<double>(), 1.0);
  }
  EXPECT_TRUE(fs::exists(dir / "checkpoints" / "step-000002" / "model.safetensors"));
  EXPECT_TRUE(contains(r.output, "held-out greedy accuracy")) << r.output;

  const auto eval = run("eval --model " + (dir / "final").string() + " --num-problems 5 --seed 3");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const auto line = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
  EXPECT_EQ(line["num_problems"], 5);
  EXPECT_TRUE(line.contains("accuracy") && line.contains("format_rate"));

  const auto generated = run("generate --model " + (dir / "final").string() + " --prompt 2+3*4 --num-samples 2 --temperature 1 --max-new-tokens 8");
  ASSERT_EQ(generated.exit_code, 0) << generated.output;
  EXPECT_TRUE(contains(generated.output, "\"completion\"")) << generated.output;
}

// One metrics row per step (evaluation rows left out).
std::vector<nlohmann::json> step_rows(const fs::path& dir) {
  std::ifstream metrics(dir / "metrics.jsonl");
  std::vector<nlohmann::json> steps;
  for (std::string line; std::getline(metrics, line);) {
    const auto row = nlohmann::json::parse(line);
    if (!row.contains("eval_accuracy")) steps.push_back(row);
  }
  return steps;
}

TEST_F(GrpoCli, LocalRolloutWorkersTrainLikeTheInProcessEngine) {
  // Two `grpo rollout-worker` processes started by the trainer generate the same samples as the trainer's own
  // engine (every prompt carries its seed), so the rewards of every step are identical.
  const auto inline_run = run("train " + tiny_train_flags("inline", 3));
  ASSERT_EQ(inline_run.exit_code, 0) << inline_run.output;
  const auto workers_run = run("train " + tiny_train_flags("workers", 3) + " --set rollout.local_workers=2");
  ASSERT_EQ(workers_run.exit_code, 0) << workers_run.output;
  EXPECT_TRUE(contains(workers_run.output, "2 local rollout workers (127.0.0.1:")) << workers_run.output;
  const auto a = step_rows(work() / "inline"), b = step_rows(work() / "workers");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["reward_mean"], b[i]["reward_mean"]) << "step " << i + 1;
    EXPECT_EQ(a[i]["completion_tokens_mean"], b[i]["completion_tokens_mean"]) << "step " << i + 1;
    EXPECT_NEAR(a[i]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
    EXPECT_EQ(b[i]["rollout_workers_failed"], 0);
    EXPECT_TRUE(b[i].contains("time_sync_s"));
  }
  EXPECT_TRUE(fs::exists(work() / "workers" / "rollout-worker-0.log"));
  // Listed workers need the token file, and a missing one is a config error naming the field.
  const auto no_token = run("train " + tiny_train_flags("no_token", 1) + " --set rollout.workers=127.0.0.1:7001");
  EXPECT_EQ(no_token.exit_code, 2) << no_token.output;
  EXPECT_TRUE(contains(no_token.output, "rollout.worker_token_file")) << no_token.output;
  const auto unreachable = run("train " + tiny_train_flags("unreachable", 1) + " --set rollout.workers=127.0.0.1:1 --set rollout.worker_token_file=" +
                               write("token", "abc\n") + " --set rollout.worker_connect_timeout_ms=500");
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.output;
  EXPECT_TRUE(contains(unreachable.output, "no rollout worker could be reached")) << unreachable.output;
}

TEST_F(GrpoCli, LocalRolloutWorkersTakeWeightsByBroadcastAndTrainTheSame) {
  // The same run with weights broadcast over a Gloo group of the trainer and its two worker processes: the same
  // rewards and losses as chunks over TCP (the bytes are the same).
  const auto tcp_run = run("train " + tiny_train_flags("tcp", 3) + " --set rollout.local_workers=2");
  ASSERT_EQ(tcp_run.exit_code, 0) << tcp_run.output;
  const auto broadcast_run =
      run("train " + tiny_train_flags("broadcast", 3) + " --set rollout.local_workers=2 --set rollout.weight_transport=C10D_BROADCAST");
  ASSERT_EQ(broadcast_run.exit_code, 0) << broadcast_run.output;
  EXPECT_TRUE(contains(broadcast_run.output, "weights by broadcast (Gloo, 3 members, rendezvous 127.0.0.1:")) << broadcast_run.output;
  const auto a = step_rows(work() / "tcp"), b = step_rows(work() / "broadcast");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["reward_mean"], b[i]["reward_mean"]) << "step " << i + 1;
    EXPECT_NEAR(a[i]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
    EXPECT_EQ(b[i]["rollout_workers_failed"], 0);
  }
  // bfloat16 weights on the wire: the run trains, and says so.
  const auto bf16_run = run("train " + tiny_train_flags("bf16", 2) +
                            " --set rollout.local_workers=1 --set rollout.weight_transport=C10D_BROADCAST --set rollout.weight_sync_dtype=bfloat16");
  ASSERT_EQ(bf16_run.exit_code, 0) << bf16_run.output;
  EXPECT_TRUE(contains(bf16_run.output, "in BFloat16")) << bf16_run.output;
  const auto bad = run("train " + tiny_train_flags("bad_dtype", 1) + " --set rollout.weight_sync_dtype=int8");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(contains(bad.output, "rollout.weight_sync_dtype")) << bad.output;
}

TEST_F(GrpoCli, LocalRolloutWorkersServeOverlapWithDynamicSampling) {
  // Overlap mode with dynamic sampling keeps two batches in flight (the next step's and an extra round); the
  // workers serve both, taking turns, and give the samples the in-process engine gives.
  const std::string flags = " --set rollout.overlap=true --set grpo.dynamic_sampling=true";
  const auto inline_run = run("train " + tiny_train_flags("overlap_inline", 4) + flags);
  ASSERT_EQ(inline_run.exit_code, 0) << inline_run.output;
  const auto workers_run = run("train " + tiny_train_flags("overlap_workers", 4) + flags + " --set rollout.local_workers=2");
  ASSERT_EQ(workers_run.exit_code, 0) << workers_run.output;
  const auto a = step_rows(work() / "overlap_inline"), b = step_rows(work() / "overlap_workers");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  int extra_rounds = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["reward_mean"], b[i]["reward_mean"]) << "step " << i + 1;
    EXPECT_EQ(a[i]["dynamic_sampling_rounds"], b[i]["dynamic_sampling_rounds"]) << "step " << i + 1;
    EXPECT_EQ(b[i]["rollout_workers_failed"], 0) << "step " << i + 1;
    extra_rounds += b[i].value("dynamic_sampling_rounds", 0);
  }
  EXPECT_GT(extra_rounds, 0) << "some step must have sampled again while the next batch was in flight";
}

TEST_F(GrpoCli, OverlapModeSamplesOneStepOffPolicy) {
  const auto r = run("train " + tiny_train_flags("overlap", 4) + " --set rollout.overlap=true");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto steps = step_rows(work() / "overlap");
  ASSERT_EQ(steps.size(), 4u);
  // Step 1 and 2 are generated by the initial weights (step 2's rollout starts before step 1's update); from then on
  // each batch is one update old.
  EXPECT_EQ(steps[0]["rollout_staleness"], 0.0);
  for (std::size_t i = 1; i < steps.size(); ++i) EXPECT_EQ(steps[i]["rollout_staleness"], 1.0) << "step " << i + 1;
  for (const auto& step : steps) EXPECT_TRUE(std::isfinite(step["loss"].get<double>()));
  EXPECT_TRUE(fs::exists(work() / "overlap" / "final" / "model.safetensors"));
}

// Every metric of a step row that does not measure time.
nlohmann::json without_timings(nlohmann::json row) {
  for (auto it = row.begin(); it != row.end();) {
    const auto& key = it.key();
    if (key.starts_with("time_") || key.starts_with("share_") || key == "rollout_tokens_per_s") {
      it = row.erase(it);
    } else {
      ++it;
    }
  }
  return row;
}

TEST_F(GrpoCli, KilledWithSigkillAndResumedGivesTheUninterruptedMetrics) {
  // The uninterrupted run, then the same run killed (SIGKILL, no chance to save) after step 7 and resumed from its
  // newest checkpoint (step 6): every step after 6 must log exactly the same metrics, timings aside. The flags
  // exercise the state a resume must restore: Adam moments, the data stream, the LR schedule, minibatch shuffling,
  // and a reference that is reset during the run.
  const std::string flags = " --set checkpoint.every_steps=3 --set checkpoint.keep_last=2 --set optimizer.schedule=COSINE"
                            " --set optimizer.warmup_steps=2 --set grpo.minibatches_per_epoch=2 --set grpo.kl_beta=0.05"
                            " --set grpo.reference_reset_every=4 --set eval.num_problems=0 --set logging.progress=QUIET";
  const auto whole = run("train " + tiny_train_flags("whole", 27) + flags);
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const auto dir = work() / "killed";
  const auto command = std::string(GRPO_BINARY) + " train " + tiny_train_flags("killed", 27) + flags;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + command + " > /dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until step 7 is logged (so the newest checkpoint is step 6 and step 7 has to be redone), then SIGKILL.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && step_rows(dir).size() < 7) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  const auto killed_at = step_rows(dir).size();
  ASSERT_GE(killed_at, 7u);
  ASSERT_LT(killed_at, 27u);

  const auto resumed = run("train --resume " + dir.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "grpo train: resuming")) << resumed.output;
  const auto a = step_rows(work() / "whole"), b = step_rows(dir);
  ASSERT_EQ(a.size(), 27u);
  ASSERT_EQ(b.size(), 27u) << "each step once: the lines after the checkpoint are logged again, not twice";
  int resume_point = 0;
  for (int s = static_cast<int>(killed_at); s >= 1; --s) {
    if (s % 3 == 0) {
      resume_point = s;
      break;
    }
  }
  EXPECT_LE(27 - resume_point, 27);
  EXPECT_GE(27 - resume_point, 20) << "at least 20 steps after the resume point are compared";
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(without_timings(a[i]), without_timings(b[i])) << "step " << i + 1;
  }
  EXPECT_TRUE(std::any_of(a.begin(), a.end(), [](const auto& row) { return row.contains("reference_reset"); }));
  // A folder with nothing to resume is a clear error.
  const auto nothing = run("train --resume " + (work() / "nowhere").string());
  EXPECT_EQ(nothing.exit_code, 2) << nothing.output;
  EXPECT_TRUE(contains(nothing.output, "has no config.textproto")) << nothing.output;
}

TEST_F(GrpoCli, JsonlDatasetTrainsAndEvaluatesAndMalformedRowsAreNamed) {
  std::string rows;
  for (int i = 1; i <= 12; ++i) rows += fmt::format("{{\"question\": \"{}+{}*2-1\", \"answer\": {}, \"grader\": \"math\"}}\n", i, i, i + 2 * i - 1);
  const auto data = write("rows.jsonl", rows);
  const std::string dataset = " --set task.kind=JSONL --set task.jsonl.train_file=" + data + " --set task.jsonl.eval_file=" + data +
                              " --set task.jsonl.prompt_field=question";
  const auto trained = run("train " + tiny_train_flags("jsonl", 2) + dataset);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_TRUE(contains(trained.output, "rows.jsonl: 12 rows")) << trained.output;
  const auto steps = step_rows(work() / "jsonl");
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_TRUE(steps[0].contains("accuracy"));  // the rows' own grader (math) is the accuracy term

  const auto evaluated = run("eval --model " + (work() / "jsonl" / "final").string() + " --data " + data +
                             " --set task.jsonl.prompt_field=question --samples 3 --temperature 1");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  const auto line = nlohmann::json::parse(evaluated.output.substr(evaluated.output.find('{')));
  EXPECT_EQ(line["num_problems"], 12);
  for (const char* key : {"accuracy", "pass_at_1", "pass_at_3", "maj_at_3", "completion_tokens_median"}) EXPECT_TRUE(line.contains(key)) << key;
  EXPECT_LE(line["pass_at_1"].get<double>(), line["pass_at_3"].get<double>());

  const auto bad = write("bad.jsonl", "{\"question\": \"1+1\", \"answer\": \"2\"}\n{\"question\": \"oops\"}\n");
  const auto refused = run("train " + tiny_train_flags("bad_jsonl", 1) + " --set task.kind=JSONL --set task.jsonl.train_file=" + bad +
                           " --set task.jsonl.prompt_field=question");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_TRUE(contains(refused.output, "bad.jsonl:2: no string or number field 'answer'")) << refused.output;
}

TEST_F(GrpoCli, BenchRolloutAlternatesTheTwoSidesAndPrintsEachPairsRatio) {
  // A tiny run of `grpo bench rollout`: its JSON line, and (where the build's Python has transformers) the peer's
  // runs beside ours, one per repeat, with each pair's ratio.
  const fs::path python = GRPO_PYTHON;
  const bool peer = !python.empty() && fs::exists(python);
  const auto r = run("bench rollout --model " + base_model() + " --batch 2 --new-tokens 4 --prompt-tokens 3 --repeats 2 --threads 1 --python " +
                     (peer ? python.string() : std::string("none")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto line = nlohmann::json::parse(r.output.substr(r.output.rfind("{\"bench\"")));
  const auto ours = line.at("ours_seconds").get<std::vector<double>>();
  ASSERT_EQ(ours.size(), 2u);
  EXPECT_NEAR(line.at("ours_tokens_per_s").get<double>(), 8.0 / ((ours[0] + ours[1]) / 2), 1e-6 * line.at("ours_tokens_per_s").get<double>());
  if (!peer) {
    EXPECT_FALSE(line.contains("ratio"));
    GTEST_SKIP() << "no GRPO_PYTHON: only our side was run (scripts/setup installs transformers)";
  }
  const auto hf = line.at("hf_seconds").get<std::vector<double>>();
  const auto paired = line.at("paired_ratios").get<std::vector<double>>();
  ASSERT_EQ(hf.size(), 2u);
  ASSERT_EQ(paired.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_NEAR(paired[i], hf[i] / ours[i], 1e-9 * paired[i]) << i;
  EXPECT_NEAR(line.at("ratio").get<double>(), (hf[0] + hf[1]) / (ours[0] + ours[1]), 1e-9 * line.at("ratio").get<double>());
  EXPECT_TRUE(contains(r.output, "transformers run 2")) << r.output;
}

TEST_F(GrpoCli, BenchWeightSyncTimesBothTransportsOnTheSameWorkers) {
  // Two local workers take the suite's tiny policy's weights over TCP and by broadcast, alternately: both sides'
  // times, each pair's ratio and the bytes per worker.
  const auto r = run("bench weight-sync --model " + base_model() + " --workers 2 --repeats 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto from = r.output.rfind("{\"bench\"");
  ASSERT_NE(from, std::string::npos) << r.output;
  const auto line = nlohmann::json::parse(r.output.substr(from, r.output.find('\n', from) - from));  // the workers' last words follow
  std::int64_t parameters = 0;
  for (const auto& p : grpo::policy::load_policy(base_model(), torch::kCPU).model->parameters()) parameters += p.numel();
  EXPECT_EQ(line.at("bytes_per_worker").get<std::int64_t>(), parameters * 4);  // float32 on the wire
  EXPECT_TRUE(line.at("broadcast").get<std::string>().starts_with("broadcast (Gloo, 3 members")) << line.dump();
  const auto tcp = line.at("tcp_seconds").get<std::vector<double>>();
  const auto broadcast = line.at("broadcast_seconds").get<std::vector<double>>();
  const auto paired = line.at("paired_ratios").get<std::vector<double>>();
  ASSERT_EQ(tcp.size(), 2u);
  ASSERT_EQ(broadcast.size(), 2u);
  ASSERT_EQ(paired.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_NEAR(paired[i], tcp[i] / broadcast[i], 1e-9 * paired[i]) << i;
  EXPECT_NEAR(line.at("ratio").get<double>(), (tcp[0] + tcp[1]) / (broadcast[0] + broadcast[1]), 1e-9 * line.at("ratio").get<double>());
  const auto bad = run("bench weight-sync --model " + base_model() + " --weight-dtype int8");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;  // a usage error, before any worker starts
  EXPECT_TRUE(contains(bad.output, "--weight-dtype 'int8'")) << bad.output;
}

TEST(RolloutWorkerCommand, RefusesAMissingTokenAndServesAHandshake) {
  const auto missing = run("rollout-worker --model examples/base_policy --token-file /nonexistent/token");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_TRUE(contains(missing.output, "--token-file: cannot read '/nonexistent/token'")) << missing.output;
  const auto bad_listen = run("rollout-worker --model examples/base_policy --token-file /dev/null --listen nowhere");
  EXPECT_EQ(bad_listen.exit_code, 2) << bad_listen.output;
}

TEST_F(GrpoCli, CtrlCLeavesACheckpointOfTheLastFinishedStep) {
  const auto dir = work() / "interrupted";
  const auto command = std::string(GRPO_BINARY) + " train " + tiny_train_flags("interrupted", 100000) + " --set checkpoint.every_steps=0";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + command + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until at least one training step is logged, then interrupt as Ctrl-C would.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  bool saw_step = false;
  while (!saw_step && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::ifstream metrics(dir / "metrics.jsonl");
    for (std::string line; std::getline(metrics, line);) saw_step |= contains(line, "\"reward_mean\"");
  }
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(saw_step);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  fs::path checkpoint;
  for (const auto& entry : fs::directory_iterator(dir / "checkpoints")) checkpoint = entry.path();
  ASSERT_FALSE(checkpoint.empty());
  const auto eval = run("eval --model " + checkpoint.string() + " --num-problems 3");
  EXPECT_EQ(eval.exit_code, 0) << eval.output;
}

}  // namespace

namespace {

// The shipped base policy is what the demo starts from: it must load, and it must be the deliberately imperfect
// model the demo promises (greedy accuracy at most 50% on the held-out set), so that GRPO has something to fix.
TEST(ShippedBasePolicy, LoadsAndIsOftenWrong) {
  const auto model = std::string(GRPO_SOURCE_DIR) + "/examples/base_policy";
  const auto r = run("eval --model " + model + " --num-problems 200");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto line = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(line["num_problems"], 200);
  EXPECT_LE(line["accuracy"].get<double>(), 0.5) << r.output;
}

// The demo's claim in miniature: 20 GRPO steps of the example config from the shipped base already make the greedy
// policy reason and be right far more often (the full 120-step demo reaches 99%; see README).
TEST_F(GrpoCli, ShortGrpoRunFromTheShippedBaseLearnsToReason) {
  const auto config = std::string(GRPO_SOURCE_DIR) + "/examples/r1_zero_arithmetic.textproto";
  const auto r = run("train " + config + " --set model.path=" + GRPO_SOURCE_DIR + "/examples/base_policy --set steps=20" +
                     " --set eval.every_steps=0 --set checkpoint.every_steps=0 --set logging.progress=QUIET" +
                     " --set name=short --set output_dir=" + work().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream metrics(work() / "short" / "metrics.jsonl");
  std::vector<nlohmann::json> evals;
  for (std::string line; std::getline(metrics, line);) {
    const auto row = nlohmann::json::parse(line);
    if (row.contains("eval_accuracy")) evals.push_back(row);
  }
  ASSERT_EQ(evals.size(), 2u) << r.output;
  const double base = evals.front()["eval_accuracy"].get<double>();
  const double trained = evals.back()["eval_accuracy"].get<double>();
  EXPECT_LE(base, 0.5);
  EXPECT_GE(trained, 0.75) << "base " << base << " -> trained " << trained;
  EXPECT_GT(evals.back()["eval_completion_tokens_mean"].get<double>(), 20.0);  // it reasons now
  EXPECT_GE(evals.back()["eval_format_rate"].get<double>(), 0.95);
}

}  // namespace

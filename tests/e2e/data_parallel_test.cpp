// Data-parallel `grpo train`: two real processes (RANK/WORLD_SIZE as torchrun sets them, Gloo over loopback TCP)
// against one process with the same global batch: the parameters after 5 steps agree within 1e-6 and so do the
// logged metrics, with and without DAPO's dynamic sampling. Also torchrun itself where the virtual environment has
// it, a rank killed mid-run (the survivor ends with exit code 3 and names it), and the settings that cannot be shared
// out among ranks.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "policy/safetensors.h"
#include "tests/e2e/cli_harness.h"
#include "tests/testing/loopback_port.h"

namespace {
namespace fs = std::filesystem;
using grpo::testing::contains;
using grpo::testing::run_grpo;

// This suite's part of the test process's scratch folder.
fs::path scratch() {
  static const fs::path dir = [] {
    auto path = grpo::testing::scratch_dir() / "data_parallel";
    fs::create_directories(path);
    return path;
  }();
  return dir;
}

int free_port() { return grpo::fixtures::free_loopback_port(); }

// The embedded base policy on generated arithmetic: rewards with signal from the first step, so the update moves
// the weights (a policy that never earns a reward would only compare round-off).
std::string train_flags(const std::string& name, int steps) {
  return fmt::format(
      "train --set model.path={}/examples/base_policy --set output_dir={} --set name={} --set steps={} --set rollout.prompts_per_step=4"
      " --set rollout.group_size=4 --set rollout.max_new_tokens=32 --set optimizer.lr=1e-4 --set grpo.minibatches_per_epoch=2"
      " --set grpo.kl_beta=0.04 --set eval.num_problems=4 --set eval.every_steps=2 --set checkpoint.every_steps=0"
      " --set logging.progress=QUIET --set logging.tensorboard=false --set runtime.threads=1",
      GRPO_SOURCE_DIR, scratch().string(), name, steps);
}

// Starts rank `rank` of `world` (the variables torchrun sets), its output in `log`.
pid_t start_rank(int rank, int world, int port, const std::string& args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    const auto command = fmt::format("exec {} {} > {} 2>&1", GRPO_BINARY, args, log.string());
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// The exit code of `pid`, or -1 if it is still running after `timeout` (it is then killed).
int wait_for(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<nlohmann::json> metrics(const fs::path& run) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Runs `world` ranks of `args` to the end; returns their exit codes.
std::vector<int> run_ranks(int world, const std::string& args, const std::string& log_prefix) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) pids.push_back(start_rank(r, world, port, args, scratch() / fmt::format("{}{}.log", log_prefix, r)));
  std::vector<int> codes;
  for (const auto pid : pids) codes.push_back(wait_for(pid, std::chrono::seconds(300)));
  return codes;
}

// The largest difference between the final parameters of two runs, and the largest move of the first from the base.
std::pair<double, double> parameter_difference(const std::string& run_a, const std::string& run_b) {
  const auto a = grpo::policy::load_safetensors(scratch() / run_a / "final" / "model.safetensors");
  const auto b = grpo::policy::load_safetensors(scratch() / run_b / "final" / "model.safetensors");
  const auto base = grpo::policy::load_safetensors(fs::path(GRPO_SOURCE_DIR) / "examples" / "base_policy" / "model.safetensors");
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  double max_difference = 0.0, max_moved = 0.0;
  for (const auto& [name, tensor] : a.tensors) {
    if (!b.tensors.count(name)) {
      ADD_FAILURE() << name;
      continue;
    }
    const auto x = tensor.to(torch::kFloat64), y = b.tensors.at(name).to(torch::kFloat64);
    max_difference = std::max(max_difference, (x - y).abs().max().item<double>());
    max_moved = std::max(max_moved, (x - base.tensors.at(name).to(torch::kFloat64)).abs().max().item<double>());
  }
  return {max_difference, max_moved};
}

// Compares two runs' metrics, row by row (timings aside): rewards, accuracy and what was sampled exactly (the same
// samples), losses to float32 round-off. Returns how many values were compared.
int expect_same_metrics(const std::vector<nlohmann::json>& rows_a, const std::vector<nlohmann::json>& rows_b) {
  EXPECT_EQ(rows_a.size(), rows_b.size());
  int compared = 0;
  for (std::size_t i = 0; i < std::min(rows_a.size(), rows_b.size()); ++i) {
    for (const auto& [key, value] : rows_a[i].items()) {
      if (key.starts_with("time") || key.starts_with("share_") || key == "rollout_tokens_per_s") continue;
      if (!rows_b[i].contains(key)) {
        ADD_FAILURE() << "row " << i << " lacks " << key;
        continue;
      }
      if (!value.is_number()) {
        EXPECT_EQ(value, rows_b[i][key]) << key;
        continue;
      }
      const double x = value.get<double>(), y = rows_b[i][key].get<double>();
      const bool exact = key.starts_with("reward") || key == "accuracy" || key == "format_rate" || key.starts_with("eval_") ||
                         key == "completion_tokens_mean" || key == "truncated_fraction" || key.starts_with("dynamic_sampling");
      if (exact) {
        EXPECT_DOUBLE_EQ(x, y) << "row " << i << " " << key;
      } else {
        EXPECT_NEAR(x, y, 1e-4 * std::max(1.0, std::abs(x))) << "row " << i << " " << key;
      }
      ++compared;
    }
  }
  return compared;
}

TEST(DataParallel, TwoRanksTrainExactlyAsOneProcessWithTheSameGlobalBatch) {
  // One row per micro-batch, so that both runs multiply matrices of the same rows: a float32 GEMM rounds
  // differently with the number of rows, and one process holds twice a rank's rows. That rounding, compounded by
  // Adam, is not data parallelism; with it the runs differ by a few 1e-6 after 5 steps (checked below). For the
  // same reason π_old is recomputed by the trainer (in those one-row micro-batches) rather than taken from the
  // sampler, whose batch is a rank's half of the prompts here and all of them there: on AVX-512 cores the sampler's
  // log-probs then differ in the last bits, and through the ratios the weights by 4.6e-6 (0.48e-6 recomputed).
  const std::string same_rows = " --set grpo.micro_batch_rows=1 --set grpo.old_logprobs=RECOMPUTE";
  const auto one = run_grpo(train_flags("one", 5) + same_rows);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto codes = run_ranks(2, train_flags("two", 5) + same_rows, "two_rank");
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << read_file(scratch() / "two_rank0.log") << read_file(scratch() / "two_rank1.log");
  const auto rank0_log = read_file(scratch() / "two_rank0.log");
  EXPECT_TRUE(contains(rank0_log, "2 ranks over Gloo")) << rank0_log;
  // Rank 0 alone writes the run and evaluates; the other rank prints nothing of the kind.
  const auto rank1_log = read_file(scratch() / "two_rank1.log");
  EXPECT_FALSE(contains(rank1_log, "held-out greedy accuracy")) << rank1_log;

  const auto [max_difference, max_moved] = parameter_difference("one", "two");
  std::cout << fmt::format("max |θ_1 process − θ_2 ranks| after 5 steps: {:.3g} (the weights moved by up to {:.3g})\n", max_difference, max_moved);
  EXPECT_LE(max_difference, 1e-6);
  EXPECT_GE(max_moved, 1e-4) << "training must have changed the weights for the comparison to mean anything";

  // The same metrics, step by step (timings aside): rewards and accuracy exactly (the same samples), losses to
  // float32 round-off.
  const auto rows_a = metrics(scratch() / "one"), rows_b = metrics(scratch() / "two");
  EXPECT_GT(expect_same_metrics(rows_a, rows_b), 50);
  EXPECT_GT(rows_a.back().value("eval_num_problems", 0), 0) << "rank 0 evaluated during and after training";

  // With the default micro-batches (a rank's rows in one, all rows in one for the single process) only GEMM
  // round-off separates the runs.
  ASSERT_EQ(run_grpo(train_flags("one_default", 5)).exit_code, 0);
  ASSERT_EQ(run_ranks(2, train_flags("two_default", 5), "two_default_rank"), (std::vector<int>{0, 0}));
  const auto default_difference = parameter_difference("one_default", "two_default").first;
  std::cout << fmt::format("with the default micro-batches: {:.3g}\n", default_difference);
  EXPECT_LE(default_difference, 2e-5);
}

TEST(DataParallel, DynamicSamplingOnTwoRanksKeepsWhatOneProcessKeeps) {
  // DAPO's dynamic sampling: each rank samples its half of every round, the ranks keep the groups one process
  // keeps and share them out (moving groups where one rank kept more than its half), so the runs agree as above.
  // Also with rollout.overlap, whose extra rounds sample from the newest weights (they once asked for the step's
  // older version, which the backend no longer held, and the run stopped).
  for (const std::string overlap : {"false", "true"}) {
    SCOPED_TRACE("rollout.overlap=" + overlap);
    const auto flags =
        " --set grpo.micro_batch_rows=1 --set grpo.old_logprobs=RECOMPUTE --set grpo.dynamic_sampling=true --set rollout.overlap=" + overlap;
    const auto one_name = "dynamic_one_" + overlap, two_name = "dynamic_two_" + overlap;
    const auto one = run_grpo(train_flags(one_name, 5) + flags);
    ASSERT_EQ(one.exit_code, 0) << one.output;
    const auto codes = run_ranks(2, train_flags(two_name, 5) + flags, "dynamic_rank");
    ASSERT_EQ(codes, (std::vector<int>{0, 0})) << read_file(scratch() / "dynamic_rank0.log") << read_file(scratch() / "dynamic_rank1.log");
    const auto rows = metrics(scratch() / one_name);
    int extra_rounds = 0;
    for (const auto& row : rows) extra_rounds += row.value("dynamic_sampling_rounds", 0);
    EXPECT_GT(extra_rounds, 0) << "some step must have dropped groups and sampled again for the comparison to mean anything";
    EXPECT_GT(expect_same_metrics(rows, metrics(scratch() / two_name)), 50);
    const auto [max_difference, max_moved] = parameter_difference(one_name, two_name);
    std::cout << fmt::format("dynamic sampling, overlap {}: max |θ_1 process − θ_2 ranks| after 5 steps: {:.3g} (moved up to {:.3g}), {} extra rounds\n",
                             overlap, max_difference, max_moved, extra_rounds);
    EXPECT_LE(max_difference, 1e-6);
    EXPECT_GE(max_moved, 1e-4);
  }
}

TEST(DataParallel, TorchrunStartsTheRanks) {
  const fs::path python = GRPO_PYTHON;
  const auto torchrun = python.parent_path() / "torchrun";
  if (python.empty() || !fs::exists(torchrun)) GTEST_SKIP() << "no torchrun beside GRPO_PYTHON (" << python << "); scripts/setup installs it";
  const auto command = fmt::format("{} --nproc-per-node 2 --master-port {} --no-python {} {} 2>&1", torchrun.string(), free_port(), GRPO_BINARY,
                                   train_flags("torchrun", 2));
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_TRUE(contains(output, "2 ranks over Gloo (torchrun)")) << output;
  EXPECT_EQ(metrics(scratch() / "torchrun").size(), 2u + 2u) << "base and final evaluation, two steps";
}

TEST(DataParallel, ARankKilledMidRunEndsTheJobWithAMessageNamingIt) {
  const int port = free_port();
  const auto args = train_flags("killed", 100000) + " --set eval.num_problems=0 --set runtime.collective_timeout_s=20";
  const auto survivor = start_rank(0, 2, port, args, scratch() / "killed0.log");
  const auto victim = start_rank(1, 2, port, args, scratch() / "killed1.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && metrics(scratch() / "killed").size() < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(victim, SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  wait_for(victim, std::chrono::seconds(10));
  const int code = wait_for(survivor, std::chrono::seconds(60));
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  const auto log = read_file(scratch() / "killed0.log");
  EXPECT_EQ(code, 3) << log;
  EXPECT_TRUE(contains(log, "Rank 1 stopped")) << log;
  EXPECT_LT(seconds, 30.0) << "the survivor must not wait for the collective timeout to notice a dead peer";
}

TEST(DataParallel, SettingsThatCannotBeSharedOutAreConfigErrors) {
  // Three prompts do not split into whole groups over two ranks.
  auto codes = run_ranks(2, train_flags("uneven", 1) + " --set rollout.prompts_per_step=3", "uneven");
  EXPECT_EQ(codes, (std::vector<int>{2, 2}));
  EXPECT_TRUE(contains(read_file(scratch() / "uneven0.log"), "cannot be shared out evenly among 2 ranks")) << read_file(scratch() / "uneven0.log");
  // Ranks started with different settings.
  const int port = free_port();
  const auto first = start_rank(0, 2, port, train_flags("mismatch", 1), scratch() / "mismatch0.log");
  const auto second = start_rank(1, 2, port, train_flags("mismatch", 1) + " --set optimizer.lr=2e-4", scratch() / "mismatch1.log");
  EXPECT_EQ(wait_for(first, std::chrono::seconds(120)), 3);
  EXPECT_EQ(wait_for(second, std::chrono::seconds(120)), 3);
  EXPECT_TRUE(contains(read_file(scratch() / "mismatch0.log"), "rank 1's resolved config differs from rank 0's")) << read_file(scratch() / "mismatch0.log");
}

}  // namespace

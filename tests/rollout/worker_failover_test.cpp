// Three real `grpo rollout-worker` processes on loopback serve a batch of the shipped base policy; one is killed
// (SIGKILL) in the middle. The batch must still come back complete: every prompt once, every sample's recorded
// log-probs those of the policy for its tokens, and the samples those of the undisturbed batch (each prompt carries
// its own seed). Also: the trainer-side `grpo rollout-worker` command line refuses a missing token file.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "policy/checkpoint.h"
#include "policy/token_logprobs.h"
#include "rollout/remote/rollout_messages.h"
#include "rollout/remote/worker_pool.h"
#include "rollout/remote/worker_processes.h"

namespace grpo::rollout {
namespace {

const std::filesystem::path kBasePolicy = std::filesystem::path(GRPO_SOURCE_DIR) / "examples" / "base_policy";

GenerationRequest batch() {
  GenerationRequest request;
  for (int p = 0; p < 24; ++p) {
    std::vector<std::int64_t> prompt;
    for (int t = 0; t < 10; ++t) prompt.push_back(8 + (p * 7 + t * 3) % 80);
    request.prompts.push_back(prompt);
  }
  request.samples_per_prompt = 8;
  request.max_new_tokens = 160;
  request.sampling.temperature = 1.0;
  request.seed = 42;
  return request;
}

TEST(RolloutWorkerProcesses, KillingOneWorkerMidBatchStillGivesTheCompleteCorrectBatch) {
  auto policy = policy::load_policy(kBasePolicy, torch::kCPU);
  policy.model->eval();
  LocalWorkerOptions local;
  local.count = 3;
  local.grpo_binary = GRPO_BINARY;
  local.model = kBasePolicy;
  local.threads = 1;
  LocalWorkerProcesses processes(local);
  ASSERT_EQ(processes.addresses().size(), 3u);
  WorkerPoolOptions options;
  options.addresses = processes.addresses();
  options.token = processes.token();
  options.log = [](std::string_view) {};
  RolloutWorkerPool pool(options, policy.model->config().vocab_size);
  pool.connect();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(policy.model, 0)));

  const auto start = std::chrono::steady_clock::now();
  const auto undisturbed = pool.generate(batch(), 0);
  const auto undisturbed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(pool.last_batch_stats().workers_failed, 0);

  auto future = pool.generate_async(batch(), 0);
  std::this_thread::sleep_for(std::chrono::duration<double>(undisturbed_seconds * 0.4));
  processes.kill_worker(1);
  const auto result = future.get();
  const auto stats = pool.last_batch_stats();
  EXPECT_EQ(stats.workers_failed, 1);
  EXPECT_GT(stats.reassigned_prompts, 0) << "the kill should land while the worker still had prompts to deliver";
  EXPECT_EQ(pool.live_workers(), 2);

  ASSERT_EQ(result.completions.size(), 24u * 8u);
  std::size_t identical = 0;
  std::vector<std::vector<std::int64_t>> sequences;
  for (std::size_t i = 0; i < result.completions.size(); ++i) {
    const auto& c = result.completions[i];
    EXPECT_EQ(c.prompt_index, static_cast<std::int64_t>(i / 8));
    EXPECT_EQ(c.sample_index, static_cast<std::int64_t>(i % 8));
    identical += c.tokens == undisturbed.completions[i].tokens;
    auto sequence = batch().prompts[i / 8];
    sequence.insert(sequence.end(), c.tokens.begin(), c.tokens.end());
    sequences.push_back(std::move(sequence));
  }
  // Sampling is per prompt, so a reassigned prompt gets the same samples; only float rounding of another batch
  // shape could flip a draw that sits on a boundary.
  EXPECT_GE(identical, result.completions.size() * 95 / 100);
  // Each sample's recorded log-probs are the policy's for its tokens (teacher-forced here, in one padded batch).
  const auto teacher = policy::token_logprobs(policy.model, sequences);
  double worst = 0.0;
  for (std::size_t i = 0; i < result.completions.size(); ++i) {
    const auto& c = result.completions[i];
    const auto offset = batch().prompts[i / 8].size() - 1;
    for (std::size_t t = 0; t < c.tokens.size(); ++t) worst = std::max(worst, static_cast<double>(std::abs(teacher[i][offset + t] - c.logprobs[t])));
  }
  EXPECT_LT(worst, 1e-4);
}

TEST(RolloutWorkerProcesses, AWorkerThatCannotStartIsAClearError) {
  LocalWorkerOptions local;
  local.count = 1;
  local.grpo_binary = GRPO_BINARY;
  local.model = "/nonexistent/model";
  local.start_timeout = std::chrono::milliseconds(20000);
  local.log_dir = std::filesystem::temp_directory_path();
  try {
    LocalWorkerProcesses processes(local);
    FAIL() << "starting a worker on a missing model should fail";
  } catch (const std::runtime_error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("did not start listening"), std::string::npos) << what;
    EXPECT_NE(what.find("/nonexistent/model"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace grpo::rollout

// `grpo bench rollout`: our rollout engine and transformers' `generate` on the same weights, prompts, batch and number
// of new tokens (EOS ignored), side by side in one invocation, with the achieved FLOP/s as a fraction of the
// machine's peak measured by one large matmul in the same run. Prints one JSON line.
//
// `grpo bench failover`: three local rollout workers generate a batch, then the same batch again while one of them is
// killed in the middle; prints the batch times and the latency the failure added, as one JSON line.
//
// `grpo bench weight-sync`: local rollout workers receive the same weights over TCP chunks and by c10d broadcast,
// the two alternating push by push; prints the seconds of each, their ratio and the bytes per second, as one JSON
// line.
#pragma once

#include <filesystem>
#include <string>

namespace grpo::rl {

struct RolloutBenchOptions {
  std::filesystem::path model;
  int batch = 64;
  int new_tokens = 256;
  int prompt_tokens = 32;
  int repeats = 3;
  int threads = 0;  // 0: every core, for both sides
  std::string dtype = "float32";
  std::string device = "auto";
  std::filesystem::path python;     // the interpreter with transformers; empty skips the peer
  std::filesystem::path hf_script;  // bench/hf_generate.py
  std::uint64_t seed = 1;
};

int run_rollout_bench(const RolloutBenchOptions& options);

struct FailoverBenchOptions {
  std::filesystem::path model;
  std::filesystem::path grpo_binary;
  int workers = 3;
  int prompts = 24;
  int group_size = 8;
  int new_tokens = 128;
  int repeats = 3;
  double kill_after_fraction = 0.5;  // of the undisturbed batch time
};

int run_failover_bench(const FailoverBenchOptions& options);

struct WeightSyncBenchOptions {
  std::filesystem::path model;
  std::filesystem::path grpo_binary;
  int workers = 3;
  int repeats = 5;
  std::string weight_dtype = "model";  // the dtype on the wire: "model" or a dtype name (bfloat16, ...)
};

int run_weight_sync_bench(const WeightSyncBenchOptions& options);

}  // namespace grpo::rl

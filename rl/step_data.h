// One GRPO step's rollouts and their scores, group by group: what the trainer's phases pass along. Groups can be
// filtered (DAPO's dynamic sampling drops groups without signal), appended (its extra sampling rounds) and picked in
// any order (its groups moved between data-parallel ranks, rl/kept_groups.h).
//
// Shapes: P prompts (groups) on this rank, G samples per prompt, B = P·G. Under data parallelism a rank holds the
// contiguous block [global_first, global_first + P) of the step's global_prompts groups.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "rl/tasks/task.h"
#include "rollout/generator.h"

namespace grpo::rl {

struct StepData {
  std::int64_t group_size = 0;                        // G
  std::vector<Problem> problems;                      // P
  std::vector<std::string> prompt_texts;              // P
  std::vector<std::vector<std::int64_t>> prompt_ids;  // B (repeated per sample)
  rollout::GenerationResult generation;               // B completions, prompt-major
  torch::Tensor rewards;                              // [P, G] float64: Σ weight · grader score
  torch::Tensor scorable;                             // [P, G] bool
  std::map<std::string, double> component_means;      // grader name → mean score over scorable samples
  std::map<std::string, double> component_counts;     // grader name → the number of samples of its mean
  std::int64_t global_first = 0;                      // this rank's first group in the step's, over all ranks
  std::int64_t global_prompts = 0;                    // the step's groups over all ranks

  std::int64_t prompts() const { return static_cast<std::int64_t>(problems.size()); }
  std::int64_t samples() const { return prompts() * group_size; }
};

// Keeps the groups at `order` (indices into data's groups, each at most once), in that order.
void take_groups(StepData& data, const std::vector<std::int64_t>& order);

// Appends `more`'s groups (same group size) after data's; component means stay those of `data`.
void append_groups(StepData& data, StepData&& more);

}  // namespace grpo::rl

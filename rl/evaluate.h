// Greedy evaluation of a policy on a fixed set of problems: accuracy, format compliance, completion length.
#pragma once

#include <cstdint>
#include <vector>

#include "policy/checkpoint.h"
#include "policy/prompt_template.h"
#include "rl/tasks/arithmetic_task.h"

namespace grpo::rl {

struct EvalResult {
  std::int64_t num_problems = 0;
  double accuracy = 0.0;     // share of problems whose answer equals the reference
  double format_rate = 0.0;  // share of completions that match the R1-Zero template
  double completion_tokens_mean = 0.0;
  double seconds = 0.0;
};

EvalResult evaluate_greedy(const policy::Policy& policy, const policy::PromptTemplate& prompt_template,
                           const std::vector<ArithmeticProblem>& problems, std::int64_t max_new_tokens, std::int64_t batch_size);

}  // namespace grpo::rl

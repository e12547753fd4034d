// Evaluation of a policy on held-out problems, scored by the run's own reward terms: greedy accuracy and format
// compliance, completion-length statistics, and, with k samples per problem, pass@1 averaged over the k samples,
// pass@k and maj@k (the majority answer's correctness). Used during training (eval rows in metrics.jsonl) and by
// `grpo eval`.
#pragma once

#include <cstdint>
#include <vector>

#include "policy/checkpoint.h"
#include "policy/prompt_template.h"
#include "rl/reward_scorer.h"
#include "rl/tasks/task.h"

namespace grpo::rl {

struct EvalOptions {
  std::int64_t max_new_tokens = 64;
  std::int64_t batch_size = 100;  // problems generated at once
  int samples = 0;                // k sampled completions per problem besides the greedy one (0: greedy only)
  double temperature = 1.0;       // of the k samples
  double top_p = 1.0;
  std::uint64_t seed = 0;
};

struct EvalResult {
  std::int64_t num_problems = 0;
  double accuracy = 0.0;     // greedy: share of problems whose answer the problem's grader accepts
  double format_rate = 0.0;  // greedy: share of completions that match the R1-Zero template
  double completion_tokens_mean = 0.0;
  double completion_tokens_median = 0.0;
  double completion_tokens_p90 = 0.0;
  double completion_tokens_max = 0.0;
  double truncated_fraction = 0.0;  // greedy completions cut off by max_new_tokens
  int samples = 0;
  double pass_at_1 = 0.0;  // mean over problems and samples of correctness (the k-sample estimate of pass@1)
  double pass_at_k = 0.0;  // share of problems with at least one correct sample
  double maj_at_k = 0.0;   // share of problems whose most frequent answer among the samples is correct
  double seconds = 0.0;
};

// pass@1 (mean correctness), pass@k (any correct) and maj@k from k samples per problem: correct [P, k] (1 = right),
// answers[p·k + g] the answer each sample gave (empty: none). The majority answer is the most frequent non-empty
// one, ties going to the one that appeared first; a problem whose samples answered nothing counts as wrong.
struct SampleMetrics {
  double pass_at_1 = 0.0, pass_at_k = 0.0, maj_at_k = 0.0;
};
SampleMetrics sample_metrics(const torch::Tensor& correct, const std::vector<std::string>& answers);

EvalResult evaluate(const policy::Policy& policy, const policy::PromptTemplate& prompt_template, const std::vector<Problem>& problems,
                    const RewardScorer& scorer, const EvalOptions& options);

}  // namespace grpo::rl

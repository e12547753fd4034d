// The reward of a run: Σ weight · score over reward.graders, where the term named "accuracy" is each problem's own
// grader (the integer check for arithmetic, "math", "code", "countdown" or whatever the dataset row names) and every
// other term (format, plug-ins, remote graders) applies to all samples. Used by training and by evaluation, so both
// score alike.
//
// Shapes: P problems, G samples per problem.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "reward/grader.h"
#include "rl/config/run_config.pb.h"
#include "rl/tasks/task.h"

namespace grpo::rl {

struct RewardScores {
  torch::Tensor rewards;   // [P, G] float64
  torch::Tensor scorable;  // [P, G] bool: every term could score the sample
  torch::Tensor correct;   // [P, G] float64: the problem grader's score (the "accuracy" term's, also when unweighted)
  std::vector<std::string> extracted;  // [P·G] what the problem grader read as the answer (for majority votes)
  std::map<std::string, double> component_means;  // term name → mean score over its scorable samples (and parts)
  std::map<std::string, double> component_counts;  // the same names → how many samples each mean is over
};

class RewardScorer {
 public:
  // Throws std::invalid_argument / std::runtime_error naming the term that cannot be built (see grader_factory.h).
  explicit RewardScorer(const config::RewardConfig& reward);

  // completions[p·G + g] answers problems[p] under prompts[p].
  RewardScores score(const std::vector<Problem>& problems, const std::vector<std::string>& prompts,
                     const std::vector<std::string>& completions, std::int64_t group_size) const;

  // The grader a problem names (made from the registry on first use; a configured grader of that name wins).
  const reward::Grader& problem_grader(const std::string& name) const;

 private:
  struct Term {
    std::string name;
    std::unique_ptr<reward::Grader> grader;  // null for the "accuracy" term: each problem's own grader
    double weight;
  };
  std::vector<Term> terms_;
  mutable std::map<std::string, std::unique_ptr<reward::Grader>, std::less<>> problem_graders_;
};

}  // namespace grpo::rl

// Scoring samples with the run's reward terms (see reward_scorer.h).
#include "rl/reward_scorer.h"

#include "reward/grader_registry.h"
#include "rl/grader_factory.h"

namespace grpo::rl {

RewardScorer::RewardScorer(const config::RewardConfig& reward) {
  for (const auto& entry : reward.graders()) {
    if (entry.name() == "accuracy" && !entry.has_plugin() && !entry.has_remote()) {
      terms_.push_back({"accuracy", nullptr, entry.weight()});
      continue;
    }
    auto grader = make_configured_grader(entry);
    const std::string name(grader->name());
    terms_.push_back({name, std::move(grader), entry.weight()});
  }
}

const reward::Grader& RewardScorer::problem_grader(const std::string& name) const {
  for (const auto& term : terms_) {
    if (term.grader && term.name == name) return *term.grader;  // e.g. a configured "code" grader with its limits
  }
  auto it = problem_graders_.find(name);
  if (it == problem_graders_.end()) it = problem_graders_.emplace(name, reward::make_grader(name)).first;
  return *it->second;
}

RewardScores RewardScorer::score(const std::vector<Problem>& problems, const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& completions, std::int64_t group_size) const {
  const auto P = static_cast<std::int64_t>(problems.size());
  const auto G = group_size;
  const auto count = static_cast<std::size_t>(P * G);
  TORCH_CHECK(completions.size() == count && prompts.size() == problems.size(), "RewardScorer::score: ", completions.size(), " completions for ",
              P, " problems × ", G);
  std::vector<reward::GradeInput> inputs;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& problem = problems[i / static_cast<std::size_t>(G)];
    inputs.push_back({prompts[i / static_cast<std::size_t>(G)], completions[i], problem.reference, problem.metadata});
  }
  RewardScores out;
  out.rewards = torch::zeros({P, G}, torch::kFloat64);
  out.scorable = torch::ones({P, G}, torch::kBool);
  out.correct = torch::zeros({P, G}, torch::kFloat64);
  out.extracted.assign(count, "");
  auto rewards_a = out.rewards.accessor<double, 2>();
  auto scorable_a = out.scorable.accessor<bool, 2>();
  auto correct_a = out.correct.accessor<double, 2>();

  // The problem graders' results, grading each grader's samples in one batch.
  std::vector<reward::GradeResult> problem_results(count);
  std::map<std::string, std::vector<std::size_t>> by_grader;
  for (std::size_t i = 0; i < count; ++i) by_grader[problems[i / static_cast<std::size_t>(G)].grader].push_back(i);
  for (const auto& [name, rows] : by_grader) {
    std::vector<reward::GradeInput> batch;
    for (const auto i : rows) batch.push_back(inputs[i]);
    auto results = problem_grader(name).grade_batch(batch);
    for (std::size_t k = 0; k < rows.size(); ++k) problem_results[rows[k]] = std::move(results[k]);
  }
  for (std::size_t i = 0; i < count; ++i) {
    correct_a[static_cast<std::int64_t>(i) / G][static_cast<std::int64_t>(i) % G] = problem_results[i].scorable ? problem_results[i].score : 0.0;
    out.extracted[i] = problem_results[i].extracted;
  }

  for (const auto& term : terms_) {
    const auto results = term.grader ? term.grader->grade_batch(inputs) : problem_results;
    double sum = 0.0, n = 0.0;
    std::map<std::string, double> part_sums;  // a grader's named components, logged as "<grader>/<component>"
    for (std::size_t i = 0; i < count; ++i) {
      const auto p = static_cast<std::int64_t>(i) / G, g = static_cast<std::int64_t>(i) % G;
      if (!results[i].scorable) {
        scorable_a[p][g] = false;
        continue;
      }
      rewards_a[p][g] += term.weight * results[i].score;
      sum += results[i].score;
      n += 1.0;
      for (const auto& part : results[i].components) part_sums[part.name] += part.score;
    }
    out.component_means[term.name] = n > 0 ? sum / n : 0.0;
    out.component_counts[term.name] = n;
    for (const auto& [part, part_sum] : part_sums) {
      out.component_means[term.name + "/" + part] = part_sum / n;
      out.component_counts[term.name + "/" + part] = n;
    }
  }
  return out;
}

}  // namespace grpo::rl

// Evaluation (see evaluate.h), scored by the same reward terms as training.
#include "rl/evaluate.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "rollout/generator.h"

namespace grpo::rl {
namespace {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// One generation pass over `problems` (G samples each), in batches; completions in problem order.
std::vector<rollout::Completion> generate_all(const policy::Policy& policy, const std::vector<std::string>& prompts, std::int64_t group,
                                              const rollout::SamplingParams& sampling, const EvalOptions& options) {
  std::vector<rollout::Completion> out;
  auto model = policy.model;
  rollout::GenerationHooks hooks;
  hooks.tokenizer = policy.tokenizer.get();
  for (std::size_t begin = 0; begin < prompts.size(); begin += static_cast<std::size_t>(options.batch_size)) {
    const auto end = std::min(prompts.size(), begin + static_cast<std::size_t>(options.batch_size));
    rollout::GenerationRequest request;
    for (auto i = begin; i < end; ++i) {
      request.prompts.push_back(policy::encode_prompt(policy, prompts[i]));
      request.prompt_seeds.push_back(rollout::derive_seed(options.seed, i));  // a problem's samples: whatever the batch
    }
    request.samples_per_prompt = group;
    request.max_new_tokens = options.max_new_tokens;
    request.sampling = sampling;
    request.stop_token_ids = policy.stop_token_ids;
    auto generated = rollout::generate(model, request, hooks);
    for (auto& c : generated.completions) out.push_back(std::move(c));
  }
  return out;
}

std::vector<std::string> texts_of(const policy::Policy& policy, const std::vector<rollout::Completion>& completions) {
  std::vector<std::string> texts;
  for (const auto& c : completions) texts.push_back(policy.tokenizer->decode(c.tokens, /*skip_special_tokens=*/true));
  return texts;
}

}  // namespace

SampleMetrics sample_metrics(const torch::Tensor& correct, const std::vector<std::string>& answers) {
  TORCH_CHECK(correct.dim() == 2 && static_cast<std::int64_t>(answers.size()) == correct.numel(), "sample_metrics: correct [P, k] and P·k answers");
  SampleMetrics out;
  const auto P = correct.size(0), k = correct.size(1);
  if (P == 0 || k == 0) return out;
  const auto c = correct.to(torch::kFloat64).contiguous();
  out.pass_at_1 = c.mean().item<double>();
  out.pass_at_k = (c.sum(1) > 0).to(torch::kFloat64).mean().item<double>();
  const auto ca = c.accessor<double, 2>();
  double majority_right = 0.0;
  for (std::int64_t p = 0; p < P; ++p) {
    std::map<std::string, std::pair<int, std::int64_t>> votes;  // answer → (votes, first sample that gave it)
    for (std::int64_t g = 0; g < k; ++g) {
      const auto& answer = answers[static_cast<std::size_t>(p * k + g)];
      if (answer.empty()) continue;
      auto [it, inserted] = votes.try_emplace(answer, 0, g);
      ++it->second.first;
    }
    const std::pair<int, std::int64_t>* best = nullptr;
    for (const auto& [answer, vote] : votes) {
      if (best == nullptr || vote.first > best->first || (vote.first == best->first && vote.second < best->second)) best = &vote;
    }
    if (best != nullptr) majority_right += ca[p][best->second];
  }
  out.maj_at_k = majority_right / static_cast<double>(P);
  return out;
}

EvalResult evaluate(const policy::Policy& policy, const policy::PromptTemplate& prompt_template, const std::vector<Problem>& problems,
                    const RewardScorer& scorer, const EvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  EvalResult result;
  result.num_problems = static_cast<std::int64_t>(problems.size());
  if (problems.empty()) return result;
  const auto n = static_cast<double>(problems.size());
  std::vector<std::string> prompts;
  for (const auto& p : problems) prompts.push_back(prompt_template.apply(p.question));

  // Greedy.
  const auto greedy = generate_all(policy, prompts, 1, {/*temperature=*/0.0, 1.0, 0}, options);
  const auto greedy_texts = texts_of(policy, greedy);
  const auto scores = scorer.score(problems, prompts, greedy_texts, 1);
  const auto& format = scorer.problem_grader("format");
  std::vector<double> lengths;
  double formatted = 0.0, truncated = 0.0;
  for (std::size_t i = 0; i < greedy.size(); ++i) {
    formatted += format.grade({prompts[i], greedy_texts[i], problems[i].reference, problems[i].metadata}).score;
    lengths.push_back(static_cast<double>(greedy[i].tokens.size()));
    truncated += greedy[i].finish == rollout::FinishReason::kLength ? 1.0 : 0.0;
  }
  result.accuracy = (scores.correct > 0.5).to(torch::kFloat64).sum().item<double>() / n;
  result.format_rate = formatted / n;
  double total = 0.0;
  for (const auto length : lengths) total += length;
  result.completion_tokens_mean = total / n;
  result.completion_tokens_median = percentile(lengths, 0.5);
  result.completion_tokens_p90 = percentile(lengths, 0.9);
  result.completion_tokens_max = *std::max_element(lengths.begin(), lengths.end());
  result.truncated_fraction = truncated / n;

  // k samples per problem: pass@1 (mean correctness), pass@k (any correct), maj@k (the most frequent answer).
  if (options.samples > 0) {
    const auto k = options.samples;
    result.samples = k;
    const auto sampled = generate_all(policy, prompts, k, {options.temperature, options.top_p, 0}, options);
    const auto sampled_scores = scorer.score(problems, prompts, texts_of(policy, sampled), k);
    const auto metrics = sample_metrics((sampled_scores.correct > 0.5).to(torch::kFloat64), sampled_scores.extracted);
    result.pass_at_1 = metrics.pass_at_1;
    result.pass_at_k = metrics.pass_at_k;
    result.maj_at_k = metrics.maj_at_k;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace grpo::rl

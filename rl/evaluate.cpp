// Greedy evaluation (see evaluate.h), scored by the same graders as training.
#include "rl/evaluate.h"

#include <algorithm>
#include <chrono>

#include "reward/accuracy_grader.h"
#include "reward/format_grader.h"
#include "rollout/generator.h"

namespace grpo::rl {

EvalResult evaluate_greedy(const policy::Policy& policy, const policy::PromptTemplate& prompt_template,
                           const std::vector<ArithmeticProblem>& problems, std::int64_t max_new_tokens, std::int64_t batch_size) {
  const auto start = std::chrono::steady_clock::now();
  const reward::AccuracyGrader accuracy;
  const reward::FormatGrader format;
  EvalResult result;
  result.num_problems = static_cast<std::int64_t>(problems.size());
  double correct = 0.0, formatted = 0.0, tokens = 0.0;
  for (std::size_t begin = 0; begin < problems.size(); begin += static_cast<std::size_t>(batch_size)) {
    const auto end = std::min(problems.size(), begin + static_cast<std::size_t>(batch_size));
    rollout::GenerationRequest request;
    std::vector<std::string> prompts;
    for (auto i = begin; i < end; ++i) {
      prompts.push_back(prompt_template.apply(problems[i].expression));
      request.prompts.push_back(policy::encode_prompt(policy, prompts.back()));
    }
    request.samples_per_prompt = 1;
    request.max_new_tokens = max_new_tokens;
    request.sampling.temperature = 0.0;
    request.stop_token_ids = policy.stop_token_ids;
    auto model = policy.model;
    const auto generated = rollout::generate(model, request);
    for (auto i = begin; i < end; ++i) {
      const auto& completion = generated.completions[i - begin];
      const auto text = policy.tokenizer->decode(completion.tokens, /*skip_special_tokens=*/true);
      const reward::GradeInput input{prompts[i - begin], text, problems[i].answer};
      correct += accuracy.grade(input).score;
      formatted += format.grade(input).score;
      tokens += static_cast<double>(completion.tokens.size());
    }
  }
  if (!problems.empty()) {
    const auto n = static_cast<double>(problems.size());
    result.accuracy = correct / n;
    result.format_rate = formatted / n;
    result.completion_tokens_mean = tokens / n;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace grpo::rl

// Filtering and joining a step's groups (see step_data.h).
#include "rl/step_data.h"

namespace grpo::rl {

void take_groups(StepData& data, const std::vector<std::int64_t>& order) {
  StepData kept;
  kept.group_size = data.group_size;
  kept.component_means = std::move(data.component_means);
  kept.component_counts = std::move(data.component_counts);
  kept.global_first = data.global_first;
  kept.global_prompts = data.global_prompts;
  kept.generation.seconds = data.generation.seconds;
  const auto G = static_cast<std::size_t>(data.group_size);
  std::vector<bool> taken(static_cast<std::size_t>(data.prompts()), false);
  for (const auto index : order) {
    TORCH_CHECK(index >= 0 && index < data.prompts() && !taken[static_cast<std::size_t>(index)], "take_groups: group ", index, " of ",
                data.prompts(), " is out of range or taken twice");
    const auto p = static_cast<std::size_t>(index);
    taken[p] = true;
    kept.problems.push_back(std::move(data.problems[p]));
    kept.prompt_texts.push_back(std::move(data.prompt_texts[p]));
    for (std::size_t g = 0; g < G; ++g) {
      kept.prompt_ids.push_back(std::move(data.prompt_ids[p * G + g]));
      auto& completion = data.generation.completions[p * G + g];
      kept.generation.generated_tokens += static_cast<std::int64_t>(completion.tokens.size());
      kept.generation.completions.push_back(std::move(completion));
    }
  }
  const auto index = torch::tensor(order, torch::kInt64);
  kept.rewards = data.rewards.index_select(0, index);
  kept.scorable = data.scorable.index_select(0, index);
  data = std::move(kept);
}

void append_groups(StepData& data, StepData&& more) {
  TORCH_CHECK(more.group_size == data.group_size, "append_groups: group sizes ", data.group_size, " and ", more.group_size);
  for (auto& p : more.problems) data.problems.push_back(std::move(p));
  for (auto& t : more.prompt_texts) data.prompt_texts.push_back(std::move(t));
  for (auto& ids : more.prompt_ids) data.prompt_ids.push_back(std::move(ids));
  for (auto& c : more.generation.completions) data.generation.completions.push_back(std::move(c));
  data.generation.generated_tokens += more.generation.generated_tokens;
  data.generation.seconds += more.generation.seconds;
  data.rewards = torch::cat({data.rewards, more.rewards});
  data.scorable = torch::cat({data.scorable, more.scorable});
}

}  // namespace grpo::rl

// Batched generation with shared prefills and compaction of finished rows (see generator.h).
#include "rollout/generator.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace grpo::rollout {
namespace {

// Rebuild the batch without finished rows once at least a quarter of it has finished: index_select copies the whole
// cache, so doing it at every finished row would cost more than it saves.
constexpr double kCompactWhenFinishedFraction = 0.25;

struct PromptBatch {
  torch::Tensor ids;    // [P, L] left-padded with token 0 (masked out)
  torch::Tensor valid;  // [P, L] bool
};

PromptBatch left_pad(const std::vector<std::vector<std::int64_t>>& prompts) {
  std::size_t longest = 0;
  for (const auto& prompt : prompts) {
    if (prompt.empty()) throw std::invalid_argument("generate: empty prompt");
    longest = std::max(longest, prompt.size());
  }
  const auto rows = static_cast<std::int64_t>(prompts.size());
  const auto width = static_cast<std::int64_t>(longest);
  auto ids = torch::zeros({rows, width}, torch::kInt64);
  auto valid = torch::zeros({rows, width}, torch::kBool);
  auto ids_a = ids.accessor<std::int64_t, 2>();
  auto valid_a = valid.accessor<bool, 2>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto& prompt = prompts[r];
    const auto offset = width - static_cast<std::int64_t>(prompt.size());
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      ids_a[r][offset + static_cast<std::int64_t>(t)] = prompt[t];
      valid_a[r][offset + static_cast<std::int64_t>(t)] = true;
    }
  }
  return {ids, valid};
}

}  // namespace

GenerationResult generate(policy::LlamaForCausalLM& model, const GenerationRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  torch::InferenceMode inference;
  const auto device = model->device();
  const auto num_prompts = static_cast<std::int64_t>(request.prompts.size());
  const auto group = request.samples_per_prompt;
  if (group < 1) throw std::invalid_argument("generate: samples_per_prompt must be at least 1");
  GenerationResult result;
  result.completions.resize(static_cast<std::size_t>(num_prompts * group));
  for (std::int64_t row = 0; row < num_prompts * group; ++row) result.completions[row].prompt_index = row / group;
  if (num_prompts == 0 || request.max_new_tokens <= 0) return result;

  // Prefill each prompt once, then repeat its cache rows for the G samples of its group.
  const auto prompts = left_pad(request.prompts);
  const auto prompt_width = prompts.ids.size(1);
  auto cache = model->make_cache(num_prompts, prompt_width + request.max_new_tokens);
  auto valid = prompts.valid.to(device);
  auto logits = model->forward(prompts.ids.to(device), policy::positions_from_valid(valid),
                               policy::causal_padding_mask(valid, prompt_width), &cache)
                    .select(1, prompt_width - 1);  // [P, V]
  const auto expand = torch::arange(num_prompts, torch::TensorOptions().dtype(torch::kInt64).device(device)).repeat_interleave(group);
  cache.select_rows(expand);
  valid = valid.index_select(0, expand);
  logits = logits.index_select(0, expand);
  auto next_position = valid.sum(1).to(torch::kInt64);  // [B] position id of the next token

  // rows[i] = index into result.completions of batch row i, or -1 for a row that finished and waits for the next
  // compaction (its further tokens are discarded).
  std::vector<std::int64_t> rows(static_cast<std::size_t>(num_prompts * group));
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int64_t>(i);
  const auto stop_ids = torch::tensor(request.stop_token_ids, torch::kInt64);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(request.seed);

  for (std::int64_t step = 0; step < request.max_new_tokens; ++step) {
    // Sampling runs on the CPU with a seeded generator so that a run is reproducible on any device.
    const auto sampled = sample_tokens(logits.to(torch::kCPU), request.sampling, generator);
    const auto stopped = torch::isin(sampled.tokens, stop_ids);
    const auto tokens_a = sampled.tokens.accessor<std::int64_t, 1>();
    const auto logprobs_a = sampled.logprobs.accessor<float, 1>();
    const auto stopped_a = stopped.accessor<bool, 1>();
    std::vector<std::int64_t> live;  // batch rows still generating after this step
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i] < 0) continue;
      const auto b = static_cast<std::int64_t>(i);
      auto& completion = result.completions[static_cast<std::size_t>(rows[i])];
      completion.tokens.push_back(tokens_a[b]);
      completion.logprobs.push_back(logprobs_a[b]);
      ++result.generated_tokens;
      if (stopped_a[b]) {
        completion.finish = FinishReason::kStop;
        rows[i] = -1;
      } else {
        live.push_back(b);
      }
    }
    if (live.empty() || step + 1 == request.max_new_tokens) break;

    auto next_tokens = sampled.tokens.to(device);
    const auto finished_rows = static_cast<double>(rows.size() - live.size());
    if (finished_rows >= kCompactWhenFinishedFraction * static_cast<double>(rows.size())) {
      const auto keep = torch::tensor(live, torch::kInt64).to(device);
      cache.select_rows(keep);
      valid = valid.index_select(0, keep);
      next_position = next_position.index_select(0, keep);
      next_tokens = next_tokens.index_select(0, keep);
      std::vector<std::int64_t> kept_rows;
      for (auto b : live) kept_rows.push_back(rows[static_cast<std::size_t>(b)]);
      rows = std::move(kept_rows);
    }
    valid = torch::cat({valid, torch::ones({valid.size(0), 1}, valid.options())}, 1);
    logits = model->forward(next_tokens.unsqueeze(1), next_position.unsqueeze(1), policy::causal_padding_mask(valid, 1), &cache)
                 .select(1, 0);
    next_position = next_position + 1;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace grpo::rollout

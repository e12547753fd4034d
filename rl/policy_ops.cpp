// Teacher-forced completion log-probs (see policy_ops.h).
#include "rl/policy_ops.h"

#include <algorithm>

#include "kernels/chunked_token_logprobs.h"

namespace grpo::rl {

SequenceBatch SequenceBatch::rows(const torch::Tensor& indices) const {
  const auto idx = indices.to(input_ids.device());
  return {input_ids.index_select(0, idx), valid.index_select(0, idx), completion_ids.index_select(0, idx),
          completion_mask.index_select(0, idx), prompt_width};
}

SequenceBatch make_sequence_batch(const std::vector<std::vector<std::int64_t>>& prompts,
                                  const std::vector<std::vector<std::int64_t>>& completions, std::int64_t pad_id, torch::Device device) {
  TORCH_CHECK(prompts.size() == completions.size(), "make_sequence_batch: ", prompts.size(), " prompts but ", completions.size(), " completions");
  std::size_t prompt_width = 1;
  std::size_t completion_width = 1;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    prompt_width = std::max(prompt_width, prompts[i].size());
    completion_width = std::max(completion_width, completions[i].size());
  }
  const auto rows = static_cast<std::int64_t>(prompts.size());
  const auto L = static_cast<std::int64_t>(prompt_width);
  const auto T = static_cast<std::int64_t>(completion_width);
  auto ids = torch::full({rows, L + T}, pad_id, torch::kInt64);
  auto valid = torch::zeros({rows, L + T}, torch::kBool);
  auto ids_a = ids.accessor<std::int64_t, 2>();
  auto valid_a = valid.accessor<bool, 2>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto& prompt = prompts[static_cast<std::size_t>(r)];
    const auto& completion = completions[static_cast<std::size_t>(r)];
    const auto offset = L - static_cast<std::int64_t>(prompt.size());
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      ids_a[r][offset + static_cast<std::int64_t>(t)] = prompt[t];
      valid_a[r][offset + static_cast<std::int64_t>(t)] = true;
    }
    for (std::size_t t = 0; t < completion.size(); ++t) {
      ids_a[r][L + static_cast<std::int64_t>(t)] = completion[t];
      valid_a[r][L + static_cast<std::int64_t>(t)] = true;
    }
  }
  auto completion_ids = ids.narrow(1, L, T).clone();
  auto completion_mask = valid.narrow(1, L, T).to(torch::kFloat32);
  return {ids.to(device), valid.to(device), completion_ids.to(device), completion_mask.to(device), L};
}

TokenLogprobs completion_logprobs(policy::LlamaForCausalLM& model, const SequenceBatch& batch, double temperature, bool with_entropy) {
  const auto width = batch.input_ids.size(1);
  const auto B = batch.size();
  const auto T = batch.completion_ids.size(1);
  const auto hidden = model->hidden_states(batch.input_ids, policy::positions_from_valid(batch.valid),
                                           policy::causal_padding_mask(batch.valid, width));  // [B, L + T, C]
  // The hidden state at position L − 1 + t predicts completion token t. Only those rows go through the output
  // projection, chunk by chunk: no [B·T, V] logits are held (kernels/chunked_token_logprobs.h).
  const auto rows = hidden.narrow(1, batch.prompt_width - 1, T).reshape({B * T, -1});
  const auto out = kernels::chunked_token_logprobs(rows, model->output_weight(), batch.completion_ids.reshape({-1}),
                                                   temperature > 0.0 ? temperature : 1.0, with_entropy);
  TokenLogprobs result;
  result.logprobs = out.logprobs.view({B, T});
  if (with_entropy) result.entropy = out.entropy.view({B, T});
  return result;
}

}  // namespace grpo::rl

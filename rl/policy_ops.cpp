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

SequenceBatch SequenceBatch::trimmed() const {
  const auto L = prompt_width;
  const auto T = completion_ids.size(1);
  const auto longest_prompt = std::max<std::int64_t>(1, valid.narrow(1, 0, L).sum(1).max().item<std::int64_t>());
  const auto longest_completion = std::max<std::int64_t>(1, completion_mask.sum(1).max().item<std::int64_t>());
  if (longest_prompt == L && longest_completion == T) return *this;
  const auto begin = L - longest_prompt, width = longest_prompt + longest_completion;
  return {input_ids.narrow(1, begin, width), valid.narrow(1, begin, width), completion_ids.narrow(1, 0, longest_completion),
          completion_mask.narrow(1, 0, longest_completion), longest_prompt};
}

std::vector<torch::Tensor> length_sorted_groups(const SequenceBatch& batch, const torch::Tensor& rows, std::int64_t max_rows) {
  const auto indices = rows.to(torch::kCPU, torch::kInt64);
  if (max_rows <= 0 || indices.numel() <= max_rows) return {indices};
  const auto lengths = batch.valid.index_select(0, indices.to(batch.valid.device())).sum(1).to(torch::kCPU);
  const auto order = std::get<1>(lengths.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
  const auto sorted = indices.index_select(0, order);
  std::vector<torch::Tensor> groups;
  for (std::int64_t begin = 0; begin < sorted.numel(); begin += max_rows) {
    groups.push_back(sorted.narrow(0, begin, std::min(max_rows, sorted.numel() - begin)));
  }
  return groups;
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

torch::Tensor completion_logprobs_in_groups(policy::LlamaForCausalLM& model, const SequenceBatch& batch, double temperature, std::int64_t max_rows) {
  torch::NoGradGuard no_grad;
  auto out = torch::zeros(batch.completion_ids.sizes(), batch.completion_mask.options());
  for (const auto& group : length_sorted_groups(batch, torch::arange(batch.size(), torch::kInt64), max_rows)) {
    const auto part = batch.rows(group).trimmed();
    const auto logprobs = completion_logprobs(model, part, temperature, /*with_entropy=*/false).logprobs * part.completion_mask;
    out.index_copy_(0, group.to(out.device()), torch::constant_pad_nd(logprobs, {0, out.size(1) - logprobs.size(1)}).to(out.scalar_type()));
  }
  return out;
}

}  // namespace grpo::rl

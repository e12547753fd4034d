// Teacher-forced completion log-probs (see policy_ops.h).
#include "rl/policy_ops.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>
#include <unordered_map>

#include "kernels/chunked_token_logprobs.h"
#include "kernels/cpu_workers.h"

namespace grpo::rl {

SequenceBatch SequenceBatch::rows(const torch::Tensor& indices) const {
  const auto idx = indices.to(input_ids.device());
  return {input_ids.index_select(0, idx), valid.index_select(0, idx), completion_ids.index_select(0, idx),
          completion_mask.index_select(0, idx), prompt_width,
          prompt_index.defined() ? prompt_index.index_select(0, indices.to(torch::kCPU, torch::kInt64)) : torch::Tensor(), share_prompts,
          padding_free};
}

SequenceBatch SequenceBatch::trimmed() const {
  const auto L = prompt_width;
  const auto T = completion_ids.size(1);
  const auto longest_prompt = std::max<std::int64_t>(1, valid.narrow(1, 0, L).sum(1).max().item<std::int64_t>());
  const auto longest_completion = std::max<std::int64_t>(1, completion_mask.sum(1).max().item<std::int64_t>());
  if (longest_prompt == L && longest_completion == T) return *this;
  const auto begin = L - longest_prompt, width = longest_prompt + longest_completion;
  return {input_ids.narrow(1, begin, width), valid.narrow(1, begin, width), completion_ids.narrow(1, 0, longest_completion),
          completion_mask.narrow(1, 0, longest_completion), longest_prompt, prompt_index, share_prompts, padding_free};
}

std::vector<torch::Tensor> length_sorted_groups(const SequenceBatch& batch, const torch::Tensor& rows, std::int64_t max_rows) {
  const auto indices = rows.to(torch::kCPU, torch::kInt64);
  if (max_rows <= 0 || indices.numel() <= max_rows) return {indices};
  const auto lengths = batch.valid.index_select(0, indices.to(batch.valid.device())).sum(1).to(torch::kCPU, torch::kInt64);
  // Sort key: the longest row of the row's prompt (among `rows`), then the prompt, then the row's own length.
  const auto prompts = batch.prompt_index.defined() ? batch.prompt_index.index_select(0, indices) : torch::arange(indices.numel(), torch::kInt64);
  const auto prompt_a = prompts.accessor<std::int64_t, 1>();
  const auto length_a = lengths.accessor<std::int64_t, 1>();
  std::unordered_map<std::int64_t, std::int64_t> longest;
  for (std::int64_t i = 0; i < indices.numel(); ++i) {
    auto& l = longest[prompt_a[i]];
    l = std::max(l, length_a[i]);
  }
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
  std::vector<Key> keys;
  for (std::int64_t i = 0; i < indices.numel(); ++i) keys.emplace_back(longest[prompt_a[i]], prompt_a[i], length_a[i]);
  std::vector<std::int64_t> order(static_cast<std::size_t>(indices.numel()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return keys[static_cast<std::size_t>(a)] < keys[static_cast<std::size_t>(b)]; });
  const auto sorted = indices.index_select(0, torch::tensor(order, torch::kInt64));
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
  std::map<std::vector<std::int64_t>, std::int64_t> index_of_prompt;
  auto prompt_index = torch::empty({rows}, torch::kInt64);
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto& prompt = prompts[static_cast<std::size_t>(r)];
    prompt_index[r] = index_of_prompt.try_emplace(prompt, static_cast<std::int64_t>(index_of_prompt.size())).first->second;
  }
  return {ids.to(device), valid.to(device), completion_ids.to(device), completion_mask.to(device), L, prompt_index};
}

namespace {

// The rows of each distinct prompt in the batch: prompt_rows [P] (the first row of each) and row_prompt [B] (which of
// the P each row has).
struct DistinctPrompts {
  torch::Tensor prompt_rows;
  torch::Tensor row_prompt;
};

DistinctPrompts distinct_prompts(const SequenceBatch& batch) {
  const auto index = batch.prompt_index.contiguous();
  const auto index_a = index.accessor<std::int64_t, 1>();
  std::unordered_map<std::int64_t, std::int64_t> position;
  std::vector<std::int64_t> prompt_rows;
  std::vector<std::int64_t> row_prompt(static_cast<std::size_t>(index.numel()));
  for (std::int64_t r = 0; r < index.numel(); ++r) {
    const auto [it, fresh] = position.try_emplace(index_a[r], static_cast<std::int64_t>(prompt_rows.size()));
    if (fresh) prompt_rows.push_back(r);
    row_prompt[static_cast<std::size_t>(r)] = it->second;
  }
  return {torch::tensor(prompt_rows, torch::kInt64), torch::tensor(row_prompt, torch::kInt64)};
}

// The final hidden states that predict completion tokens: `states` [B·T, C] for every position, padding included
// (`index` undefined), or, padding-free, [M, C] for the M real completion tokens, `index` [M] saying which of the
// B·T each predicts. The state at position L − 1 + t predicts completion token t.
struct PredictingStates {
  torch::Tensor states;
  torch::Tensor index;
};

PredictingStates predicting_hidden_states(policy::LlamaForCausalLM& model, const SequenceBatch& batch) {
  const auto B = batch.size();
  const auto L = batch.prompt_width;
  const auto T = batch.completion_ids.size(1);
  const auto distinct = batch.share_prompts && batch.prompt_index.defined() ? distinct_prompts(batch) : DistinctPrompts{};
  // Padding-free needs the prompts' keys apart from the continuations, so it takes the shared path even when no
  // prompt is shared.
  const bool padding_free = batch.padding_free && distinct.prompt_rows.defined();
  if (!distinct.prompt_rows.defined() || (distinct.prompt_rows.numel() == B && !padding_free)) {
    const auto hidden = model->hidden_states(batch.input_ids, policy::positions_from_valid(batch.valid),
                                             policy::causal_padding_mask(batch.valid, L + T));  // [B, L + T, C]
    return {hidden.narrow(1, L - 1, T).reshape({B * T, -1}), {}};
  }
  // Each distinct prompt once; its last state predicts completion token 0 of every row that has it.
  const auto device = batch.input_ids.device();
  const auto prompt_rows = distinct.prompt_rows.to(device);
  const auto row_prompt = distinct.row_prompt.to(device);
  const auto prompt_valid = batch.valid.narrow(1, 0, L).index_select(0, prompt_rows);
  policy::SharedPrefix prefix;
  const auto prompt_hidden = model->hidden_states(batch.input_ids.narrow(1, 0, L).index_select(0, prompt_rows),
                                                  policy::positions_from_valid(prompt_valid),
                                                  policy::causal_padding_mask(prompt_valid, L), nullptr, &prefix);  // [P, L, C]
  const auto last_prompt_state = prompt_hidden.select(1, L - 1);                                                    // [P, C]
  // Completion tokens 0 … T − 2 predict tokens 1 … T − 1 (the last token predicts nothing), attending to their
  // prompt's keys and then to their own. Mask and positions are the whole sequence's, cut to those queries.
  prefix.rows = row_prompt;
  const auto valid = batch.valid.narrow(1, 0, L + T - 1);
  const auto positions = [&] { return policy::positions_from_valid(valid).narrow(1, L, T - 1); };
  const auto mask = [&] { return policy::causal_padding_mask(valid, T - 1); };
  if (!padding_free) {
    const auto first = last_prompt_state.index_select(0, row_prompt).unsqueeze(1);  // [B, 1, C]
    if (T == 1) return {first.reshape({B, -1}), {}};
    const auto rest = model->hidden_states(batch.input_ids.narrow(1, L, T - 1), positions(), mask(), nullptr, &prefix);  // [B, T − 1, C]
    return {torch::cat({first, rest}, 1).reshape({B * T, -1}), {}};
  }
  // Padding-free: the rows with a completion token 0, then every real continuation token end to end.
  const auto has_first = batch.valid.select(1, L).nonzero().squeeze(1);  // [B₁]
  auto states = last_prompt_state.index_select(0, row_prompt.index_select(0, has_first));
  auto index = has_first * T;
  if (T > 1) {
    const auto packed = batch.valid.narrow(1, L + 1, T - 1).reshape({-1}).nonzero().squeeze(1);  // [N] into B·(T − 1)
    prefix.packed_positions = packed;
    prefix.padded_width = T - 1;
    auto take = [&](const torch::Tensor& t) { return t.reshape({-1}).index_select(0, packed).unsqueeze(0); };  // [1, N]
    const auto rest = model->hidden_states(take(batch.input_ids.narrow(1, L, T - 1)), take(positions()), mask(), nullptr, &prefix);
    states = torch::cat({states, rest.squeeze(0)});
    index = torch::cat({index, torch::div(packed, T - 1, "floor") * T + torch::remainder(packed, T - 1) + 1});
  }
  return {states, index};
}

}  // namespace

TokenLogprobs completion_logprobs(policy::LlamaForCausalLM& model, const SequenceBatch& batch, double temperature, bool with_entropy) {
  const auto B = batch.size();
  const auto T = batch.completion_ids.size(1);
  // Only the predicting states go through the output projection, chunk by chunk: no [B·T, V] logits are held
  // (kernels/chunked_token_logprobs.h).
  const auto predicting = predicting_hidden_states(model, batch);
  auto targets = batch.completion_ids.reshape({-1});
  if (predicting.index.defined()) targets = targets.index_select(0, predicting.index);
  const auto out = kernels::chunked_token_logprobs(predicting.states, model->output_weight(), targets, temperature > 0.0 ? temperature : 1.0,
                                                   with_entropy);
  // Padding-free: the real tokens' values put in place, 0 at padding.
  auto place = [&](const torch::Tensor& values) {
    if (!predicting.index.defined()) return values.view({B, T});
    return torch::zeros({B * T}, values.options()).index_copy(0, predicting.index, values).view({B, T});
  };
  TokenLogprobs result;
  result.logprobs = place(out.logprobs);
  if (with_entropy) result.entropy = place(out.entropy);
  return result;
}

torch::Tensor completion_logprobs_in_groups(policy::LlamaForCausalLM& model, const SequenceBatch& batch, double temperature, std::int64_t max_rows) {
  if (batch.size() == 0) return torch::zeros(batch.completion_ids.sizes(), batch.completion_mask.options());  // a rank with no rows
  const auto groups = length_sorted_groups(batch, torch::arange(batch.size(), torch::kInt64), max_rows);
  const auto items = static_cast<std::int64_t>(groups.size());
  // A small model on the CPU scores the groups side by side, one core each (kernels/cpu_workers.h).
  const int workers = kernels::independent_cpu_workers(model->device(), model->config().hidden_size, items);
  std::vector<torch::Tensor> parts(groups.size());
  kernels::run_on_cpu_workers(items, workers, [&](std::int64_t item, int) {
    torch::NoGradGuard no_grad;  // grad mode is per thread
    const auto part = batch.rows(groups[static_cast<std::size_t>(item)]).trimmed();
    parts[static_cast<std::size_t>(item)] = completion_logprobs(model, part, temperature, /*with_entropy=*/false).logprobs * part.completion_mask;
  });
  torch::NoGradGuard no_grad;
  auto out = torch::zeros(batch.completion_ids.sizes(), batch.completion_mask.options());
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto& logprobs = parts[i];
    out.index_copy_(0, groups[i].to(out.device()), torch::constant_pad_nd(logprobs, {0, out.size(1) - logprobs.size(1)}).to(out.scalar_type()));
  }
  return out;
}

}  // namespace grpo::rl

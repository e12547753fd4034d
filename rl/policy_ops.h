// Teacher-forced log-probabilities of completions under a policy: the π_θ, π_old and π_ref terms of the GRPO loss
// and the likelihood of supervised warm-up.
//
// Shapes: B sequences, L prompt width (left-padded), T completion width (right-padded), V vocabulary.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "policy/llama_model.h"

namespace grpo::rl {

struct SequenceBatch {
  torch::Tensor input_ids;        // [B, L + T]: prompt left-padded to L, then completion right-padded to T
  torch::Tensor valid;            // [B, L + T] bool: real tokens
  torch::Tensor completion_ids;   // [B, T] (padding positions hold pad_id)
  torch::Tensor completion_mask;  // [B, T] float32: 1 for real completion tokens
  std::int64_t prompt_width = 0;  // L
  // [B] int64 on the CPU: rows with equal values have the same prompt (make_sequence_batch compares the tokens).
  torch::Tensor prompt_index;
  // Whether completion_logprobs may run each distinct prompt once for all its rows (SharedPrefix). The result is the
  // same up to float round-off; model.shared_prompt_forward turns it off.
  bool share_prompts = true;
  // With shared prompts: whether their continuations run padding-free, the real tokens end to end (SharedPrefix), so
  // that no projection, MLP or output-layer row is spent on padding. The same up to float round-off;
  // model.padding_free turns it off.
  bool padding_free = true;

  std::int64_t size() const { return input_ids.size(0); }
  SequenceBatch rows(const torch::Tensor& indices) const;  // a minibatch (int64 indices)
  // The same rows without the columns that are padding in all of them (before the longest prompt, after the
  // longest completion; at least one of each is kept).
  SequenceBatch trimmed() const;
};

// `rows` (int64 indices into batch) cut into groups of at most max_rows (0: one group), sorted by length so that the
// rows of a group pad little. Rows of one prompt stay next to each other (ordered by their longest row), so that a
// group holds few distinct prompts to run. Every row is in exactly one group.
std::vector<torch::Tensor> length_sorted_groups(const SequenceBatch& batch, const torch::Tensor& rows, std::int64_t max_rows);

SequenceBatch make_sequence_batch(const std::vector<std::vector<std::int64_t>>& prompts,
                                  const std::vector<std::vector<std::int64_t>>& completions, std::int64_t pad_id, torch::Device device);

struct TokenLogprobs {
  torch::Tensor logprobs;  // [B, T] float32, log softmax(logits / temperature) at each completion token
  torch::Tensor entropy;   // [B, T] float32, detached; undefined unless requested
};

// Runs under the caller's grad mode: differentiable for the policy update, wrap in NoGradGuard for π_ref. When rows
// share prompts (and batch.share_prompts), each distinct prompt runs once and its keys and values serve all its
// rows: with G samples per prompt, the prompt costs 1/G of what it would.
TokenLogprobs completion_logprobs(policy::LlamaForCausalLM& model, const SequenceBatch& batch, double temperature, bool with_entropy);

// completion_logprobs without grad, in length-sorted trimmed groups of at most max_rows (see length_sorted_groups):
// [B, T] log-probs with 0 at padding, as one call would give (up to float round-off).
torch::Tensor completion_logprobs_in_groups(policy::LlamaForCausalLM& model, const SequenceBatch& batch, double temperature, std::int64_t max_rows);

}  // namespace grpo::rl
